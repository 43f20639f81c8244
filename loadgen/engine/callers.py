"""The Engine's callers: what a transport calls back for each request, with no task,
future or shield per request.

A closed-loop caller has its next request ready as soon as the last one ends; latency is
service time. An open-loop caller takes requests as the schedule makes them due
(Arrivals) and parks when none is; latency counts from each request's intended start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from loadgen.correlate import Echo
from loadgen.engine.arrivals import Arrivals
from loadgen.engine.core import LATE_FOLD_AT, LATE_NS, Engine
from loadgen.transport.base import Outcome, Request

CLIENT_FAILURE = "ClientFailure"
_MISMATCHED = Echo.MISMATCHED  # enum member look-ups cost ~0.1 µs: not per request


class _Failing:
    """What both callers do when the transport raises: count it, never die of it."""

    __slots__ = ()

    engine: Engine

    def done(self, outcome: Outcome) -> None: ...

    def failed(self, exc: Exception) -> None:
        self.engine.tester.note_failure(exc)
        self.done(Outcome(error=CLIENT_FAILURE))


class ClosedCaller(_Failing):
    """One of a closed loop's N callers: its next request goes out when its last one ends,
    until the budget is spent, `end_ns` passes or the engine stops starting."""

    __slots__ = (
        "engine",
        "end_ns",
        "clock",
        "tester",
        "next_request",
        "check",
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

    due = None  # a request is ready until the closed loop is done

    def park(self, resume: Callable[[], None]) -> bool:
        return False  # nothing to take: the closed loop is done

    def done(self, outcome: Outcome) -> None:
        if outcome.error is None and outcome.stream is None:  # a stream has more to record
            self.ok(outcome.status, outcome.variant, outcome.echoed, outcome)
            return
        request = self.request
        assert request is not None, "done() without take()"
        self.request = None
        self.engine.finish(request, outcome, self.sent_ns, self.sent_ns, self.clock())

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
            self.engine.finish(request, outcome, sent_ns, sent_ns, done_ns)


class OpenCaller(_Failing):
    """One of an open loop's `max_in_flight` callers: it takes the oldest due request the
    moment it is free, and parks while none is due. When every caller is busy, due
    requests wait, and the wait counts in their latency (wrk2's correction)."""

    __slots__ = (
        "engine",
        "arrivals",
        "clock",
        "tester",
        "late_start_delays",
        "next_request",
        "check",
        "record_ok",
        "record_open_ok",
        "request",
        "intended_ns",
        "sent_ns",
        "due",
    )

    def __init__(self, engine: Engine, arrivals: Arrivals) -> None:
        self.engine = engine
        self.arrivals = arrivals
        self.clock = engine.clock
        self.tester = engine.tester
        self.late_start_delays = engine.tester.late_start_delays
        self.next_request = engine.factory.next
        self.check = engine.correlator.check
        self.record_ok = engine.recorder.record_ok
        self.record_open_ok = engine.recorder.record_open_ok
        self.request: Request | None = None  # taken and not yet done
        self.intended_ns = 0
        self.sent_ns = 0
        self.due = self._due  # bound once: each lane keeps it

    def _due(self) -> bool:
        return not self.engine.stopping and self.arrivals.due(self.clock())

    def take(self) -> Request | None:
        if self.engine.stopping:
            return None
        sent_ns = self.clock()
        intended_ns = self.arrivals.take(sent_ns)
        if intended_ns is None:
            return None
        tester = self.tester
        # every start counts, the on-time (or early) ones as 0: the percentiles are of all
        if intended_ns >= sent_ns:
            intended_ns = sent_ns  # latency counts from the send
            tester.on_time_starts += 1
        else:
            delays = self.late_start_delays
            delays.append((sent_ns - intended_ns) // 1000)
            if len(delays) >= LATE_FOLD_AT:
                tester.fold_late_starts()
        if not tester.sent:
            tester.first_sent_ns = sent_ns
        tester.sent += 1
        tester.last_sent_ns = sent_ns
        request = self.next_request()
        self.request = request
        self.intended_ns = intended_ns
        self.sent_ns = sent_ns
        return request

    def park(self, resume: Callable[[], None]) -> bool:
        if self.engine.stopping:
            return False
        return self.arrivals.park(resume)

    def done(self, outcome: Outcome) -> None:
        if outcome.error is None and outcome.stream is None:  # a stream has more to record
            self.ok(outcome.status, outcome.variant, outcome.echoed, outcome)
            return
        request = self.request
        assert request is not None, "done() without take()"
        self.request = None
        self.engine.finish(request, outcome, self.intended_ns, self.sent_ns, self.clock())

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
        echo = self.check(request.trace_id, request.custom_attributes, echoed)
        if echo is not _MISMATCHED:
            intended_ns = self.intended_ns
            sent_ns = self.sent_ns
            if intended_ns == sent_ns:  # started on time: latency is service time, as closed
                self.record_ok(
                    request.target.label,
                    variant,
                    echo,
                    (done_ns - sent_ns) // 1000,
                    request.trace_id,
                    done_ns,
                )
                return
            self.record_open_ok(
                request.target.label,
                variant,
                echo,
                (done_ns - intended_ns) // 1000,
                (done_ns - sent_ns) // 1000,
                sent_ns - intended_ns > LATE_NS,
                request.trace_id,
                done_ns,
            )
        else:  # rare: the general path keeps a sample
            if outcome is None:
                outcome = Outcome(status, None, variant, echoed)
            self.engine.finish(request, outcome, self.intended_ns, self.sent_ns, done_ns)
