"""One run from a validated Scenario to a results folder.

The runner orchestrates: it starts the engines (in process, as worker processes, or as Ray
actors on a cluster), feeds closed
seconds to the writer, the live status and the abort watch, and hands what the engines
recorded to `summarize`. It does not judge: the gates do, and the RunSummary's verdict
decides the exit code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.capacity_text import step_line
from loadgen.console import PROGRESS_EVERY_S, LiveStatus, stderr_console
from loadgen.correlate import new_run_id
from loadgen.engine.capacity import CapacityFound, drive_capacity
from loadgen.engine.context import OVERRUN_ALLOWANCE_S, START_LEAD_NS, RunContext
from loadgen.engine.drive import Driven, Reporting, drive
from loadgen.engine.interarrival import with_seed
from loadgen.engine.requests import load_bodies, targets_of
from loadgen.engine.summarize import Finished, summarize
from loadgen.engine.transports import check_reachable, open_transport, regional_url
from loadgen.engine.workers import Merged, Pool, WorkerPool
from loadgen.gates import AbortWatch, RefusalWatch
from loadgen.metrics import NS_PER_S, Interval, Recorder
from loadgen.region import resolve_region, with_region
from loadgen.results.ci import write_ci_outputs
from loadgen.results.report import write_report
from loadgen.results.rundata import RunData
from loadgen.results.writer import ResultsWriter, run_folder
from loadgen.scenario import CapacitySearch, Scenario
from loadgen.summary import CapacityStep, RunSummary, StopReason

DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class RunOptions:
    out: Path = DEFAULT_RESULTS  # parent of the run folder
    quiet: bool = False
    region: str | None = None  # --region: used when the scenario names none
    status_interval_s: float = 0.25  # also how soon a second is closed and judged
    progress_every_s: float = PROGRESS_EVERY_S  # the plain progress line, stderr not a terminal


@dataclass(frozen=True)
class RunResult:
    folder: Path
    summary: RunSummary

    @property
    def exit_code(self) -> int:
        return self.summary.verdict.exit_code


class Stopping:
    """Why the run ends before its schedule does; the first cause wins."""

    def __init__(self) -> None:
        self.reason = StopReason.COMPLETED
        self.detail: str | None = None
        self.event = asyncio.Event()

    def stop(self, reason: StopReason, detail: str | None = None) -> None:
        if self.reason is StopReason.COMPLETED:
            self.reason = reason
            self.detail = detail
        self.event.set()


def worker_count(scenario: Scenario) -> int:
    workers = scenario.workers
    return workers if isinstance(workers, int) else os.cpu_count() or 1  # "auto"


async def run_scenario(scenario: Scenario, options: RunOptions = RunOptions()) -> RunResult:
    region = resolve_region(scenario, options.region)
    scenario = with_seed(with_region(scenario, region))
    load_bodies(scenario)  # before anything starts: file problems are usage errors
    labels = [target.label for target in targets_of(scenario)]
    async with AsyncExitStack() as stack:
        endpoint_url = scenario.endpoint_url
        if scenario.uses_mock:
            from loadgen.mock.server import start_mock

            mock = await start_mock(scenario.mock)
            stack.push_async_callback(mock.close)
            endpoint_url = mock.url
        else:
            await check_reachable(
                endpoint_url or regional_url(region.name), scenario.load.connect_timeout
            )
        if not scenario.tls.verify:
            stderr_console().print(
                "[yellow]warning: TLS certificate verification is off (tls.verify: false)[/yellow]"
            )
        shares = worker_count(scenario)
        ray_session = None
        if scenario.cluster is not None:  # the workers are Ray actors; Ray is imported now
            from loadgen.engine import cluster

            ray_session = await cluster.connect(
                scenario.cluster, scenario.workers, scenario.load.connect_timeout
            )
            stack.callback(ray_session.close)
            shares = ray_session.worker_count(scenario.workers)
        ctx = RunContext(scenario, new_run_id(), endpoint_url, shares=shares)
        started = datetime.now(UTC)

        pool: Pool[Any] | None = None
        if ray_session is not None:
            pool = await cluster.ray_pool(ray_session, ctx)
            stack.push_async_callback(pool.close)
            await pool.wait_ready()
        elif ctx.shares > 1:
            pool = WorkerPool(ctx)
            stack.push_async_callback(pool.close)
            await pool.wait_ready()
        else:
            transport = await open_transport(
                scenario, endpoint_url, ctx.connections, stack, ctx.warm_connections
            )

        folder = run_folder(options.out, scenario.name, started)
        writer = ResultsWriter(folder, labels, started.timestamp())
        stack.callback(writer.close)
        status = LiveStatus(
            scenario,
            labels,
            enabled=not options.quiet,
            progress_every_s=options.progress_every_s,
        )
        stopping = Stopping()

        watch = None
        if scenario.thresholds.abort_on_fail is not None:
            rule = scenario.thresholds.abort_on_fail
            watch = AbortWatch(rule, labels, lambda why: stopping.stop(StopReason.ABORTED, why))

        refusals = RefusalWatch(
            labels, region.name, lambda why: stopping.stop(StopReason.REFUSED, why)
        )

        def sink(interval: Interval) -> None:
            writer.interval(interval)
            status.observe(interval)
            refusals.observe(interval)
            if watch is not None:
                watch.observe(interval)

        loop = asyncio.get_running_loop()
        for signum, reason in (
            (signal.SIGINT, StopReason.SIGINT),
            (signal.SIGTERM, StopReason.SIGTERM),
        ):
            loop.add_signal_handler(signum, stopping.stop, reason)
            stack.callback(loop.remove_signal_handler, signum)

        capacity: CapacityFound | None = None
        driven: Driven
        with status:
            if pool is None:
                reporting = Reporting(
                    sink, lambda _, progress: status.update(progress), options.status_interval_s
                )
                start_ns = time.monotonic_ns() + START_LEAD_NS
                if isinstance(scenario.load, CapacitySearch):
                    on_step = None if options.quiet else _print_step
                    searched = await drive_capacity(
                        ctx, transport, start_ns, stopping.event, reporting, on_step
                    )
                    driven, capacity = searched, searched.capacity
                else:
                    driven = await drive(ctx, transport, start_ns, stopping.event, reporting)
                recorder, tester, elapsed_s = driven.recorder, driven.tester, driven.elapsed_s
            else:
                start_ns = pool.start()
                merged = Merged(Recorder(labels, start_ns))
                ticker = loop.create_task(
                    _show_status(status, pool, start_ns, options.status_interval_s)
                )
                planned_end = start_ns / NS_PER_S + (scenario.load.duration or float("inf"))
                deadline = ctx.finish_deadline(planned_end + OVERRUN_ALLOWANCE_S)
                await pool.collect(merged, sink, stopping.event, deadline)
                ticker.cancel()
                if merged.failure is not None:
                    stopping.stop(merged.failure.reason, merged.failure.detail)
                recorder, tester = merged.recorder, merged.tester
                elapsed_s = (time.monotonic_ns() - start_ns) / NS_PER_S
        writer.flush()
        finished = Finished(
            recorder,
            tester,
            elapsed_s,
            stopping.reason,
            stopping.detail,
            pool.cluster_info() if pool is not None else None,
            capacity=capacity,
        )
        summary, histograms = summarize(ctx, started, finished)
        writer.write_histograms(histograms)
        writer.write_summary(summary)
        write_ci_outputs(folder, summary)
        write_report(folder, RunData.of(summary, writer.timeseries, histograms))
    return RunResult(folder, summary)


def _print_step(step: CapacityStep) -> None:
    """A capacity search's step, on stderr as it is judged (above the live line)."""
    stderr_console().print(step_line(step), soft_wrap=True)


async def _show_status(status: LiveStatus, pool: Pool[Any], start_ns: int, every_s: float) -> None:
    """The workers' progress as of their latest ticks, the clock as of now."""
    while True:
        await asyncio.sleep(every_s)
        status.update(pool.progress(), (time.monotonic_ns() - start_ns) / NS_PER_S)
