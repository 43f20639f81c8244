"""The Engine: runs the callers, correlates each echo and records each request; and the
tester's own statistics (did it keep its schedule?)."""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hdrh.histogram import HdrHistogram

from loadgen.correlate import Correlator, Echo, MismatchSample
from loadgen.engine.arrivals import Clock
from loadgen.engine.busypoll import BusyPoll
from loadgen.engine.requests import RequestSource
from loadgen.histograms import new_histogram, record_all
from loadgen.metrics import Recorder
from loadgen.transport.base import Caller, Outcome, Request, Transport

LATE_NS = 1_000_000  # a start more than 1 ms after its intended time counts as late
LATE_FOLD_AT = 1 << 16  # late starts' delays kept before they go into the histogram


class TesterStats:
    """How well the tester itself kept up: sends, start delays, interrupted requests."""

    def __init__(self) -> None:
        self._start_delay = new_histogram()  # sent minus intended, open loop only
        # what the open loop's callers keep per start, cheaper than indexing a histogram;
        # `start_delay` folds them in (C), as does a caller once LATE_FOLD_AT have gathered
        self.on_time_starts = 0  # delay 0: sent at or before the intended time
        self.late_start_delays = array("q")  # in µs, of the starts after it
        self.sent = 0
        self.first_sent_ns = 0
        self.last_sent_ns = 0
        self.interrupted = 0  # requests cancelled at the end of a stop's grace period
        self.client_failure: str | None = None  # first unexpected transport exception
        # open loop: how long every caller was busy while requests were due (they waited)
        self.max_in_flight_full_ns = 0
        self.cpu_busy = 0.0  # the engine process's CPU time over its run's wall time

    @property
    def start_delay(self) -> HdrHistogram:
        """Every open-loop start's delay in µs, the on-time ones as 0."""
        self.fold_late_starts()
        if self.on_time_starts:
            self._start_delay.record_value(0, self.on_time_starts)
            self.on_time_starts = 0
        return self._start_delay

    def fold_late_starts(self) -> None:
        record_all(self._start_delay, self.late_start_delays)
        del self.late_start_delays[:]

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
            self.max_in_flight_full_ns,
            self.cpu_busy,
        )

    def merge_state(self, state: TesterState) -> None:
        """Monotonic clocks are shared by all processes on a machine, so windows combine."""
        if state.sent:
            self._start_delay.decode_and_add(state.start_delay)
            self.first_sent_ns = min(self.first_sent_ns or state.first_sent_ns, state.first_sent_ns)
            self.last_sent_ns = max(self.last_sent_ns, state.last_sent_ns)
        self.sent += state.sent
        self.interrupted += state.interrupted
        self.client_failure = self.client_failure or state.client_failure
        # each worker runs the whole schedule: the worst one tells
        self.max_in_flight_full_ns = max(self.max_in_flight_full_ns, state.max_in_flight_full_ns)
        self.cpu_busy = max(self.cpu_busy, state.cpu_busy)


@dataclass(frozen=True)
class TesterState:
    """TesterStats as it travels between processes (the histogram encoded)."""

    start_delay: str
    sent: int
    first_sent_ns: int
    last_sent_ns: int
    interrupted: int
    client_failure: str | None
    max_in_flight_full_ns: int
    cpu_busy: float


class EngineCaller(Caller, Protocol):
    """A caller the Engine runs; `request` is the one it has under way (None: idle or parked)."""

    request: Request | None


@dataclass(frozen=True, slots=True)
class Progress:
    """How far an engine is at one tick: read then from what the callers already keep,
    so nothing is counted per request for it."""

    sent: int  # requests started so far
    in_flight: int  # started and not yet ended
    at_s: float  # seconds since the run's start when read

    @classmethod
    def total(cls, parts: Iterable[Progress]) -> Progress:
        """Several engines' (workers') progress as one; as of the latest reading."""
        parts = list(parts)
        return cls(
            sum(part.sent for part in parts),
            sum(part.in_flight for part in parts),
            max((part.at_s for part in parts), default=0.0),
        )


class Engine:
    """Runs callers and keeps their tasks in one set, so a stop can drain or cancel them.

    A caller (callers.py) is one long-lived task that the transport runs request after
    request; there are never more callers than `max_in_flight`. `stop_starting` lets each
    finish the request under way and then return; `drain` waits for them.
    """

    def __init__(
        self,
        transport: Transport,
        factory: RequestSource,
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
        self.max_in_flight = max_in_flight
        self.in_flight: set[asyncio.Task[None]] = set()  # the callers' tasks
        self.callers: list[EngineCaller] = []
        self.tester = TesterStats()
        # requests left to start, when a closed loop is bounded by count
        self.remaining: int | None = None
        self.stopping = False  # callers start no new request once set
        self.busy_poll: BusyPoll | None = None  # busy_poll: open loops release on its turns

    def start_callers(self, callers: Sequence[EngineCaller]) -> list[asyncio.Task[None]]:
        """One task per caller, which the transport runs until the caller is done."""
        if len(callers) > self.max_in_flight:
            raise ValueError(f"{len(callers)} callers, max_in_flight {self.max_in_flight}")
        self.callers.extend(callers)
        loop = asyncio.get_running_loop()
        tasks = []
        for caller in callers:
            task = loop.create_task(self.transport.run_caller(caller))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            tasks.append(task)
        return tasks

    def progress(self, at_s: float) -> Progress:
        """At a tick, not per request: one look at each caller (max_in_flight at most)."""
        in_flight = sum(1 for caller in self.callers if caller.request is not None)
        return Progress(self.tester.sent, in_flight, at_s)

    def stop_starting(self) -> None:
        self.stopping = True

    def finish(
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
        stream = outcome.stream
        if stream is not None and outcome.error is None:
            self.recorder.record_stream(
                label, outcome.variant, stream, intended_ns, sent_ns, done_ns
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
