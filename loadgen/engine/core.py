"""The Engine: issues one request, times it, correlates the echo and records it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadgen.correlate import Correlator, Echo, MismatchSample
from loadgen.engine.requests import RequestFactory
from loadgen.histograms import new_histogram, record_value
from loadgen.metrics import Recorder
from loadgen.transport.base import Outcome, Request, Transport

LATE_NS = 1_000_000  # a start more than 1 ms after its intended time counts as late

CLIENT_FAILURE = "ClientFailure"
_MISMATCHED = Echo.MISMATCHED  # enum member look-ups cost ~0.1 µs: not per request

Clock = Callable[[], int]


class TesterStats:
    """How well the tester itself kept up: sends, start delays, interrupted requests."""

    def __init__(self) -> None:
        self.start_delay = new_histogram()  # sent minus intended, open loop only
        self.sent = 0
        self.first_sent_ns = 0
        self.last_sent_ns = 0
        self.interrupted = 0  # requests cancelled at the end of a stop's grace period
        self.client_failure: str | None = None  # first unexpected transport exception

    def note_failure(self, exc: BaseException) -> None:
        """Keep the first unexpected exception's type only: its text may hold a signed header."""
        if self.client_failure is None:
            self.client_failure = f"{type(exc).__module__}.{type(exc).__qualname__}"

    def achieved_rate(self) -> float:
        """Requests sent per second between the first and the last send: the rate the tester kept."""
        window_ns = self.last_sent_ns - self.first_sent_ns
        return (self.sent - 1) * 1e9 / window_ns if self.sent > 1 and window_ns > 0 else 0.0

    def to_state(self) -> TesterState:
        return TesterState(
            self.start_delay.encode().decode("ascii"),
            self.sent,
            self.first_sent_ns,
            self.last_sent_ns,
            self.interrupted,
            self.client_failure,
        )

    def merge_state(self, state: TesterState) -> None:
        """Monotonic clocks are shared by all processes on a machine, so windows combine."""
        if state.sent:
            self.start_delay.decode_and_add(state.start_delay)
            self.first_sent_ns = min(self.first_sent_ns or state.first_sent_ns, state.first_sent_ns)
            self.last_sent_ns = max(self.last_sent_ns, state.last_sent_ns)
        self.sent += state.sent
        self.interrupted += state.interrupted
        self.client_failure = self.client_failure or state.client_failure


@dataclass(frozen=True)
class TesterState:
    """TesterStats as it travels between processes (the histogram encoded)."""

    start_delay: str
    sent: int
    first_sent_ns: int
    last_sent_ns: int
    interrupted: int
    client_failure: str | None


class Engine:
    """Runs requests and keeps what runs them in one set, so a stop can drain or cancel them.

    Open loop: one task per request (`start`). Closed loop: one long-lived task per caller
    (`start_callers`) that awaits its requests directly; `stop_starting` lets each finish
    the request under way and then return. Either way `in_flight` holds the tasks that may
    have a request under way, and `drain` waits for them.
    """

    def __init__(
        self,
        transport: Transport,
        factory: RequestFactory,
        correlator: Correlator,
        recorder: Recorder,
        max_in_flight: int,
        clock: Clock = time.monotonic_ns,
    ) -> None:
        self.transport = transport
        self.factory = factory
        self.correlator = correlator
        self.recorder = recorder
        self.clock = clock
        self.in_flight: set[asyncio.Task[None]] = set()
        self.tester = TesterStats()
        self.slots = asyncio.Semaphore(max_in_flight)
        # requests left to start, when the run is bounded by count
        self.remaining: int | None = None
        self.stopping = False  # closed-loop callers start no new request once set

    async def start(self, intended_ns: int) -> asyncio.Task[None]:
        """Wait for a free slot (the wait counts in latency), then run one request as a task."""
        await self.slots.acquire()
        task = asyncio.get_running_loop().create_task(self.issue(intended_ns))
        self.in_flight.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.slots.release()

    def start_callers(self, count: int, end_ns: int | None) -> list[asyncio.Task[None]]:
        """Closed loop: `count` callers, each starting its next request when its last ends,
        until the budget is spent, `end_ns` passes or `stop_starting` is called."""
        loop = asyncio.get_running_loop()
        callers = []
        for _ in range(count):
            task = loop.create_task(self._caller(end_ns))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            callers.append(task)
        return callers

    def stop_starting(self) -> None:
        self.stopping = True

    async def _caller(self, end_ns: int | None) -> None:
        """One closed-loop caller: the transport runs its requests back to back."""
        await self.slots.acquire()  # callers never outnumber slots: this does not wait
        try:
            await self.transport.run_closed_loop(_Caller(self, end_ns))
        finally:
            self.slots.release()

    async def issue(self, intended_ns: int) -> None:
        """One open-loop request, meant to start at `intended_ns`."""
        request = self.factory.next()
        clock = self.clock
        sent_ns = clock()
        tester = self.tester
        if intended_ns > sent_ns:  # woken a little early: on time, latency counts from the send
            intended_ns = sent_ns
        # every start counts, the on-time ones as 0: the percentiles are of all starts
        record_value(tester.start_delay, (sent_ns - intended_ns) // 1000)
        if not tester.sent:
            tester.first_sent_ns = sent_ns
        tester.sent += 1
        tester.last_sent_ns = sent_ns
        try:
            outcome = await self.transport.invoke(request)
        except Exception as exc:  # a transport bug: counted, shown once at the end, never fatal
            outcome = Outcome(error=CLIENT_FAILURE)
            tester.note_failure(exc)
        self._finish(request, outcome, intended_ns, sent_ns, clock())

    def _finish(
        self, request: Request, outcome: Outcome, intended_ns: int, sent_ns: int, done_ns: int
    ) -> None:
        """Correlate the echo and record one finished request."""
        echo = None
        if outcome.error is None:
            echo = self.correlator.check(
                request.trace_id, request.custom_attributes, outcome.echoed
            )
        label = request.target.label
        self.recorder.record(
            label,
            outcome,
            echo,
            (done_ns - intended_ns) // 1000,
            (done_ns - sent_ns) // 1000,
            sent_ns - intended_ns > LATE_NS,
            request.trace_id,
            done_ns,
        )
        if echo is Echo.MISMATCHED:
            sample = MismatchSample(
                request.trace_id, request.custom_attributes, outcome.echoed or ""
            )
            self.recorder.add_mismatch(label, outcome.variant, sample)

    async def drain(self, grace_s: float) -> None:
        """Let in-flight requests finish for up to `grace_s`, then cancel the rest."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=grace_s)
        leftovers = set(self.in_flight)
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        self.tester.interrupted += len(leftovers)


class _Caller:
    """The closed-loop body of `Engine.issue`, as the callbacks a transport calls: no task,
    future or shield per request. Latency is service time, measured from the send."""

    __slots__ = (
        "engine",
        "end_ns",
        "clock",
        "tester",
        "next_request",
        "check",
        "record",
        "record_ok",
        "request",
        "sent_ns",
    )

    def __init__(self, engine: Engine, end_ns: int | None) -> None:
        self.engine = engine
        self.end_ns = sys.maxsize if end_ns is None else end_ns  # one comparison per take
        self.clock = engine.clock
        self.tester = engine.tester
        self.next_request = engine.factory.next
        self.check = engine.correlator.check
        self.record = engine.recorder.record
        self.record_ok = engine.recorder.record_ok
        self.request: Request | None = None  # taken and not yet done
        self.sent_ns = 0

    def take(self) -> Request | None:
        engine = self.engine
        if engine.stopping:
            return None
        remaining = engine.remaining  # take one request from the budget
        if remaining is not None:
            if remaining <= 0:
                return None
            engine.remaining = remaining - 1
        request = self.next_request()
        sent_ns = self.clock()
        if sent_ns >= self.end_ns:
            return None
        tester = self.tester
        if not tester.sent:
            tester.first_sent_ns = sent_ns
        tester.sent += 1
        tester.last_sent_ns = sent_ns
        self.request = request
        self.sent_ns = sent_ns
        return request

    def done(self, outcome: Outcome) -> None:
        if outcome.error is None:
            self.ok(outcome.status, outcome.variant, outcome.echoed, outcome)
            return
        done_ns = self.clock()
        request = self.request
        assert request is not None, "done() without take()"
        self.request = None
        service_us = (done_ns - self.sent_ns) // 1000
        label = request.target.label
        self.record(label, outcome, None, service_us, service_us, False, request.trace_id, done_ns)

    def ok(
        self,
        status: int,
        variant: str | None,
        echoed: str | None,
        outcome: Outcome | None = None,
    ) -> None:
        done_ns = self.clock()
        request = self.request
        assert request is not None, "ok() without take()"
        self.request = None
        sent_ns = self.sent_ns
        echo = self.check(request.trace_id, request.custom_attributes, echoed)
        if echo is not _MISMATCHED:
            service_us = (done_ns - sent_ns) // 1000
            self.record_ok(
                request.target.label, variant, echo, service_us, request.trace_id, done_ns
            )
        else:  # rare: the general path keeps a sample
            if outcome is None:
                outcome = Outcome(status, None, variant, echoed)
            self.engine._finish(request, outcome, sent_ns, sent_ns, done_ns)

    def failed(self, exc: Exception) -> None:
        self.engine.tester.note_failure(exc)
        self.done(Outcome(error=CLIENT_FAILURE))
