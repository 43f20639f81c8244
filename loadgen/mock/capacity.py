"""The mock's model copies as a queue: K copies, each serving one request at a time, taken
in arrival order by whichever copy frees first (FIFO, M/G/K).

The queue is kept in virtual time: each copy's time of becoming free is arithmetic on the
clock, and a request only sleeps until its own computed end. No task holds a copy and no
timer's lateness delays the next request, so with a fixed service time s the capacity is
exactly K / s: what a test of the capacity search needs to know the right answer.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable


class Copies:
    """When each request admitted now will be done, given the requests before it."""

    __slots__ = ("_free_at", "_clock")

    def __init__(self, copies: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._free_at = [0.0] * copies  # a min-heap: when each copy is next free
        self._clock = clock

    def admit(self, service_s: float) -> float:
        """Queue a request needing `service_s` of a copy; seconds from now until it is done
        (its wait for a copy, then its service)."""
        now = self._clock()
        start = max(now, self._free_at[0])
        done = start + service_s
        heapq.heapreplace(self._free_at, done)
        return done - now
