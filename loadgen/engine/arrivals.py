"""The open loop's schedule as due requests, released in batches by one timer.

Request i is due at `start + offset_i`, its offset from schedule.py's arithmetic, never
from chained sleeps. A timer ticks while the schedule runs (every RELEASE_EVERY_NS at
most, or every millisecond on the loop's own timers) and each tick releases every request
due before the next tick can come (within EARLY_NS). Parked callers are resumed, one per
released request; a caller whose request ended takes the next released one at once. When the tester is
behind, every overdue request is released and waits for the next free caller: the
backlog is the schedule's due prefix, oldest first.

Why batches: a loop turn that sends many requests and reads many responses costs far
less per request than one that handles a single request, as the closed loop's lanes
show. So requests go out a tick at a time, up to EARLY_NS before their time (then on
time: latency counts from the send), and no task, future or timer is made per request.
The loop's timers count whole milliseconds; on Linux a timerfd (loadgen/finetimer.py)
ticks every RELEASE_EVERY_NS instead, so a burst is a tenth of the size. With busy_poll the
loop never sleeps, and its turns release as often (busypoll.py).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable, Iterator
from itertools import islice, repeat
from operator import add, mul
from typing import TYPE_CHECKING

from loadgen.finetimer import FineTimer
from loadgen.metrics import NS_PER_S

if TYPE_CHECKING:
    from loadgen.engine.busypoll import BusyPoll

MS_NS = 1_000_000
# A tick releases what falls due before the next tick (a millisecond away, and the loop's
# timers fire up to a millisecond late). A request starts at most this much early.
EARLY_NS = 2 * MS_NS

# Ticks (a timerfd's, or a busy-polling loop's turns) release at most this often: a tenth of
# the loop timer's millisecond, so a burst is a tenth of its size, and yet a turn sends
# several requests and reads their responses together, where one request a turn costs more
# (busy polling at 50,000 req/s: 0.62 of a core against 0.88 releasing every turn).
RELEASE_EVERY_NS = 100_000

CHUNK = 256  # intended times read from the schedule at once

Clock = Callable[[], int]  # monotonic nanoseconds
Resume = Callable[[], None]


class Arrivals:
    """Intended start times, released a tick at a time, taken in order by one run's callers."""

    __slots__ = (
        "_times",
        "_clock",
        "_loop",
        "_ahead",
        "_head",
        "_released_ns",
        "_parked",
        "_timer",
        "_fine",
        "_every_ns",
        "full_ns",
        "_full_since",
        "_next_poll_ns",
    )

    def __init__(
        self,
        offsets: Iterator[float],
        start_ns: int,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        busy_poll: BusyPoll | None = None,
    ) -> None:
        # start_ns + int(offset * NS_PER_S), by C-level iterators: no bytecode per request
        self._times: Iterator[int] = map(
            add, repeat(start_ns), map(int, map(mul, offsets, repeat(NS_PER_S)))
        )
        self._clock = clock
        self._loop = loop
        # intended times read from the schedule, in order; those from `_head` on are not
        # taken yet, and there is at least one while the schedule is not spent
        self._ahead: list[int] = []
        self._head = 0
        self._released_ns = 0  # requests due up to here may be taken
        self._parked: list[Resume] = []
        self._timer: asyncio.TimerHandle | None = None
        self.full_ns = 0  # how long due requests waited with every caller busy
        self._full_since: int | None = None  # since when, as seen by the ticks
        self._next_poll_ns = 0  # busy polling: the next turn from which to release
        self._fine: FineTimer | None = None  # ticks to the microsecond, where there are
        self._every_ns = 0  # the fine timer's period while it repeats (0: once, or idle)
        self._pull()
        if busy_poll is not None:
            busy_poll.on_turn = self.poll  # the loop's turns, not a timer
        elif not self.finished:
            self._fine = FineTimer.create(loop, self.tick)
            self._arm()

    def _pull(self) -> None:
        """Read the schedule's next intended times, a chunk at once, dropping the taken ones."""
        chunk = list(islice(self._times, CHUNK))
        self._ahead = self._ahead[self._head :] + chunk
        self._head = 0

    @property
    def finished(self) -> bool:
        """Every request of the schedule has been taken (or the run stopped)."""
        return self._head >= len(self._ahead)

    def take(self, now_ns: int) -> int | None:
        """The next request's intended time if it is due by `now_ns` or a tick has released
        it, and it is taken. A caller free when its request falls due sends it without
        waiting for the next tick: when the tester is behind, no caller idles."""
        ahead = self._ahead
        head = self._head
        if head >= len(ahead):
            return None
        if ahead[head] > self._released_ns:
            if ahead[head] > now_ns:
                return None
            self._released_ns = now_ns
        self._head = head + 1
        if head + 1 == len(ahead):
            self._pull()
            if self.finished and self._parked:  # the last one: the parked callers are done
                self._loop.call_soon(self._resume_all)
        return ahead[head]

    def due(self, now_ns: int) -> bool:
        """`take(now_ns)` would give a request."""
        head = self._head
        ahead = self._ahead
        return head < len(ahead) and (ahead[head] <= self._released_ns or ahead[head] <= now_ns)

    def park(self, resume: Resume) -> bool:
        """Call `resume` once a request is released; False if none ever will be."""
        if self.finished:
            return False
        self._parked.append(resume)
        return True

    def stop(self) -> None:
        """Release no more: every parked caller is resumed, finds nothing, and ends."""
        if self._full_since is not None:
            self.full_ns += self._clock() - self._full_since
            self._full_since = None
        self._ahead = []
        self._head = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cancel_fine()
        self._resume_all()

    def close(self) -> None:
        """Let go of the fine timer's descriptor, once the run is over."""
        if self._fine is not None:
            self._fine.close()
            self._fine = None

    def _cancel_fine(self) -> None:
        if self._fine is not None:
            self._fine.cancel()
            self._every_ns = 0

    def _arm(self) -> None:
        """Tick when the next unreleased request comes within EARLY_NS of its time, and
        RELEASE_EVERY_NS after this tick at the soonest. On the loop's own timers (no
        timerfd) that is in whole milliseconds, at least one (a shorter timer fires at
        once, and would spin). When the tester is behind, a free caller takes an overdue
        request without a tick, so ticks, which then only keep count, come every
        millisecond. While ticks are that regular (dense requests, or behind), the fine
        timer repeats by itself: re-arming it is a syscall, 5 µs of a 12 µs tick."""
        ahead = self._ahead
        head = self._head
        now_ns = self._clock()
        unreleased = bisect_right(ahead, self._released_ns, head)
        behind = head < len(ahead) and ahead[head] <= now_ns
        delay_ns = 0
        if behind:
            delay_ns = MS_NS
        elif unreleased < len(ahead):
            delay_ns = ahead[unreleased] - EARLY_NS - now_ns
        fine = self._fine
        if fine is not None:
            every_ns = MS_NS if behind else RELEASE_EVERY_NS if delay_ns <= RELEASE_EVERY_NS else 0
            if not every_ns:
                fine.arm(delay_ns)
            elif every_ns != self._every_ns:
                fine.arm(every_ns, every_ns)
            self._every_ns = every_ns
            return
        self._timer = self._loop.call_later(max(delay_ns // MS_NS, 1) / 1000, self.tick)

    def tick(self) -> None:
        """The timer's: release, and tick again while the schedule lasts."""
        self._timer = None
        if self.release():
            self._arm()
        else:
            self._cancel_fine()

    def poll(self, now_ns: int) -> bool:
        """A busy-polling loop's turn: release once RELEASE_EVERY_NS have passed since the
        last release; False once the schedule is spent."""
        if now_ns < self._next_poll_ns:
            return True
        self._next_poll_ns = now_ns + RELEASE_EVERY_NS
        return self.release()

    def release(self) -> bool:
        """Release the requests due within EARLY_NS, and resume a parked caller for each;
        False once the schedule is spent (every parked caller then resumed, to end)."""
        now_ns = self._clock()
        if self.finished:
            self._note_full(now_ns)
            self._resume_all()
            return False
        self._released_ns = now_ns + EARLY_NS
        parked = self._parked
        if parked:
            for _ in range(self._released(len(parked))):
                parked.pop()()  # a lane takes its request now; a waiting task when it runs
        self._note_full(now_ns)
        if self.finished:
            self._resume_all()
            return False
        return True

    def _note_full(self, now_ns: int) -> None:
        """Count the time from a tick that found a due request and no free caller to the
        first tick that found a free caller or none due (max_in_flight was the limit)."""
        head = self._head
        full = not self._parked and head < len(self._ahead) and self._ahead[head] <= now_ns
        if full:
            if self._full_since is None:
                self._full_since = now_ns
        elif self._full_since is not None:
            self.full_ns += now_ns - self._full_since
            self._full_since = None

    def _released(self, most: int) -> int:
        """How many released requests are not yet taken, up to `most`, reading the
        schedule as far as needed."""
        limit = self._released_ns
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
