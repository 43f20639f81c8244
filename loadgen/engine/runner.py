"""One run from a validated Scenario to a results folder."""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadgen.correlate import Correlator, TraceIds, new_run_id
from loadgen.engine.core import Engine
from loadgen.engine.executors import Executor
from loadgen.engine.requests import RequestFactory, load_bodies, targets_of
from loadgen.errors import CannotRunError
from loadgen.metrics import NS_PER_S, Recorder, Stats, histogram_summary
from loadgen.results.writer import ResultsWriter, run_folder
from loadgen.scenario import Scenario
from loadgen.transport.base import Transport
from loadgen.transport.botocore import BotocoreTransport
from loadgen.transport.credentials import CredentialSource
from loadgen.transport.fast import FastTransport

DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class RunOptions:
    out: Path = DEFAULT_RESULTS  # parent of the run folder
    quiet: bool = False
    status_interval_s: float = 0.5


@dataclass
class RunResult:
    folder: Path
    summary: dict[str, Any]
    stop_reason: str | None = None  # "SIGINT"/"SIGTERM" when interrupted

    @property
    def interrupted(self) -> bool:
        return self.stop_reason is not None


@dataclass
class RunContext:
    """What every part of one run shares; passed down explicitly, never global."""

    scenario: Scenario
    run_id: str
    endpoint_url: str | None
    started: datetime
    stop_reason: str | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_event.set()


def regional_url(region: str) -> str:
    return f"https://runtime.sagemaker.{region}.amazonaws.com"


async def open_transport(
    scenario: Scenario, endpoint_url: str | None, stack: AsyncExitStack
) -> Transport:
    """The scenario's transport, started; closed (with its credentials) when `stack` unwinds."""
    load = scenario.load
    tls = scenario.tls
    transport: Transport
    if scenario.transport == "botocore":
        transport = BotocoreTransport(
            endpoint_url=endpoint_url,
            region=scenario.region,
            max_connections=load.max_connections,
            connect_timeout=load.connect_timeout,
            read_timeout=load.timeout,
            verify=str(tls.ca_file) if tls.ca_file and tls.verify else tls.verify,
            allow_placeholder_credentials=scenario.uses_mock,
        )
    else:
        credentials = await CredentialSource.from_chain(
            scenario.region, allow_placeholder=scenario.uses_mock
        )
        await credentials.start()
        stack.push_async_callback(credentials.close)
        transport = FastTransport(
            endpoint_url=endpoint_url or regional_url(scenario.region),
            region=scenario.region,
            credentials=credentials,
            max_connections=load.max_connections,
            connect_timeout=load.connect_timeout,
            read_timeout=load.timeout,
            verify=tls.verify,
            ca_file=str(tls.ca_file) if tls.ca_file else None,
        )
    await transport.start()
    stack.push_async_callback(transport.close)
    return transport


async def check_reachable(url: str, timeout: float) -> None:
    """A TCP connect before the run, so an unreachable endpoint is one clear error (exit 3)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        reason = (
            "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        )
        raise CannotRunError(f"cannot reach endpoint {host}:{port}: {reason}") from None
    writer.close()


async def run_scenario(scenario: Scenario, options: RunOptions = RunOptions()) -> RunResult:
    from loadgen.console import LiveStatus, print_summary

    bodies = load_bodies(scenario)  # before anything is started: file problems are usage errors
    targets = targets_of(scenario)
    labels = [target.label for target in targets]
    async with AsyncExitStack() as stack:
        endpoint_url = scenario.endpoint_url
        if scenario.uses_mock:
            from loadgen.mock.server import start_mock

            mock = await start_mock(scenario.mock)
            stack.push_async_callback(mock.close)
            endpoint_url = mock.url
        else:
            await check_reachable(
                endpoint_url or regional_url(scenario.region), scenario.load.connect_timeout
            )
        ctx = RunContext(scenario, new_run_id(), endpoint_url, datetime.now(UTC))
        transport = await open_transport(scenario, endpoint_url, stack)

        folder = run_folder(options.out, scenario.name, ctx.started)
        writer = ResultsWriter(folder, labels, ctx.started.timestamp())
        stack.callback(writer.close)
        start_ns = time.monotonic_ns()
        recorder = Recorder(labels, start_ns, writer.interval)
        factory = RequestFactory(
            targets, bodies, scenario.request.custom_attributes, TraceIds(ctx.run_id)
        )
        engine = Engine(
            transport,
            factory,
            Correlator(scenario.correlation),
            recorder,
            scenario.load.max_connections,
        )
        executor = Executor.registry[scenario.load.executor](scenario.load)  # type: ignore[call-arg]
        status = LiveStatus(scenario, recorder, enabled=not options.quiet)

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, ctx.stop, signal.Signals(signum).name)
            stack.callback(loop.remove_signal_handler, signum)

        with status:
            schedule = loop.create_task(executor.run(engine, start_ns))
            ticker = loop.create_task(_tick(recorder, status, start_ns, options.status_interval_s))
            stopper = loop.create_task(ctx.stop_event.wait())
            await asyncio.wait({schedule, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not schedule.done():
                schedule.cancel()
            await asyncio.gather(schedule, return_exceptions=True)
            if not schedule.cancelled() and (failure := schedule.exception()) is not None:
                raise failure
            await engine.drain(scenario.load.timeout)
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            elapsed_s = (time.monotonic_ns() - start_ns) / NS_PER_S
            recorder.tick(time.monotonic_ns())
            recorder.flush()
        writer.flush()
        summary = build_summary(ctx, recorder, engine, elapsed_s)
        writer.write_histograms(encoded_histograms(recorder))
        writer.write_summary(summary)
    if not options.quiet:
        print_summary(summary, folder)
    return RunResult(folder, summary, ctx.stop_reason)


async def _tick(recorder: Recorder, status: Any, start_ns: int, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        now = time.monotonic_ns()
        recorder.tick(now)
        status.update((now - start_ns) / NS_PER_S)


def encoded_histograms(recorder: Recorder) -> dict[str, Any]:
    """histograms.json: full latency and service-time histograms, HdrHistogram's encoded form."""

    def pair(stats: Stats) -> dict[str, str]:
        return {
            "latency": stats.latency.encode().decode("ascii"),
            "service_time": stats.service.encode().decode("ascii"),
        }

    return {
        "unit": "microseconds",
        "endpoints": {
            label: pair(record.stats)
            | {
                "variants": {
                    variant: pair(stats) for variant, stats in sorted(record.variants.items())
                }
            }
            for label, record in recorder.endpoints.items()
        },
    }


def _endpoint_summary(recorder: Recorder, label: str, elapsed_s: float) -> dict[str, Any]:
    record = recorder.endpoints[label]
    summary = record.stats.summary(elapsed_s)
    summary["variants"] = {
        variant: stats.summary(elapsed_s) for variant, stats in sorted(record.variants.items())
    }
    summary["slowest"] = [
        {"trace_id": slow.trace_id, "latency_ms": slow.latency_us / 1000.0, "variant": slow.variant}
        for slow in recorder.slowest(label)
    ]
    return summary


def build_summary(
    ctx: RunContext, recorder: Recorder, engine: Engine, elapsed_s: float
) -> dict[str, Any]:
    scenario = ctx.scenario
    endpoints = {
        label: _endpoint_summary(recorder, label, elapsed_s) for label in recorder.endpoints
    }
    total: Stats = recorder.totals()
    return {
        "run_id": ctx.run_id,
        "scenario": scenario.name,
        "started_at": ctx.started.isoformat().replace("+00:00", "Z"),
        "duration_s": round(elapsed_s, 3),
        "complete": ctx.stop_reason is None,
        "stop_reason": ctx.stop_reason,
        "transport": scenario.transport,
        "load": scenario.load.model_dump(mode="json"),
        "correlation_mode": scenario.correlation,
        "achieved_rate_rps": round(engine.achieved_rate(), 3),
        "start_delay_ms": histogram_summary(engine.start_delay),
        "interrupted_requests": engine.interrupted,
        "client_failure": engine.client_failure,
        "endpoints": endpoints,
        "total": total.summary(elapsed_s),
    }
