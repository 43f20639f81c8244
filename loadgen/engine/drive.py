"""One engine on one event loop: what a single-process run and each worker process both do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadgen.correlate import Correlator, TraceIds
from loadgen.engine.core import Engine, TesterStats
from loadgen.engine.executors import Executor
from loadgen.engine.requests import RequestFactory, load_bodies, targets_of
from loadgen.metrics import NS_PER_S, IntervalSink, Recorder
from loadgen.scenario import Scenario
from loadgen.transport.base import Transport


def share_of(total: int, share: int, shares: int) -> int:
    """This process's part of `total` when `shares` processes split it as evenly as possible."""
    base, extra = divmod(total, shares)
    return max(1, base + (1 if share < extra else 0))


@dataclass(frozen=True)
class Part:
    """Which part of the run this engine carries: worker `share` of `shares`."""

    run_id: str
    share: int = 0
    shares: int = 1


@dataclass
class Driven:
    recorder: Recorder
    tester: TesterStats
    elapsed_s: float


async def drive(
    scenario: Scenario,
    transport: Transport,
    part: Part,
    start_ns: int,
    sink: IntervalSink,
    stop: asyncio.Event,
    on_tick: Callable[[Recorder, float], None] | None = None,
    tick_s: float = 0.5,
) -> Driven:
    """Run the scenario's load from `start_ns` until its schedule ends or `stop` is set.

    On stop, no new request starts; those in flight get up to the timeout, then are cancelled.
    """
    targets = targets_of(scenario)
    recorder = Recorder([target.label for target in targets], start_ns, sink)
    factory = RequestFactory(
        targets,
        load_bodies(scenario),
        scenario.request.custom_attributes,
        TraceIds(part.run_id, part.share),
    )
    slots = share_of(scenario.load.max_connections, part.share, part.shares)
    engine = Engine(transport, factory, Correlator(scenario.correlation), recorder, slots)
    executor = Executor.registry[scenario.load.executor](scenario.load, part.share, part.shares)  # type: ignore[call-arg]

    delay_ns = start_ns - time.monotonic_ns()
    if delay_ns > 0:
        await asyncio.sleep(delay_ns / NS_PER_S)
    loop = asyncio.get_running_loop()
    schedule = loop.create_task(executor.run(engine, start_ns))
    ticker = loop.create_task(_tick(recorder, start_ns, tick_s, on_tick))
    stopper = loop.create_task(stop.wait())
    try:
        await asyncio.wait({schedule, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        schedule.cancel()
        await asyncio.gather(schedule, stopper, return_exceptions=True)
    if not schedule.cancelled() and (failure := schedule.exception()) is not None:
        raise failure
    # a request may spend its connect timeout and then its read timeout
    await engine.drain(scenario.load.connect_timeout + scenario.load.timeout)
    ticker.cancel()
    await asyncio.gather(ticker, return_exceptions=True)
    now = time.monotonic_ns()
    recorder.tick(now)
    recorder.flush()
    return Driven(recorder, engine.tester, (now - start_ns) / NS_PER_S)


async def _tick(
    recorder: Recorder,
    start_ns: int,
    every_s: float,
    on_tick: Callable[[Recorder, float], None] | None,
) -> None:
    """Close seconds even when no request completes (a stall shows as zeros), and report."""
    while True:
        await asyncio.sleep(every_s)
        now = time.monotonic_ns()
        recorder.tick(now)
        if on_tick is not None:
            on_tick(recorder, (now - start_ns) / NS_PER_S)
