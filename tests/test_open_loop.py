"""The open loop: intended start times from the schedule's arithmetic, handed out as they
fall due whatever the batch, and latency counted from them. An injected clock throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from loadgen.correlate import Correlator, TraceIds
from loadgen.engine.arrivals import EARLY_NS, RELEASE_EVERY_NS, Arrivals
from loadgen.engine.busypoll import BusyPoll
from loadgen.engine.callers import OpenCaller
from loadgen.engine.context import RunContext
from loadgen.engine.core import Engine
from loadgen.engine.requests import RequestFactory
from loadgen.engine.schedule import constant_offsets, take_share
from loadgen.metrics import Recorder
from loadgen.transport.base import Outcome, Request, Target, Transport
from tests.servers import scenario

START_NS = 7_000_000_000
MS = 1_000_000


class Clock:
    def __init__(self, now_ns: int = 0) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


class Timer:
    def __init__(self, when_ns: int, callback: Callable[[], None]) -> None:
        self.when_ns = when_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """The loop's timers, fired by hand on the injected clock: a test decides when."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.timers: list[Timer] = []
        self.ticks = 0

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        assert delay_s >= 0.001  # whole milliseconds, never a timer that fires at once
        timer = Timer(self.clock() + round(delay_s * 1e9), callback)
        self.timers.append(timer)
        return timer

    def call_soon(self, callback: Callable[[], None]) -> Timer:
        return self.call_later(0.001, callback)

    def advance(self, now_ns: int) -> None:
        """Move the clock to `now_ns`, firing each timer due by then at its own time."""
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when_ns <= now_ns]
            if not due:
                break
            timer = min(due, key=lambda t: t.when_ns)
            self.timers.remove(timer)
            self.clock.now_ns = max(self.clock.now_ns, timer.when_ns)
            self.ticks += 1
            timer.callback()
        self.clock.now_ns = now_ns


class NeverTransport(Transport):
    """The callers are driven by hand here: nothing is sent."""

    name = "never"

    async def invoke(self, request: Request) -> Outcome:
        raise AssertionError("not used")


def offsets(rate: float, requests: int, share: int = 0, shares: int = 1) -> Iterator[float]:
    return take_share(constant_offsets(rate, None, requests), share, shares)


def arrivals_at(start_ns: int, schedule: Iterator[float]) -> tuple[Arrivals, ManualLoop]:
    clock = Clock(start_ns - 50 * MS)
    loop = ManualLoop(clock)
    return Arrivals(schedule, start_ns, clock, loop), loop  # type: ignore[arg-type]


def take_all(arrivals: Arrivals, now_ns: int) -> list[int]:
    """Take every request due by `now_ns`, checking that `due` (on which a lane parks
    without taking) agrees with each take."""
    taken = []
    while True:
        due = arrivals.due(now_ns)
        intended = arrivals.take(now_ns)
        assert due == (intended is not None)
        if intended is None:
            return taken
        taken.append(intended)


@pytest.mark.parametrize("shares", [1, 2, 3])
@pytest.mark.parametrize("step_ms", [0.3, 1, 7, 50])
def test_intended_times_are_start_plus_i_over_rate_striped_whatever_the_batch(
    shares: int, step_ms: float
) -> None:
    """1,000 req/s for 0.1 s: request i is due at start + i ms, and worker `share` of
    `shares` gets exactly every shares-th of them, however the clock advances."""
    for share in range(shares):
        arrivals, loop = arrivals_at(START_NS, offsets(1000, 100, share, shares))
        taken: list[int] = []
        now = START_NS - 5 * MS
        while not arrivals.finished:
            loop.advance(now)
            batch = take_all(arrivals, now)
            assert all(intended <= now + EARLY_NS for intended in batch)  # never early by more
            taken += batch
            now += int(step_ms * MS)
        assert taken == [START_NS + i * MS for i in range(share, 100, shares)]
        assert arrivals.take(now) is None and not arrivals.park(lambda: None)
        loop.advance(now + 5 * MS)
        assert not [t for t in loop.timers if not t.cancelled]  # no tick once all are out


def test_a_free_caller_takes_what_is_due_and_a_tick_releases_what_falls_due_soon() -> None:
    """Late by 50 ms (the loop was busy): free callers take the 51 requests due by now,
    oldest first, each with its own intended time, without waiting for a tick; a tick then
    releases the two due within EARLY_NS."""
    arrivals, loop = arrivals_at(START_NS, offsets(1000, 100))
    assert arrivals.take(loop.clock()) is None  # nothing due yet
    now = loop.clock.now_ns = START_NS + 50 * MS
    assert take_all(arrivals, now) == [START_NS + i * MS for i in range(51)]
    arrivals.tick()
    assert take_all(arrivals, now) == [START_NS + i * MS for i in range(51, 53)]
    assert take_all(arrivals, now) == []


def test_ticks_come_every_millisecond_while_requests_are_dense_and_sleep_between_sparse() -> None:
    def ticks(rate: float, requests: int) -> int:
        """Ticks in 0.5 s, a caller taking what each releases."""
        arrivals, loop = arrivals_at(START_NS, offsets(rate, requests))
        for ms in range(-50, 500):
            loop.advance(START_NS + ms * MS)
            take_all(arrivals, START_NS + ms * MS)
        return loop.ticks

    assert 450 <= ticks(10_000, 10_000) <= 551  # about one a millisecond
    assert ticks(10, 5) <= 5 + 3  # one for each request, a spare at the end


def test_a_busy_polling_loop_releases_every_100_us_and_arms_no_timer() -> None:
    """With busy_poll, Arrivals releases on the poll's turns (here every 10 µs), once each
    RELEASE_EVERY_NS, and arms no timer: at 7,000 req/s a parked caller is resumed for each
    request within 100 µs of its coming within EARLY_NS, one at a time, where a millisecond
    timer releases seven at once."""
    clock = Clock(START_NS - 50 * MS)
    loop = ManualLoop(clock)
    poll = BusyPoll(loop, clock)  # type: ignore[arg-type]
    arrivals = Arrivals(offsets(7_000, 70), START_NS, clock, loop, poll)  # type: ignore[arg-type]
    assert poll.on_turn == arrivals.poll
    sent: list[tuple[int, int]] = []  # (resumed at, intended)

    def caller() -> None:  # sends what it takes at once, done at once, parks again
        intended = arrivals.take(clock.now_ns)
        assert intended is not None
        sent.append((clock.now_ns, intended))
        arrivals.park(caller)

    arrivals.park(caller)
    while poll.on_turn(clock.now_ns):
        clock.now_ns += 10_000
    assert [intended for _, intended in sent] == [START_NS + int(i / 7000 * 1e9) for i in range(70)]
    delays = [at - (intended - EARLY_NS) for at, intended in sent]
    assert all(0 <= delay < RELEASE_EVERY_NS + 10_000 for delay in delays)
    assert max(delays) >= RELEASE_EVERY_NS // 2  # not every turn (each under 10 µs late)
    assert not loop.timers  # no tick was ever armed


def engine_with(clock: Clock) -> Engine:
    return Engine(
        NeverTransport(),
        RequestFactory([Target("ep", "ep")], [b"{}"], "{trace_id}", TraceIds("00000000")),
        Correlator("exact"),
        Recorder(["ep"], start_ns=START_NS),
        max_in_flight=4,
        clock=clock,
    )


def test_latency_counts_from_the_intended_start_service_time_from_the_send() -> None:
    arrivals, loop = arrivals_at(START_NS, offsets(100, 3))
    engine = engine_with(loop.clock)
    caller = OpenCaller(engine, arrivals)
    # request 0 (due at start) sent as its tick released it, 2 ms early: on time; request 1
    # (due at +10 ms) on time; request 2 (due at +20 ms) 7 ms late, the tick released it
    # but the caller was busy: its wait is latency, not service time
    for sent_ms, done_ms in ((-2, 3), (10, 13), (27, 30)):
        loop.advance(START_NS + int(sent_ms * MS))
        request = caller.take()
        assert request is not None
        loop.advance(START_NS + int(done_ms * MS))
        caller.ok(200, "AllTraffic", request.custom_attributes)
    stats = engine.recorder.endpoints["ep"].stats
    assert stats.requests == stats.ok == 3 and stats.late_starts == 1
    assert stats.correlation == {"matched": 3, "mismatched": 0, "missing": 0}
    latency, service = stats.latency, stats.service
    assert [latency.get_count_at_value(us) for us in (3000, 5000, 10_000)] == [1, 1, 1]
    assert [service.get_count_at_value(us) for us in (3000, 5000)] == [2, 1]
    delays = engine.tester.start_delay
    assert delays.total_count == engine.tester.sent == 3
    assert delays.get_count_at_value(0) == 2  # on-time starts count, as 0
    assert delays.get_max_value() == delays.get_highest_equivalent_value(7000)
    assert engine.recorder.endpoints["ep"].variants["AllTraffic"].requests == 3


def test_a_start_delayed_under_a_millisecond_is_not_late_but_its_wait_is_latency() -> None:
    """On time, a request is recorded as the closed loop records one (latency = service
    time, one counter); delayed at all, its wait counts in latency, late or not."""
    arrivals, loop = arrivals_at(START_NS, offsets(100, 2))
    engine = engine_with(loop.clock)
    caller = OpenCaller(engine, arrivals)
    for sent_us, done_us in ((0, 2000), (10_400, 12_000)):  # on time; 0.4 ms after its time
        loop.advance(START_NS + sent_us * 1000)
        request = caller.take()
        assert request is not None
        loop.advance(START_NS + done_us * 1000)
        caller.ok(200, None, request.custom_attributes)
    stats = engine.recorder.endpoints["ep"].stats
    assert stats.requests == stats.ok == 2 and stats.late_starts == 0
    assert [stats.latency.get_count_at_value(us) for us in (1600, 2000)] == [0, 2]
    assert [stats.service.get_count_at_value(us) for us in (1600, 2000)] == [1, 1]
    assert engine.tester.start_delay.get_count_at_value(400) == 1


def test_errors_and_mismatches_take_the_general_path_from_the_intended_time() -> None:
    arrivals, loop = arrivals_at(START_NS, offsets(100, 2))
    engine = engine_with(loop.clock)
    caller = OpenCaller(engine, arrivals)
    loop.advance(START_NS + 2 * MS)  # released 2 ms early, taken 2 ms late
    assert caller.take() is not None
    loop.advance(START_NS + 7 * MS)
    caller.done(Outcome(424, "ModelError", None, None, 500))
    loop.advance(START_NS + 10 * MS)
    assert caller.take() is not None
    loop.advance(START_NS + 11 * MS)
    caller.ok(200, None, "trace=ffffffff-000-000000000000")
    stats = engine.recorder.endpoints["ep"].stats
    assert stats.errors == {"ModelError": 1} and stats.model_error_status == {"500": 1}
    assert stats.correlation["mismatched"] == 1 and len(stats.samples) == 1
    assert stats.latency.get_count_at_value(7000) == 1  # 2 ms waiting + 5 ms served
    assert stats.service.get_count_at_value(5000) == 1
    assert stats.late_starts == 1


async def test_parked_callers_are_resumed_one_per_due_request_then_ended() -> None:
    """Four callers park. The timer resumes two at +20 ms (two requests due), one at +50 ms,
    and once the schedule is spent the last one learns that it is done."""
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return int(loop.time() * 1e9)

    start_ns = clock()
    arrivals = Arrivals(iter([0.02, 0.02, 0.05]), start_ns, clock, loop)
    took: list[tuple[str, int, int]] = []  # (caller, intended, when)
    ended: list[str] = []
    all_ended = asyncio.Event()

    def caller(name: str) -> Callable[[], None]:
        def resume() -> None:
            now = clock()
            intended = arrivals.take(now)
            if intended is not None:
                took.append((name, intended, now))  # and it would send it now
            elif not arrivals.park(resume):
                ended.append(name)
                all_ended.set()

        return resume

    for name in "abcd":
        assert arrivals.park(caller(name))
    await asyncio.wait_for(all_ended.wait(), 2)
    assert [intended - start_ns for _, intended, _ in took] == [20 * MS, 20 * MS, 50 * MS]
    assert all(when >= intended - EARLY_NS for _, intended, when in took)
    assert len({name for name, _, _ in took}) == 3 and len(ended) == 1
    assert {name for name, _, _ in took} | set(ended) == set("abcd")


async def test_a_batch_wakes_no_more_callers_than_it_has_requests() -> None:
    """200 parked callers, 40 requests over 80 ms: every wake-up takes a request (a lane
    resumed for nothing would re-park, and a timer that woke them all would spin)."""
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return int(loop.time() * 1e9)

    arrivals = Arrivals(offsets(500, 40), clock(), clock, loop)
    woken = {"took": 0, "idle": 0, "ended": 0}
    all_taken = asyncio.Event()

    def caller() -> Callable[[], None]:
        def resume() -> None:
            if arrivals.take(clock()) is not None:
                woken["took"] += 1
                if woken["took"] == 40:
                    all_taken.set()
            elif arrivals.park(resume):
                woken["idle"] += 1
            else:
                woken["ended"] += 1

        return resume

    for _ in range(200):
        assert arrivals.park(caller())
    await asyncio.wait_for(all_taken.wait(), 2)
    await asyncio.sleep(0.01)
    assert woken == {"took": 40, "idle": 0, "ended": 160}


def test_connections_opened_before_the_start_are_what_the_first_10_ms_need() -> None:
    closed = scenario("http://127.0.0.1:9", executor="constant-concurrency", concurrency=40)
    assert RunContext(closed, "00000000", None, 0, 2).warm_connections == 20
    slow = scenario("http://127.0.0.1:9", rate=200, max_in_flight=256)
    assert RunContext(slow, "00000000", None).warm_connections == 2
    fast = scenario("http://127.0.0.1:9", rate=60_000, max_in_flight=64)
    assert RunContext(fast, "00000000", None).warm_connections == 64
    assert RunContext(fast, "00000000", None, 1, 2).warm_connections == 32
