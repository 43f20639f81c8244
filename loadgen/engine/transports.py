"""The transport a scenario asks for, opened: what the runner and each worker process use."""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from urllib.parse import urlsplit

from loadgen.errors import CannotRunError
from loadgen.scenario import Scenario
from loadgen.transport.base import Transport
from loadgen.transport.credentials import CredentialSource
from loadgen.transport.fast import FastTransport
from loadgen.transport.sigv4 import Credentials


def regional_url(region: str) -> str:
    return f"https://runtime.sagemaker.{region}.amazonaws.com"


async def open_transport(
    scenario: Scenario,
    endpoint_url: str | None,
    connections: int,
    stack: AsyncExitStack,
    warm: int = 0,
    credentials: Credentials | None = None,
) -> Transport:
    """The scenario's transport with up to `connections`, started, `warm` of them open
    (before any clock starts: the first requests must not wait for them); closed, with
    its credentials, when `stack` unwinds. It signs with `credentials` when given (a Ray
    actor gets the driver's, in memory), else with what this host's chain finds."""
    load = scenario.load
    tls = scenario.tls
    region = scenario.region
    assert region is not None, "the runner resolves the region (region.py) before this"
    transport: Transport
    if scenario.transport == "botocore":
        from loadgen.transport.botocore import BotocoreTransport  # aiobotocore: ~0.4 s to import

        transport = BotocoreTransport(
            endpoint_url=endpoint_url,
            region=region,
            max_connections=connections,
            connect_timeout=load.connect_timeout,
            read_timeout=load.idle_timeout if scenario.request.stream else load.timeout,
            verify=str(tls.ca_file) if tls.ca_file and tls.verify else tls.verify,
            allow_placeholder_credentials=scenario.uses_mock,
            credentials=credentials,
        )
    else:
        if credentials is not None:
            source = CredentialSource.static(
                credentials.access_key, credentials.secret_key, credentials.token
            )
        else:
            source = await CredentialSource.from_chain(region, allow_placeholder=scenario.uses_mock)
        await source.start()
        stack.push_async_callback(source.close)
        transport = FastTransport(
            endpoint_url=endpoint_url or regional_url(region),
            region=region,
            credentials=source,
            max_connections=connections,
            connect_timeout=load.connect_timeout,
            read_timeout=load.timeout,
            verify=tls.verify,
            ca_file=str(tls.ca_file) if tls.ca_file else None,
            streams=scenario.request.stream,
            idle_timeout=load.idle_timeout,
        )
    await transport.start()
    stack.push_async_callback(transport.close)
    await transport.warm(warm)
    return transport


async def check_reachable(url: str, timeout: float, what: str = "endpoint") -> None:
    """A TCP connect before the run, so an unreachable endpoint (or Ray cluster: `what`) is
    one clear error (exit 3)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, TimeoutError):
            reason = "timed out"
        else:  # the errno's own words: event loops phrase strerror differently
            reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise CannotRunError(f"cannot reach {what} {host}:{port}: {reason}") from None
    writer.close()
