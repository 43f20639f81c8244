"""The transport contract: one Request in, one Outcome out, endpoint faults never raised."""

from __future__ import annotations

import abc
import asyncio
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from loadgen import api


@dataclass(frozen=True, slots=True)
class Target:
    """One configured endpoint: everything its requests share, built once per run."""

    label: str  # results key: endpoint name, or name/variant
    endpoint_name: str
    content_type: str = "application/json"
    accept: str | None = None
    target_variant: str | None = None
    target_model: str | None = None
    target_container_hostname: str | None = None
    inference_component: str | None = None
    stream: bool = False  # InvokeEndpointWithResponseStream
    stream_format: str = "sse"  # how its PayloadParts divide into tokens (tokens.py)

    def optional_headers(self) -> dict[str, str]:
        """The X-Amzn-SageMaker-* routing headers this target sends."""
        pairs = (
            (api.H_TARGET_VARIANT, self.target_variant),
            (api.H_TARGET_MODEL, self.target_model),
            (api.H_TARGET_CONTAINER, self.target_container_hostname),
            (api.H_INFERENCE_COMPONENT, self.inference_component),
        )
        return {name: value for name, value in pairs if value is not None}


@dataclass(slots=True)
class Request:
    target: Target
    body: bytes
    trace_id: str
    custom_attributes: str  # rendered, contains trace_id


@dataclass(slots=True)
class StreamResult:
    """What one InvokeEndpointWithResponseStream call's events said, timed as they arrived
    (monotonic ns). Built by the transport, read once by the recorder."""

    head_ns: int = 0  # the response head (and the echo) arrived
    first_token_ns: int = 0  # the first token-bearing event; 0: none came
    last_token_ns: int = 0
    tokens: int = 0  # token events, or the stream's own final count (usage)
    gaps_us: array[int] | None = None  # µs between consecutive token events, one per gap
    parts: int = 0  # PayloadParts


@dataclass(slots=True)
class Outcome:
    """What one call produced. `error` is None on success, else an AWS code or api.TIMEOUT etc."""

    status: int = 0  # HTTP status; 0 when no response arrived
    error: str | None = None
    variant: str | None = None  # X-Amzn-Invoked-Production-Variant
    echoed: str | None = None  # X-Amzn-SageMaker-Custom-Attributes of the response
    original_status: int | None = None  # ModelError's OriginalStatusCode
    stream: StreamResult | None = None  # streaming calls: their events' times and tokens
    stream_error_code: str | None = None  # ModelStreamError's ErrorCode


def error_for_status(status: int, code: str | None) -> str:
    """The error key for an HTTP error response: its AWS code, else HTTP<status>."""
    return code or f"HTTP{status}"


class Caller(Protocol):
    """One caller of the Engine, run by a transport one request at a time: it decides what
    to send and when, and records what ends. A closed-loop caller always has a request
    ready until it is done; an open-loop caller has one only when one is due."""

    def take(self) -> Request | None:
        """The next request, to be sent now (its send time is taken), or None: none now."""

    def park(self, resume: Callable[[], None]) -> bool:
        """After `take` gave None (or `due` gave False): True if a request will be due later,
        and then `resume` is called, once; False if the caller is done."""

    @property
    def due(self) -> Callable[[], bool] | None:
        """None if `take` has a request until the caller is done (a closed loop); else a
        check that `take` would give one now, so a transport can park without taking."""

    def done(self, outcome: Outcome) -> None:
        """The request taken last ended with `outcome`."""

    def ok(self, status: int, variant: str | None, echoed: str | None) -> None:
        """`done` for a 2xx response, without an Outcome to build: the usual case."""

    def failed(self, exc: Exception) -> None:
        """The transport raised for the request taken last: a bug, counted, never fatal."""


async def parked(caller: Caller) -> bool:
    """Wait until the caller has a request due again; False if it never will (it is done)."""
    due: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def resume() -> None:
        if not due.done():
            due.set_result(None)

    if not caller.park(resume):
        return False
    await due
    return True


class Transport(abc.ABC):
    """Sends InvokeEndpoint calls. `invoke` returns an Outcome for every endpoint fault."""

    name: str

    async def run_caller(self, caller: Caller) -> None:
        """Send the caller's requests one after another until it is done."""
        while True:
            request = caller.take()
            if request is None:
                if not await parked(caller):
                    return
                continue
            await self.invoke_for(caller, request)

    async def invoke_for(self, caller: Caller, request: Request) -> None:
        """`invoke`, its end told to `caller`."""
        try:
            outcome = await self.invoke(request)
        except Exception as exc:
            caller.failed(exc)
        else:
            caller.done(outcome)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open pools or clients; called once before the first invoke."""

    async def warm(self, connections: int) -> None:  # noqa: B027 - optional hook
        """Open up to `connections` connections before the run's clock starts, so that its
        first requests do not wait for them; failures are left to the requests."""

    @abc.abstractmethod
    async def invoke(self, request: Request) -> Outcome: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once after the last invoke."""
