"""When each open-loop request should start, as offsets in seconds from the run's start.

Offsets come from arithmetic on the request's index, never from chained sleeps, so the
schedule cannot drift however late the tester runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count, islice, repeat
from operator import truediv


def constant_offsets(rate: float, duration: float | None, requests: int | None) -> Iterator[float]:
    """Request i starts at i / rate; stops before `duration` or after `requests`.

    Computed by C-level iterators (count, map): the open loop reads one per request.
    """
    offsets = map(truediv, count(), repeat(rate))
    if duration is None:
        return offsets if requests is None else islice(offsets, requests)
    within = starts_within(rate, duration)
    return islice(offsets, within if requests is None else min(within, requests))


def starts_within(rate: float, duration: float) -> int:
    """How many requests start before `duration`: the i with i / rate < duration, counted
    with the very same float division as the offsets."""
    within = max(math.ceil(duration * rate), 0)
    while within > 0 and (within - 1) / rate >= duration:
        within -= 1
    while within / rate < duration:
        within += 1
    return within


@dataclass(frozen=True, slots=True)
class Ramp:
    """The rate moves linearly from `start` to `end` requests/s over `duration` seconds."""

    start: float
    end: float
    duration: float

    @property
    def count(self) -> float:
        return (self.start + self.end) / 2 * self.duration

    def time_of(self, n: float) -> float:
        """Seconds into the ramp at which `n` requests (n <= count) have been due."""
        slope = (self.end - self.start) / self.duration
        if abs(slope) < 1e-12:
            return n / self.start
        # start*t + slope/2 * t^2 = n; the root in [0, duration]
        discriminant = max(self.start * self.start + 2 * slope * n, 0.0)
        return (math.sqrt(discriminant) - self.start) / slope


def ramp_requests(start_rate: float, stages: Sequence[tuple[float, float]]) -> float:
    """How many requests a ramp schedules: the area under its rate."""
    total, rate = 0.0, start_rate
    for duration, target in stages:
        total += Ramp(rate, target, duration).count
        rate = target
    return total


def rate_at(start_rate: float, stages: Sequence[tuple[float, float]], at_s: float) -> float:
    """The rate a ramp schedules `at_s` seconds in (after its end, its last target)."""
    rate, elapsed = start_rate, 0.0
    for duration, target in stages:
        if at_s < elapsed + duration:
            return rate + (target - rate) * max(at_s - elapsed, 0.0) / duration
        rate, elapsed = target, elapsed + duration
    return rate


def due_by(start_rate: float, stages: Sequence[tuple[float, float]], at_s: float) -> float:
    """How many requests a ramp has made due `at_s` seconds in: the area under its rate so
    far (after its end, all of them)."""
    total, rate, elapsed = 0.0, start_rate, 0.0
    for duration, target in stages:
        if at_s < elapsed + duration:
            part = max(at_s - elapsed, 0.0)
            return total + Ramp(rate, rate_at(start_rate, stages, at_s), part).count
        total += Ramp(rate, target, duration).count
        rate, elapsed = target, elapsed + duration
    return total


def ramping_offsets(
    start_rate: float,
    stages: Sequence[tuple[float, float]],
    counts: Iterator[float] | None = None,
) -> Iterator[float]:
    """Piecewise-linear rate: (duration, target) stages; request i starts when i requests are
    due, or when counts[i] are (drawn arrivals, interarrival.py: an endless sequence)."""
    ramps = []
    rate = start_rate
    for duration, target in stages:
        ramps.append(Ramp(rate, target, duration))
        rate = target
    due = count() if counts is None else counts
    index: float = next(due)
    due_before = 0.0  # requests due before the current ramp
    elapsed = 0.0
    for ramp in ramps:
        while index < due_before + ramp.count - 1e-9:
            yield elapsed + min(ramp.time_of(index - due_before), ramp.duration)
            index = next(due)
        due_before += ramp.count
        elapsed += ramp.duration


def ramp_starts(start_rate: float, stages: Sequence[tuple[float, float]]) -> int:
    """How many requests `ramping_offsets` yields: every index below the area, as it counts."""
    return max(math.ceil(ramp_requests(start_rate, stages) - 1e-9), 0)


def take_share(offsets: Iterator[float], share: int, shares: int) -> Iterator[float]:
    """Every `shares`-th offset starting at `share`: how workers split one schedule exactly."""
    return islice(offsets, share, None, shares)
