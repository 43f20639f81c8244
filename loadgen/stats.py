"""Statistics on HdrHistograms: is one latency distribution really different from another?

Everything here works on bucket counts, never on individual samples, so a run of a million
requests costs what its one or two thousand non-empty buckets cost. Samples that share a
bucket are treated as ties: at 3 significant figures that is a 0.1% resolution.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from loadgen.histograms import recorded_buckets


@dataclass(frozen=True, slots=True)
class Buckets:
    """A histogram's non-empty buckets in value order: what every statistic here needs.

    Built once per histogram (hdrh's per-value look-ups are slow in Python), then shared by
    the rank test and every bootstrap.
    """

    lowest: tuple[int, ...]  # lowest equivalent value: the key that decides ties
    highest: tuple[int, ...]  # highest equivalent value: what hdrh reports as a percentile
    middle: tuple[int, ...]  # median-equivalent value: what hdrh averages for the mean
    cumulative: tuple[int, ...]  # samples at or below each bucket
    total: int
    mean: float
    stdev: float

    @classmethod
    def of(cls, histogram: HdrHistogram) -> Buckets:
        lowest: list[int] = []
        highest: list[int] = []
        middle: list[int] = []
        cumulative: list[int] = []
        seen = 0
        weighted = 0
        squares = 0
        half_magnitude = histogram.sub_bucket_half_count_magnitude
        unit_magnitude = histogram.unit_magnitude
        for index, count in recorded_buckets(histogram):
            low = histogram.get_value_from_index(index)
            # the bucket's width from its index: hdrh's own look-ups recompute it from the value,
            # five times slower; tests check both agree
            width = 1 << (unit_magnitude + max((index >> half_magnitude) - 1, 0))
            mid = low + (width >> 1)
            seen += count
            weighted += count * mid
            squares += count * mid * mid
            lowest.append(low)
            highest.append(low + width - 1)
            middle.append(mid)
            cumulative.append(seen)
        mean = weighted / seen if seen else 0.0
        variance = max(squares / seen - mean * mean, 0.0) if seen else 0.0
        return cls(
            tuple(lowest),
            tuple(highest),
            tuple(middle),
            tuple(cumulative),
            seen,
            mean,
            math.sqrt(variance),
        )

    def percentile(self, percentile: float) -> int:
        """The value at `percentile`, by hdrh's own rule (the k-th sample, k rounded)."""
        return self.highest[bisect_left(self.cumulative, _target_rank(percentile, self.total))]

    def resampled_percentiles(self, percentile: float, rng: random.Random, count: int) -> list[int]:
        """The same percentile of `count` multinomial resamples of this histogram's buckets.

        The k-th smallest of n draws from the bucket distribution F is F⁻¹(U₍ₖ₎), where U₍ₖ₎,
        the k-th smallest of n uniforms, is Beta(k, n-k+1): one draw and one bisect give an
        exact multinomial resample's percentile, whatever n is.
        """
        n = self.total
        rank = _target_rank(percentile, n)
        cumulative, highest, last = self.cumulative, self.highest, len(self.highest) - 1
        beta = rng.betavariate
        return [
            highest[min(bisect_left(cumulative, beta(rank, n - rank + 1) * n), last)]
            for _ in range(count)
        ]

    def resampled_means(self, rng: random.Random, count: int) -> list[float]:
        """The mean of `count` resamples, by its normal limit (mean, stdev/√n).

        An exact multinomial draw costs O(buckets); the bootstrap distribution of a mean is
        asymptotically this normal, and latency runs have thousands of samples.
        """
        spread = self.stdev / math.sqrt(self.total)
        return [rng.gauss(self.mean, spread) for _ in range(count)]


def _target_rank(percentile: float, total: int) -> int:
    """hdrh's get_target_count_at_percentile, so our percentiles match its summaries."""
    return max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)


# --- Mann-Whitney U ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """Mann-Whitney U of `new` against `base`, by its tie-corrected normal approximation."""

    u: float  # pairs (base, new) with new > base, plus half the tied pairs
    z: float  # > 0: new tends to be larger (slower)
    p_value: float  # two-sided
    effect: float  # U / (n_base * n_new) = P(new > base) + 0.5 P(tie); 0.5 is no difference
    n_base: int
    n_new: int


def mann_whitney_buckets(base: Buckets, new: Buckets) -> MannWhitney:
    """Mann-Whitney on prepared buckets: one merge of the two value-ordered bucket lists.

    Continuity-corrected like scipy.stats.mannwhitneyu(method="asymptotic"): with the
    thousands of samples of a load test the normal approximation is accurate.
    """
    n_base, n_new = base.total, new.total
    base_counts = _counts(base)
    new_counts = _counts(new)
    twice_u = 0  # integers throughout: exact whatever the sample size
    base_below = 0
    tie_term = 0
    for key in sorted(base_counts.keys() | new_counts.keys()):
        in_base = base_counts.get(key, 0)
        in_new = new_counts.get(key, 0)
        twice_u += in_new * (2 * base_below + in_base)
        base_below += in_base
        tied = in_base + in_new
        tie_term += tied * tied * tied - tied
    u = twice_u / 2
    pairs = n_base * n_new
    effect = u / pairs if pairs else 0.5
    n = n_base + n_new
    if n < 2:
        return MannWhitney(u, 0.0, 1.0, effect, n_base, n_new)
    variance = pairs / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every sample in one bucket: nothing to tell apart
        return MannWhitney(u, 0.0, 1.0, effect, n_base, n_new)
    deviation = u - pairs / 2
    corrected = max(abs(deviation) - 0.5, 0.0) / math.sqrt(variance)
    z = math.copysign(corrected, deviation)
    p_value = min(math.erfc(corrected / math.sqrt(2.0)), 1.0)
    return MannWhitney(u, z, p_value, effect, n_base, n_new)


def _counts(buckets: Buckets) -> dict[int, int]:
    counts: dict[int, int] = {}
    previous = 0
    for key, seen in zip(buckets.lowest, buckets.cumulative, strict=True):
        counts[key] = counts.get(key, 0) + seen - previous
        previous = seen
    return counts


# --- bootstrap confidence intervals ---------------------------------------------------------


def ratio_ci(
    base: Buckets,
    new: Buckets,
    percentile: float | None,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile-bootstrap CI of new/base - 1; `percentile` None means the mean.

    Each side is resampled with its own total (the two runs are independent samples);
    the interval is the central `confidence` share of the resampled ratios.
    """
    if not base.total or not new.total:
        raise ValueError("cannot bootstrap an empty histogram")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, not {resamples}")
    rng = random.Random(seed)
    if percentile is None:
        point = _change(base.mean, new.mean)
        base_draws: list[float] | list[int] = base.resampled_means(rng, resamples)
        new_draws: list[float] | list[int] = new.resampled_means(rng, resamples)
    else:
        point = _change(base.percentile(percentile), new.percentile(percentile))
        base_draws = base.resampled_percentiles(percentile, rng, resamples)
        new_draws = new.resampled_percentiles(percentile, rng, resamples)
    changes = [_change(b, n) for b, n in zip(base_draws, new_draws, strict=True)]
    changes.sort()
    tail = (1.0 - confidence) / 2
    return point, _quantile(changes, tail), _quantile(changes, 1.0 - tail)


def _change(base: float, new: float) -> float:
    """Relative change; a base of zero (a sub-microsecond bucket) counts as one microsecond."""
    return new / max(base, 1.0) - 1.0


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, "type 7")."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction
