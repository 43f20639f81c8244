"""capacity-search's search: which rate to try next, from the verdicts so far.

It doubles the rate from `start_rate` while steps are good, then bisects between the last
good and the first bad rate until they are within `precision` of the good one; a good step
at `max_rate` ends it there. When even `start_rate` is bad it halves instead (at most
MAX_HALVINGS times) before bisecting. Arithmetic only, with no clock and no I/O: tested in
virtual time, and read by `loadgen validate` for the most steps a search takes.
"""

from __future__ import annotations

MAX_HALVINGS = 5  # below start_rate / 32 the search gives up: no rate met the SLO
RATE_DIGITS = 4  # bisected rates are rounded to this many significant digits


class Search:
    """The rate to try next, from the verdicts so far."""

    def __init__(self, start_rate: float, max_rate: float, precision: float) -> None:
        self.max_rate = max_rate
        self.precision = precision
        self.good_rate: float | None = None  # the highest good rate so far
        self.bad_rate: float | None = None  # the lowest bad rate so far
        self.halvings = 0
        self.stopped_at_max_rate = False
        self.next_rate: float | None = start_rate  # None: the search is over

    def record(self, rate: float, good: bool) -> None:
        """A step's verdict at `rate`; sets `next_rate`."""
        if good:
            self.good_rate = rate if self.good_rate is None else max(self.good_rate, rate)
        else:
            self.bad_rate = rate if self.bad_rate is None else min(self.bad_rate, rate)
        low, high = self.good_rate, self.bad_rate
        if good and rate >= self.max_rate:
            self.stopped_at_max_rate = True
            self.next_rate = None
        elif high is None:  # every step good so far: double
            assert low is not None
            self.next_rate = min(low * 2, self.max_rate)
        elif low is None:  # even the first rate was bad: halve
            self.halvings += 1
            self.next_rate = high / 2 if self.halvings <= MAX_HALVINGS else None
        elif high - low <= self.precision * low:
            self.next_rate = None
        else:
            self.next_rate = between(low, high)

    def most_steps(self, start_rate: float) -> int:
        """A bound on the steps this search can take: doublings (or halvings), then bisections
        of a gap that starts at most as wide as the good rate."""
        doublings = 0
        rate = start_rate
        while rate < self.max_rate:
            rate *= 2
            doublings += 1
        bisections = 0
        gap = 1.0
        while gap > self.precision:
            gap /= 2
            bisections += 1
        return 1 + max(doublings, MAX_HALVINGS + 1) + bisections + 1


def between(low: float, high: float) -> float:
    """The midpoint, rounded to RATE_DIGITS significant digits while that stays inside."""
    middle = (low + high) / 2
    rounded = float(f"{middle:.{RATE_DIGITS}g}")
    return rounded if low < rounded < high else middle
