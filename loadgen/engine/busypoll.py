"""busy_poll: the engine's event loop never sleeps while its schedule runs.

A loop that sleeps between events is woken by each response and each tick, and on a
virtual machine an idle vCPU is descheduled by the host: its wake-ups cost more than the
work they wake for, and come late. A turn of the loop that only polls costs ~1.5 µs here,
so spinning keeps the tester hot and its timers on time, at the price of a whole core.

An open loop's Arrivals hooks `on_turn` and releases what falls due every 100 µs instead of
every millisecond: a millisecond's timer releases requests in bursts that a server serves in
turn, and that queue is then in their latency.

The CPU it burns polling is not the tester's load: turns shorter than IDLE_TURN_NS did
nothing but poll, and their time is subtracted from the engine's CPU busy figure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from loadgen.engine.arrivals import Clock

IDLE_TURN_NS = 10_000  # an idle turn takes ~1.5 µs (p99 ~4 µs); any send or read takes longer


class BusyPoll:
    """Keeps one callback queued, so the loop polls for I/O without blocking."""

    __slots__ = ("_loop", "_clock", "_running", "_last_ns", "idle_ns", "on_turn")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock = time.monotonic_ns) -> None:
        self._loop = loop
        self._clock = clock
        self._running = False
        self._last_ns = 0
        self.idle_ns = 0  # wall time of the turns that only polled
        # called each turn with the time until it returns False (Arrivals.poll: spent)
        self.on_turn: Callable[[int], bool] | None = None

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._last_ns = self._clock()
            self._loop.call_soon(self._turn)

    def stop(self) -> None:
        self._running = False

    def _turn(self) -> None:
        if not self._running:
            return
        now_ns = self._clock()
        turn_ns = now_ns - self._last_ns
        self._last_ns = now_ns
        if turn_ns < IDLE_TURN_NS:
            self.idle_ns += turn_ns
        on_turn = self.on_turn
        if on_turn is not None and not on_turn(now_ns):
            self.on_turn = None
        self._loop.call_soon(self._turn)
