"""The open loop's schedule as due requests, and the one timer that releases them.

Request i is due at `start + offset_i`, its offset from schedule.py's arithmetic, never
from chained sleeps. Requests go out in batches: a caller with nothing due parks, and one
timer, at the next due time, releases every request due within the next EARLY_NS and
resumes as many parked callers as there are released requests. A caller whose request
ended takes the next one at once if it is released or overdue (the backlog, when the
tester is behind, is simply the schedule's due prefix). No task, future or timer per
request; one wake-up of the loop, and one burst of writes, per batch.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable, Iterator
from itertools import islice

from loadgen.metrics import NS_PER_S

# Timers resolve to a millisecond: a batch releases what falls due before the next one can.
# A request starts early by at most this much; its latency then counts from the send.
MS_NS = 1_000_000
EARLY_NS = 2 * MS_NS

CHUNK = 256  # intended times read from the schedule at once

Clock = Callable[[], int]  # monotonic nanoseconds
Resume = Callable[[], None]


class Arrivals:
    """Intended start times, handed out in order once due, shared by one run's callers."""

    __slots__ = (
        "_offsets",
        "_start_ns",
        "_clock",
        "_loop",
        "_ahead",
        "_head",
        "_released_ns",
        "_parked",
        "_timer",
    )

    def __init__(
        self,
        offsets: Iterator[float],
        start_ns: int,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._offsets = offsets
        self._start_ns = start_ns
        self._clock = clock
        self._loop = loop
        # intended times read from the schedule, in order; those from `_head` on are not
        # taken yet, and there is at least one while the schedule is not spent
        self._ahead: list[int] = []
        self._head = 0
        self._released_ns = 0  # the last batch released requests due up to here
        self._parked: list[Resume] = []
        self._timer: asyncio.TimerHandle | None = None
        self._pull()

    def _pull(self) -> bool:
        """Read the schedule's next intended times, a chunk at once, dropping the taken
        ones; False once nothing is left."""
        start_ns = self._start_ns
        chunk = [start_ns + int(offset * NS_PER_S) for offset in islice(self._offsets, CHUNK)]
        self._ahead = self._ahead[self._head :] + chunk
        self._head = 0
        return bool(self._ahead)

    @property
    def finished(self) -> bool:
        """Every request of the schedule has been taken (or the run stopped)."""
        return self._head >= len(self._ahead)

    def take(self, now_ns: int) -> int | None:
        """The next request's intended time if it is overdue at `now_ns` or released by
        the last batch, and it is taken."""
        ahead = self._ahead
        head = self._head
        if head >= len(ahead):
            return None
        intended_ns = ahead[head]
        released = self._released_ns
        if intended_ns > (released if released > now_ns else now_ns):
            return None
        head += 1
        self._head = head
        if head == len(ahead):
            self._pull()
        return intended_ns

    def park(self, resume: Resume) -> bool:
        """Call `resume` once a request is due; False if none ever will be."""
        if self.finished:
            return False
        self._parked.append(resume)
        if self._timer is None:
            self._arm()
        return True

    def stop(self) -> None:
        """Take no more: every parked caller is resumed, finds nothing, and ends."""
        self._ahead = []
        self._head = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._resume_all()

    def _arm(self) -> None:
        """Wake when the next request is within EARLY_NS of its time. The loop's timers
        count whole milliseconds and fire up to one late: round down, but wait at least
        one (a shorter timer fires at once, and would spin)."""
        delay_ns = self._ahead[self._head] - EARLY_NS - self._clock()
        delay_ms = max(delay_ns // MS_NS, 1)
        self._timer = self._loop.call_later(delay_ms / 1000, self._wake)

    def _wake(self) -> None:
        """Release a batch, resume one parked caller per released request, and wait for
        the next due time."""
        self._timer = None
        if self.finished:
            self._resume_all()
            return
        parked = self._parked
        self._released_ns = self._clock() + EARLY_NS
        for _ in range(self._due(self._released_ns, len(parked))):
            parked.pop()()  # a lane takes its request now; a waiting task when it runs
        if self.finished:
            self._resume_all()
        elif parked:
            self._arm()

    def _due(self, limit: int, most: int) -> int:
        """How many requests not yet taken are due by `limit`, up to `most`, reading the
        schedule as far as needed."""
        while self._ahead[-1] <= limit and len(self._ahead) - self._head < most:
            left = len(self._ahead) - self._head
            self._pull()
            if len(self._ahead) == left:  # the schedule is spent
                break
        return min(bisect_right(self._ahead, limit, self._head) - self._head, most)

    def _resume_all(self) -> None:
        parked = self._parked
        self._parked = []
        for resume in parked:
            resume()
