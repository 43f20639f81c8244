"""capacity-search: the highest rate an endpoint serves within its SLO.

The search (search.py) doubles the rate from `start_rate` while steps are good, then
bisects between the last good and the first bad rate until they are within `precision` of
the good one; a good step at `max_rate` ends it there, and says so.

`drive_capacity` runs the steps one after another on the run's one transport. Each step is
a constant-arrival-rate open loop of `step_duration` (executors.py, as any run's), so its
latency counts from intended starts; it is good when its requests meet the SLO and the
tester kept its schedule (else it measured the tester): bad only when it sent under 99% of the
scheduled rate with its median start late (over 1 ms), as a tester steadily behind does; a
stall at a step's end cuts the first-to-last-send rate, but leaves most starts on time. One
Recorder records every step, its seconds streaming to the run's files as usual; at a
step's end its part (`Recorder.take_state`) is judged, and kept as the step's histograms.

Between steps the queue drains: the step's own drain waits until nothing is in flight,
then a short closed-loop probe must see latency back near the first step's p50 (an
endpoint still working off requests the tester gave up on is not idle), retried after
growing pauses for up to one step_duration. One probe before the first step warms the
endpoint and a connection. Probe requests are counted apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadgen.correlate import Correlator
from loadgen.engine.busypoll import BusyPoll
from loadgen.engine.context import RunContext
from loadgen.engine.core import LATE_NS, Engine, Progress, TesterStats
from loadgen.engine.drive import Driven, Reporting, cpu_busy, request_factory, run_schedule
from loadgen.engine.executors import ConstantArrivalRateExecutor, ConstantConcurrencyExecutor
from loadgen.engine.requests import RequestSource, targets_of
from loadgen.engine.search import Search
from loadgen.gates import check_endpoint
from loadgen.histograms import HistogramPair, percentiles_ms
from loadgen.metrics import NS_PER_S, Recorder, RecorderState, Stats
from loadgen.scenario import CapacitySearch, ConstantArrivalRate, ConstantConcurrency, Slo
from loadgen.stream_metrics import Goodput
from loadgen.summary import (
    BEHIND_ACHIEVED_SHARE,
    CapacityStep,
    CapacitySummary,
    step_label,
)
from loadgen.transport.base import Transport

STEP_LEAD_NS = 20_000_000  # a step's callers get ready this long before its first request
PROBE_REQUESTS = 5  # one after another; their p50 is the probe's latency
# The probe's p50 is back near the first step's when within this factor, or this many ms
SETTLED_RISE = 1.5
SETTLED_MIN_MS = 2.0
FIRST_PAUSE_S = 0.1  # before the next probe; doubled each time


# --- one step -------------------------------------------------------------------------------


def step_config(load: CapacitySearch, rate: float, number: int) -> ConstantArrivalRate:
    """Step `number` (from 1) as an open loop; drawn arrivals get their own seed per step."""
    return ConstantArrivalRate(
        executor="constant-arrival-rate",
        rate=rate,
        duration=load.step_duration,
        max_in_flight=load.max_in_flight,
        timeout=load.timeout,
        connect_timeout=load.connect_timeout,
        stream_idle_timeout=load.stream_idle_timeout,
        arrival=load.arrival,
        burstiness=load.burstiness,
        seed=None if load.seed is None else load.seed + number,
    )


def scheduled_rate(executor: ConstantArrivalRateExecutor) -> float:
    """The rate the step's schedule asks for: its rate, or for drawn arrivals what the draws
    came to ((n - 1) over the first to the last start), which the achieved rate is held to."""
    config = executor.config
    if config.arrival == "constant":
        return config.rate
    count, first, last = 0, 0.0, 0.0
    for offset in executor.offsets():
        if not count:
            first = offset
        count += 1
        last = offset
    return (count - 1) / (last - first) if count > 1 and last > first else config.rate


def judge_step(
    label: str,
    rate: float,
    scheduled_rps: float,
    stats: Stats,
    tester: TesterStats,
    elapsed_s: float,
    slo: Slo,
    settled: bool,
) -> CapacityStep:
    """A step's figures, and what it broke: an SLO limit (gates.check_endpoint, as a
    threshold would be checked), or the rate, when the tester fell behind it: sent under 99%
    of it, with the median start late."""
    traffic = stats.summary(elapsed_s)
    failures = [
        result.failure()
        for result in check_endpoint(label, slo.limits(), traffic)
        if not result.passed
    ]
    achieved = tester.achieved_rate()
    if tester.sent > 1 and achieved < BEHIND_ACHIEVED_SHARE * scheduled_rps:
        (delay_p50_ms,) = percentiles_ms(tester.start_delay, (50.0,))
        if delay_p50_ms * 1e6 > LATE_NS:
            failures.append(
                f"achieved {achieved:,.1f} req/s, {achieved / scheduled_rps:.0%} of the "
                f"{scheduled_rps:,.1f} scheduled, start delay p50 {delay_p50_ms:,.1f} ms "
                "(the tester or max_in_flight held it back)"
            )
    requests = traffic.requests
    ttft = traffic.ttft_ms
    return CapacityStep(
        label=label,
        rate=rate,
        achieved_rps=round(achieved, 3),
        requests=requests,
        p50_ms=traffic.latency_ms.p50,
        p99_ms=traffic.latency_ms.p99,
        error_rate=round(traffic.error_count / requests, 6) if requests else 0.0,
        ttft_p50_ms=None if ttft is None else ttft.p50,
        ttft_p99_ms=None if ttft is None else ttft.p99,
        settled=settled,
        failures=tuple(failures),
    )


def merged_stats(labels: list[str], state: RecorderState) -> Stats:
    """A step's requests of every endpoint as one: the SLO holds for all of them."""
    recorder = Recorder(labels, 0)
    recorder.merge_state(state)
    return recorder.totals()


# --- between steps --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    settled: bool
    probe_ms: float  # the last probe's p50
    sent: int  # probe requests


class Prober:
    """Short closed-loop probes on the run's transport, recorded apart from the run."""

    def __init__(
        self,
        ctx: RunContext,
        transport: Transport,
        factory: RequestSource,
        correlator: Correlator,
        labels: list[str],
    ) -> None:
        load = ctx.scenario.load
        self._load = ConstantConcurrency(
            executor="constant-concurrency",
            concurrency=1,
            requests=PROBE_REQUESTS,
            timeout=load.timeout,
            connect_timeout=load.connect_timeout,
            stream_idle_timeout=load.stream_idle_timeout,
        )
        self._grace_s = ctx.graceful_stop_s
        self._transport = transport
        self._factory = factory
        self._correlator = correlator
        self._labels = labels

    async def probe(self) -> tuple[float, int]:
        """The p50 of PROBE_REQUESTS requests sent one after another, and how many were sent."""
        now = time.monotonic_ns()
        recorder = Recorder(self._labels, now)
        engine = Engine(self._transport, self._factory, self._correlator, recorder, 1)
        await ConstantConcurrencyExecutor(self._load).run(engine, now)
        await engine.drain(self._grace_s)
        (p50,) = percentiles_ms(recorder.totals().latency, (50.0,))
        return p50, engine.tester.sent

    async def settle(self, baseline_ms: float, budget_s: float, stop: asyncio.Event) -> Settled:
        """Probe until latency is back near `baseline_ms`, pausing longer each time, for up
        to `budget_s`; the queue was drained (nothing in flight) before this is called."""
        limit = max(SETTLED_RISE * baseline_ms, baseline_ms + SETTLED_MIN_MS)
        waited, pause, sent = 0.0, FIRST_PAUSE_S, 0
        while True:
            probe_ms, probes = await self.probe()
            sent += probes
            if probe_ms <= limit:
                return Settled(True, probe_ms, sent)
            if waited >= budget_s or stop.is_set():
                return Settled(False, probe_ms, sent)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            waited += pause
            pause *= 2


# --- the steps, one after another -----------------------------------------------------------


@dataclass(frozen=True)
class CapacityFound:
    """What a search leaves for the summary: its finding, and each step's histograms."""

    summary: CapacitySummary
    histograms: dict[str, HistogramPair]  # by step label


@dataclass
class CapacityDriven(Driven):
    capacity: CapacityFound


StepHook = Callable[[CapacityStep], None]


class _Ticker:
    """drive._tick's job across steps: closes the run's seconds, and reports the progress of
    the step under way on top of the steps before it."""

    def __init__(self, recorder: Recorder, start_ns: int, reporting: Reporting) -> None:
        self._recorder = recorder
        self._start_ns = start_ns
        self._reporting = reporting
        self.engine: Engine | None = None
        self.sent_before = 0

    def step_done(self, engine: Engine) -> None:
        self.sent_before += engine.tester.sent
        self.engine = None

    def progress(self, at_s: float) -> Progress:
        engine = self.engine
        if engine is None:
            return Progress(self.sent_before, 0, at_s)
        now = engine.progress(at_s)
        return Progress(self.sent_before + now.sent, now.in_flight, at_s)

    async def run(self) -> None:
        on_tick = self._reporting.on_tick
        while True:
            await asyncio.sleep(self._reporting.every_s)
            now = time.monotonic_ns()
            self._recorder.tick(now)
            if on_tick is not None:
                on_tick(self._recorder, self.progress((now - self._start_ns) / NS_PER_S))


async def drive_capacity(
    ctx: RunContext,
    transport: Transport,
    start_ns: int,
    stop: asyncio.Event,
    reporting: Reporting,
    on_step: StepHook | None = None,
) -> CapacityDriven:
    """Search from `start_ns` until the search ends or `stop` is set (a step cut short is
    not judged); `on_step` hears of each step as it is judged."""
    scenario = ctx.scenario
    load = scenario.load
    assert isinstance(load, CapacitySearch), "the runner drives only capacity-search here"
    assert ctx.shares == 1, "the scenario allows capacity-search in one process only"
    targets = targets_of(scenario)
    labels = [target.label for target in targets]
    recorder = Recorder(labels, start_ns, reporting.sink, Goodput.of(scenario.goodput))
    total = Recorder(labels, start_ns)  # every step's requests
    factory = request_factory(ctx, targets)
    correlator = Correlator(scenario.correlation)
    prober = Prober(ctx, transport, factory, correlator, labels)
    tester = TesterStats()
    search = Search(load.start_rate, load.max_rate, load.precision)
    steps: list[CapacityStep] = []
    histograms: dict[str, HistogramPair] = {}
    probes = 0

    gc.freeze()  # as drive() does: what exists now lives as long as the run
    cpu_started_s, wall_started_s = time.process_time(), time.monotonic()
    ticker = _Ticker(recorder, start_ns, reporting)
    loop = asyncio.get_running_loop()
    busy_poll = BusyPoll(loop) if scenario.busy_poll else None
    ticking = loop.create_task(ticker.run())
    try:
        # a cold endpoint, or a connection's first request, would count in the first step
        _, probes = await prober.probe()
        step_start_ns = max(start_ns, time.monotonic_ns() + STEP_LEAD_NS)
        while (rate := search.next_rate) is not None and not stop.is_set():
            settled = True
            if steps:
                found = await prober.settle(steps[0].p50_ms, load.step_duration, stop)
                settled, probes = found.settled, probes + found.sent
                if stop.is_set():
                    break
                step_start_ns = time.monotonic_ns() + STEP_LEAD_NS
            number = len(steps) + 1
            executor = ConstantArrivalRateExecutor(step_config(load, rate, number))
            scheduled = scheduled_rate(executor)
            engine = Engine(transport, factory, correlator, recorder, ctx.connections)
            engine.busy_poll = busy_poll
            ticker.engine = engine
            completed = await run_schedule(
                executor, engine, step_start_ns, stop, ctx.graceful_stop_s, busy_poll
            )
            elapsed_s = (time.monotonic_ns() - step_start_ns) / NS_PER_S
            ticker.step_done(engine)
            tester.merge_state(engine.tester.to_state())
            state = recorder.take_state()
            total.merge_state(state)
            if not completed:
                break
            stats = merged_stats(labels, state)
            label = step_label(number, rate)
            step = judge_step(
                label, rate, scheduled, stats, engine.tester, elapsed_s, load.slo, settled
            )
            steps.append(step)
            histograms[label] = HistogramPair(stats.latency, stats.service)
            if on_step is not None:
                on_step(step)
            search.record(rate, step.good)
    finally:
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)
    now = time.monotonic_ns()
    recorder.tick(now)
    recorder.flush()
    tester.cpu_busy = cpu_busy(cpu_started_s, wall_started_s, busy_poll)
    summary = CapacitySummary(
        slo=load.slo,
        precision=load.precision,
        steps=tuple(steps),
        stopped_at_max_rate=search.stopped_at_max_rate,
        probe_requests=probes,
    )
    return CapacityDriven(
        total, tester, (now - start_ns) / NS_PER_S, CapacityFound(summary, histograms)
    )
