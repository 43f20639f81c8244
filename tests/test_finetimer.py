"""The open loop's microsecond ticks: a timerfd on the real event loop, and Arrivals ticking
every RELEASE_EVERY_NS with it where the loop's own timers would tick every millisecond."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from loadgen.engine.arrivals import EARLY_NS, RELEASE_EVERY_NS, Arrivals
from loadgen.engine.schedule import constant_offsets
from loadgen.finetimer import FineSleeper, FineTimer


@pytest.fixture
async def timer() -> AsyncIterator[tuple[FineTimer, list[int]]]:
    """A timer on the running loop, and the times it fired at."""
    fired: list[int] = []
    made = FineTimer.create(asyncio.get_running_loop(), lambda: fired.append(time.monotonic_ns()))
    assert made is not None, "Linux has timerfd: the suite runs there"
    yield made, fired
    made.close()


async def test_it_fires_once_after_its_delay_and_not_when_cancelled(
    timer: tuple[FineTimer, list[int]],
) -> None:
    fine, fired = timer
    armed = time.monotonic_ns()
    fine.arm(300_000)
    await asyncio.sleep(0.03)
    (at,) = fired  # once, not again
    assert at - armed >= 300_000
    fine.arm(5_000_000)
    fine.arm(200_000)  # re-armed: the later time is gone
    fine.arm(1_000_000)
    fine.cancel()
    await asyncio.sleep(0.01)
    assert len(fired) == 1


async def test_it_repeats_every_period_until_cancelled(
    timer: tuple[FineTimer, list[int]],
) -> None:
    fine, fired = timer
    armed = time.monotonic_ns()
    fine.arm(200_000, 1_000_000)
    await asyncio.sleep(0.03)
    assert fired[0] - armed >= 200_000
    assert 15 <= len(fired) <= 31  # once at 0.2 ms, then every ms (a busy loop's merge)
    fine.cancel()
    stopped = len(fired)
    await asyncio.sleep(0.01)
    assert len(fired) == stopped


async def test_its_descriptor_is_closed_and_unwatched(
    timer: tuple[FineTimer, list[int]],
) -> None:
    fine, _ = timer
    fd = fine._fd
    os.fstat(fd)
    fine.close()
    fine.close()  # twice is fine
    with pytest.raises(OSError):
        os.fstat(fd)


def test_a_loop_without_descriptors_keeps_the_loops_own_timers() -> None:
    class TimersOnly:
        pass

    assert FineTimer.create(TimersOnly(), lambda: None) is None  # type: ignore[arg-type]


def counting_ticks(start_ns: int) -> tuple[Arrivals, list[int]]:
    """20,000 req/s from `start_ns` on the running loop's timerfd; each tick's time is kept."""
    arrivals = Arrivals(
        constant_offsets(20_000, None, 4_000),
        start_ns,
        time.monotonic_ns,
        asyncio.get_running_loop(),
    )
    ticks: list[int] = []

    def counted() -> None:
        ticks.append(time.monotonic_ns())
        arrivals.tick()

    assert arrivals._fine is not None
    arrivals._fine._callback = counted
    return arrivals, ticks


async def test_arrivals_tick_every_100_us_while_requests_are_dense() -> None:
    """20,000 req/s for 0.2 s with one caller taking what each tick releases: about a
    tick per 100 µs (the loop's millisecond timers: at most 201), and the median request
    taken within 3 ticks of its coming within EARLY_NS (at 1 ms a tick: 0.5 ms after)."""
    loop = asyncio.get_running_loop()
    arrivals, ticks = counting_ticks(time.monotonic_ns() + 20_000_000)
    taken: list[tuple[int, int]] = []
    done = loop.create_future()

    def caller() -> None:
        while (intended := arrivals.take(now := time.monotonic_ns())) is not None:
            taken.append((now, intended))
        if not arrivals.park(caller):
            done.set_result(None)

    caller()
    await asyncio.wait_for(done, 10)
    spent = len(ticks)
    await asyncio.sleep(0.01)
    assert len(ticks) == spent  # the repeating timer stops with the schedule
    arrivals.close()
    assert arrivals._fine is None
    assert len(taken) == 4_000
    assert len(ticks) >= 400  # at 1 ms a tick: about 200
    early = sorted(intended - now for now, intended in taken)
    assert early[len(early) // 2] >= EARLY_NS - 3 * RELEASE_EVERY_NS


async def test_behind_the_ticks_only_keep_count_every_millisecond() -> None:
    """Every request overdue and every caller busy (none takes): a free caller would take
    what is overdue without a tick, so ticks come every millisecond, not every 100 µs."""
    arrivals, ticks = counting_ticks(time.monotonic_ns() - 50_000_000)
    await asyncio.sleep(0.1)
    arrivals.stop()
    arrivals.close()
    assert 20 <= len(ticks) <= 110  # at 100 µs: about 1,000


async def test_the_sleeper_sleeps_to_the_microsecond_where_the_loop_rounds() -> None:
    """The loop's own sleep of 0.4 ms returns at once and 1.4 ms takes 1.1; the sleeper's
    take what they ask, each sleeper waking in time order, a cancelled one in no one's way."""
    sleeper = FineSleeper()
    try:
        for delay_ms in (0.4, 1.4):
            taken = []
            for _ in range(20):
                started = time.perf_counter()
                await sleeper.sleep(delay_ms / 1000)
                taken.append((time.perf_counter() - started) * 1000)
            assert sorted(taken)[10] >= delay_ms
        woke: list[int] = []

        async def sleep(index: int) -> None:
            await sleeper.sleep(index / 10_000)
            woke.append(index)

        cancelled = asyncio.ensure_future(sleeper.sleep(0.0015))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(*(sleep(index) for index in (30, 10, 20, 5)))
        assert woke == [5, 10, 20, 30]
        pending = asyncio.ensure_future(sleeper.sleep(60))
        await asyncio.sleep(0)
    finally:
        sleeper.close()
    await asyncio.wait_for(pending, 1)  # closing wakes whoever still sleeps
