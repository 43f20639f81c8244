"""One run from a validated Scenario to a results folder."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadgen import api
from loadgen.compare import compare_within_run, parse_limit, to_json
from loadgen.console import stderr_console
from loadgen.correlate import new_run_id
from loadgen.engine.core import TesterStats
from loadgen.engine.drive import Part, drive
from loadgen.engine.requests import load_bodies, targets_of
from loadgen.engine.workers import Merged, WorkerPool
from loadgen.errors import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CannotRunError
from loadgen.gates import AbortWatch, evaluate
from loadgen.histograms import histogram_summary
from loadgen.metrics import NS_PER_S, Interval, Recorder, Stats
from loadgen.results.ci import write_ci_outputs
from loadgen.results.report import write_report
from loadgen.results.writer import ResultsWriter, run_folder
from loadgen.scenario import Scenario
from loadgen.transport.base import Transport
from loadgen.transport.credentials import CredentialSource
from loadgen.transport.fast import FastTransport

DEFAULT_RESULTS = Path("results")
ABORT_PREFIX = "abort_on_fail"


@dataclass(frozen=True)
class RunOptions:
    out: Path = DEFAULT_RESULTS  # parent of the run folder
    quiet: bool = False
    status_interval_s: float = 0.25  # also how soon a second is closed and judged


@dataclass
class RunResult:
    folder: Path
    summary: dict[str, Any]
    stop_reason: str | None = None  # "SIGINT"/"SIGTERM" when interrupted

    @property
    def exit_code(self) -> int:
        """130 for a signal; 3 when a worker failure cut the run short; 1 for a failed gate."""
        if self.stop_reason in ("SIGINT", "SIGTERM"):
            return EXIT_INTERRUPTED
        if self.stop_reason is not None and not self.stop_reason.startswith(ABORT_PREFIX):
            return EXIT_CANNOT_RUN
        return EXIT_OK if self.summary.get("passed", True) else EXIT_FAILED


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
    scenario: Scenario,
    endpoint_url: str | None,
    stack: AsyncExitStack,
    connections: int | None = None,
) -> Transport:
    """The scenario's transport, started; closed (with its credentials) when `stack` unwinds."""
    load = scenario.load
    tls = scenario.tls
    connections = connections or load.max_connections
    transport: Transport
    if scenario.transport == "botocore":
        from loadgen.transport.botocore import BotocoreTransport  # aiobotocore: ~0.4 s to import

        transport = BotocoreTransport(
            endpoint_url=endpoint_url,
            region=scenario.region,
            max_connections=connections,
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
            max_connections=connections,
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
        if isinstance(exc, TimeoutError):
            reason = "timed out"
        else:  # the errno's own words: event loops phrase strerror differently
            reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise CannotRunError(f"cannot reach endpoint {host}:{port}: {reason}") from None
    writer.close()


def worker_count(scenario: Scenario) -> int:
    return (os.cpu_count() or 1) if scenario.workers == "auto" else scenario.workers


async def run_scenario(scenario: Scenario, options: RunOptions = RunOptions()) -> RunResult:
    from loadgen.console import LiveStatus, print_summary

    load_bodies(scenario)  # before anything starts: file problems are usage errors
    labels = [target.label for target in targets_of(scenario)]
    shares = worker_count(scenario)
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
        if not scenario.tls.verify:
            stderr_console().print(
                "[yellow]warning: TLS certificate verification is off (tls.verify: false)[/yellow]"
            )
        ctx = RunContext(scenario, new_run_id(), endpoint_url, datetime.now(UTC))

        pool = None
        if shares > 1:
            pool = WorkerPool(scenario, endpoint_url, ctx.run_id, shares)
            stack.callback(pool.close)
            await pool.wait_ready()
        else:
            transport = await open_transport(scenario, endpoint_url, stack)

        folder = run_folder(options.out, scenario.name, ctx.started)
        writer = ResultsWriter(folder, labels, ctx.started.timestamp())
        stack.callback(writer.close)
        status = LiveStatus(scenario, labels, enabled=not options.quiet)

        watch = None
        if scenario.thresholds.abort_on_fail is not None:
            watch = AbortWatch(scenario.thresholds.abort_on_fail, labels, ctx.stop)

        def sink(interval: Interval) -> None:
            writer.interval(interval)
            status.observe(interval)
            if watch is not None:
                watch.observe(interval)

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, ctx.stop, signal.Signals(signum).name)
            stack.callback(loop.remove_signal_handler, signum)

        with status:
            if pool is None:
                driven = await drive(
                    scenario,
                    transport,
                    Part(ctx.run_id),
                    time.monotonic_ns(),
                    sink,
                    ctx.stop_event,
                    lambda _, elapsed: status.update(elapsed),
                    options.status_interval_s,
                )
                recorder, tester, elapsed_s = driven.recorder, driven.tester, driven.elapsed_s
            else:
                start_ns = pool.start()
                merged = Merged(Recorder(labels, start_ns))
                ticker = loop.create_task(_show_status(status, start_ns, options.status_interval_s))
                expected = scenario.load.duration or float("inf")
                deadline = time.monotonic() + expected + scenario.load.timeout + 30
                await pool.collect(merged, sink, ctx.stop_event, deadline)
                ticker.cancel()
                if merged.failure:
                    ctx.stop(merged.failure)
                recorder, tester = merged.recorder, merged.tester
                elapsed_s = (time.monotonic_ns() - start_ns) / NS_PER_S
        writer.flush()
        summary = build_summary(ctx, recorder, tester, elapsed_s, shares)
        writer.write_histograms(encoded_histograms(recorder))
        apply_gates(scenario, summary, folder)
        writer.write_summary(summary)
        write_ci_outputs(folder, summary)
        write_report(folder)
    if not options.quiet:
        print_summary(summary, folder)
    return RunResult(folder, summary, ctx.stop_reason)


def apply_gates(scenario: Scenario, summary: dict[str, Any], folder: Path) -> None:
    """Thresholds into the summary; `passed` is False when any fails or the run was aborted."""
    results = evaluate(scenario.thresholds, summary)
    summary["thresholds"] = [result.to_json() for result in results]
    comparisons = []
    for pair in scenario.compare:
        limits = [parse_limit(f"{metric}={limit}") for metric, limit in pair.max_regression.items()]
        comparisons += compare_within_run(folder, [(pair.base, pair.new)], limits)
    summary["comparisons"] = to_json(comparisons)["comparisons"]
    for entry in summary["comparisons"]:
        entry["failed_limits"] = [
            f"{limit['metric']} at least {limit['change_low']:+.1%} (95% CI low end), limit +{limit['max_increase']:.0%}"
            for limit in entry["limits"]
            if limit["failed"]
        ]
    aborted = (summary["stop_reason"] or "").startswith(ABORT_PREFIX)
    failed_comparison = any(comparison.failed for comparison in comparisons)
    summary["passed"] = (
        all(result.passed for result in results) and not failed_comparison and not aborted
    )


async def _show_status(status: Any, start_ns: int, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        status.update((time.monotonic_ns() - start_ns) / NS_PER_S)


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
    slowest = recorder.slowest(label)
    summary["slowest"] = [
        {"trace_id": slow.trace_id, "latency_ms": slow.latency_us / 1000.0, "variant": slow.variant}
        for slow in slowest
    ]
    endpoint_name = label.split("/", 1)[0]
    summary["slowest_query"] = api.logs_insights_query(
        endpoint_name, [slow.trace_id for slow in slowest]
    )
    return summary


def build_summary(
    ctx: RunContext, recorder: Recorder, tester: TesterStats, elapsed_s: float, workers: int
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
        "workers": workers,
        "achieved_rate_rps": round(tester.achieved_rate(), 3),
        "start_delay_ms": histogram_summary(tester.start_delay),
        "interrupted_requests": tester.interrupted,
        "client_failure": tester.client_failure,
        "endpoints": endpoints,
        "total": total.summary(elapsed_s),
    }
