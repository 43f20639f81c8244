"""A one-shot timer with microsecond resolution, for the open loop's ticks and the mock's
sleeps.

The event loop's timers count whole milliseconds, so a sleeping open loop could only
release its due requests a millisecond's worth at once, and a server that serves such a
burst in turn puts its queue into their latency. A Linux timerfd on CLOCK_MONOTONIC (the
clock of time.monotonic_ns), watched by the loop like any socket, wakes it to the
microsecond. Elsewhere `create` gives None and the ticks stay on the loop's timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import os
import sys
import time
from collections.abc import Callable

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        ]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class FineTimer:
    """Calls `callback` `delay_ns` after each `arm`, then every `every_ns` if given (a
    periodic timer needs no re-arming, which costs a syscall a tick); `close` when done."""

    __slots__ = ("loop", "_fd", "_spec", "_spec_ref", "_callback", "_settime")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, callback: Callable[[], None]
    ) -> None:
        assert _LIBC is not None
        self.loop = loop
        self._fd = fd
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._callback = callback
        self._settime = _LIBC.timerfd_settime
        loop.add_reader(fd, self._ready)

    @classmethod
    def create(
        cls, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
    ) -> FineTimer | None:
        """A timer on `loop`, or None where there is no timerfd (or the loop watches no fd)."""
        if _LIBC is None or not hasattr(loop, "add_reader"):
            return None
        fd = _LIBC.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            return None
        try:
            return cls(loop, fd, callback)
        except (NotImplementedError, OSError):
            os.close(fd)
            return None

    def arm(self, delay_ns: int, every_ns: int = 0) -> None:
        """Fire `delay_ns` from now (at least 1 ns: 0 would disarm it), then every
        `every_ns` until re-armed or cancelled (0: once). Ticks missed while the loop was
        busy come as one."""
        spec = self._spec
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(delay_ns, 1), 1_000_000_000)
        spec.it_interval.tv_sec, spec.it_interval.tv_nsec = divmod(every_ns, 1_000_000_000)
        self._settime(self._fd, 0, self._spec_ref, None)

    def cancel(self) -> None:
        spec = self._spec
        spec.it_value.tv_sec = spec.it_value.tv_nsec = 0
        spec.it_interval.tv_sec = spec.it_interval.tv_nsec = 0
        self._settime(self._fd, 0, self._spec_ref, None)

    def close(self) -> None:
        if self._fd < 0:
            return
        self.loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1

    def _ready(self) -> None:
        try:
            os.read(self._fd, 8)  # the expiry count; reading it clears readiness
        except BlockingIOError:  # disarmed or re-armed since it became readable
            return
        except OSError:
            with contextlib.suppress(OSError):
                self.close()
            return
        self._callback()


class FineSleeper:
    """asyncio.sleep to the microsecond, for the mock's service times and token gaps: the
    loop's own sleep rounds to whole milliseconds (0.4 ms sleeps 0, 1.4 ms sleeps 1.1).
    One FineTimer, made on the first sleep's loop, wakes the sleepers in time order."""

    __slots__ = ("_timer", "_heap", "_count", "_fine")

    def __init__(self) -> None:
        self._timer: FineTimer | None = None
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._count = itertools.count()  # ties in time wake in the order they slept
        self._fine = True  # until a timer could not be made: then the loop's sleep

    async def sleep(self, delay_s: float) -> None:
        if delay_s <= 0:
            return
        timer = self._timer
        if timer is None and self._fine:
            timer = self._timer = FineTimer.create(asyncio.get_running_loop(), self._wake)
            self._fine = timer is not None
        if timer is None:
            await asyncio.sleep(delay_s)
            return
        now_ns = time.monotonic_ns()
        wake_ns = now_ns + int(delay_s * 1e9)
        future: asyncio.Future[None] = timer.loop.create_future()
        heap = self._heap
        heapq.heappush(heap, (wake_ns, next(self._count), future))
        if heap[0][2] is future:  # the soonest now
            timer.arm(wake_ns - now_ns)
        await future

    def _wake(self) -> None:
        heap = self._heap
        now_ns = time.monotonic_ns()
        while heap and heap[0][0] <= now_ns:
            future = heapq.heappop(heap)[2]
            if not future.done():  # a cancelled sleeper's
                future.set_result(None)
        if heap and self._timer is not None:
            self._timer.arm(heap[0][0] - now_ns)

    def close(self) -> None:
        """Wake every sleeper, and let go of the timer."""
        for _, _, future in self._heap:
            if not future.done():
                future.set_result(None)
        self._heap.clear()
        if self._timer is not None:
            self._timer.close()
            self._timer = None
