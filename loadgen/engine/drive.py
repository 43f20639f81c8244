"""One engine on one event loop: what a single-process run and each worker process both do."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadgen.correlate import Correlator, TraceIds
from loadgen.engine.busypoll import BusyPoll
from loadgen.engine.context import RunContext
from loadgen.engine.core import Engine, Progress, TesterStats
from loadgen.engine.executors import Executor
from loadgen.engine.requests import RequestFactory, load_bodies, targets_of
from loadgen.metrics import NS_PER_S, Interval, IntervalSink, Recorder
from loadgen.stream_metrics import Goodput
from loadgen.transport.base import Target, Transport

TickHook = Callable[[Recorder, Progress], None]  # progress.at_s: seconds since the start


@dataclass(frozen=True)
class Reporting:
    """Where an engine's results go while it runs: closed seconds to `sink`, and every
    `every_s` a tick (a worker sends its state on; a stall still closes its seconds)."""

    sink: IntervalSink
    on_tick: TickHook | None = None
    every_s: float = 0.5


@dataclass
class Driven:
    recorder: Recorder
    tester: TesterStats
    elapsed_s: float


async def drive(
    ctx: RunContext,
    transport: Transport,
    start_ns: int,
    stop: asyncio.Event,
    reporting: Reporting,
) -> Driven:
    """Run this part of the scenario's load from `start_ns` (a moment ahead: the callers
    get ready meanwhile) until its schedule ends or `stop` is set. Then no new request
    starts; those in flight get the graceful stop."""
    scenario = ctx.scenario
    targets = targets_of(scenario)
    closed: list[Interval] = []  # closed seconds, for _tick to hand on
    recorder = Recorder(
        [target.label for target in targets], start_ns, closed.append, Goodput.of(scenario.goodput)
    )
    factory = request_factory(ctx, targets)
    correlator = Correlator(scenario.correlation)
    engine = Engine(transport, factory, correlator, recorder, ctx.connections)
    executor = Executor.of(scenario.load, ctx.share, ctx.shares)

    # What exists now (imports, the scenario, the pool) lives as long as the run: out of the
    # collector's reach, a full collection mid-run takes a millisecond, not twenty.
    gc.freeze()
    cpu_started_s, wall_started_s = time.process_time(), time.monotonic()
    loop = asyncio.get_running_loop()  # the executor waits for `start_ns` itself
    busy_poll = engine.busy_poll = BusyPoll(loop) if scenario.busy_poll else None
    ticker = loop.create_task(_tick(engine, start_ns, reporting, closed))
    await run_schedule(executor, engine, start_ns, stop, ctx.graceful_stop_s, busy_poll)
    ticker.cancel()
    await asyncio.gather(ticker, return_exceptions=True)
    now = time.monotonic_ns()
    recorder.tick(now)
    recorder.flush()
    for interval in closed:
        reporting.sink(interval)
    engine.tester.cpu_busy = cpu_busy(cpu_started_s, wall_started_s, busy_poll)
    return Driven(recorder, engine.tester, (now - start_ns) / NS_PER_S)


def cpu_busy(cpu_started_s: float, wall_started_s: float, busy_poll: BusyPoll | None) -> float:
    """This process's CPU time since then over the wall time, less what busy polling idled."""
    wall_s = time.monotonic() - wall_started_s
    if wall_s <= 0:
        return 0.0
    cpu_s = time.process_time() - cpu_started_s
    if busy_poll is not None:
        cpu_s = max(cpu_s - busy_poll.idle_ns / NS_PER_S, 0.0)
    return cpu_s / wall_s


async def _tick(
    engine: Engine, start_ns: int, reporting: Reporting, closed: list[Interval]
) -> None:
    """Close seconds even when no request completes (a stall shows as zeros), and report
    with the engine's progress, read now (never counted per request).

    Closing, handing on each closed second and reporting each take their own turn of the
    loop, so the responses that arrived meanwhile are read between them: one stall of a
    millisecond or more a second made late starts near the open loop's ceiling."""
    recorder = engine.recorder
    on_tick = reporting.on_tick
    while True:
        await asyncio.sleep(reporting.every_s)
        now = time.monotonic_ns()
        recorder.tick(now)
        while closed:
            await asyncio.sleep(0)
            reporting.sink(closed.pop(0))  # popped after the wait: a cancel loses none
        if on_tick is not None:
            await asyncio.sleep(0)
            on_tick(recorder, engine.progress((now - start_ns) / NS_PER_S))


async def run_schedule(
    executor: Executor,
    engine: Engine,
    start_ns: int,
    stop: asyncio.Event,
    grace_s: float,
    busy_poll: BusyPoll | None = None,
) -> bool:
    """The executor's schedule from `start_ns` until it ends or `stop` is set (the loop
    polling without sleep meanwhile, with `busy_poll`), then the drain (`grace_s` for
    requests in flight); False if `stop` cut the schedule short."""
    loop = asyncio.get_running_loop()
    schedule = loop.create_task(executor.run(engine, start_ns))
    stopper = loop.create_task(stop.wait())
    if busy_poll is not None:
        busy_poll.start()
    try:
        await asyncio.wait({schedule, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if busy_poll is not None:
            busy_poll.stop()
        stopper.cancel()
        schedule.cancel()
        await asyncio.gather(schedule, stopper, return_exceptions=True)
    if not schedule.cancelled() and (failure := schedule.exception()) is not None:
        raise failure
    await engine.drain(grace_s)
    return not schedule.cancelled()


def request_factory(ctx: RunContext, targets: list[Target]) -> RequestFactory:
    """This engine's requests: the scenario's bodies, and trace IDs of its own share."""
    scenario = ctx.scenario
    return RequestFactory(
        targets,
        load_bodies(scenario),
        scenario.request.custom_attributes,
        TraceIds(ctx.run_id, ctx.share),
    )
