"""loadgen.stats: Mann-Whitney and the bootstrap, checked against brute force and known truths."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from loadgen.histograms import histogram_summary, new_histogram
from loadgen.stats import Buckets, MannWhitney, mann_whitney_buckets, ratio_ci

MEDIAN_US = 20_000  # 20 ms
SIGMA = 0.5


def mann_whitney(base: HdrHistogram, new: HdrHistogram) -> MannWhitney:
    return mann_whitney_buckets(Buckets.of(base), Buckets.of(new))


def bootstrap_ratio_ci(
    base: HdrHistogram, new: HdrHistogram, percentile: float | None, **options: Any
) -> tuple[float, float, float]:
    """ratio_ci on two histograms; a percentile of None is the mean."""
    return ratio_ci(Buckets.of(base), Buckets.of(new), percentile, **options)


def bootstrap_mean_ratio_ci(
    base: HdrHistogram, new: HdrHistogram, **options: Any
) -> tuple[float, float, float]:
    return bootstrap_ratio_ci(base, new, None, **options)


def histogram_of(values: list[int]) -> HdrHistogram:
    histogram = new_histogram()
    for value in values:
        assert histogram.record_value(value)
    return histogram


def lognormal_samples(seed: int, n: int, scale: float = 1.0) -> list[int]:
    """Latencies in µs, lognormal with median 20 ms * scale: a realistic right-skewed shape."""
    rng = random.Random(seed)
    mu = math.log(MEDIAN_US * scale)
    return [max(1, round(rng.lognormvariate(mu, SIGMA))) for _ in range(n)]


def lognormal_histogram(seed: int, n: int, scale: float = 1.0) -> HdrHistogram:
    return histogram_of(lognormal_samples(seed, n, scale))


def brute_force(base: list[int], new: list[int]) -> tuple[float, float, float]:
    """(U, p, effect) the textbook way: pairs for U, midranks for the tie correction."""
    u = sum((x > y) + 0.5 * (x == y) for x in new for y in base)
    n1, n2 = len(base), len(new)
    n = n1 + n2
    # U again from rank sums, as an independent route to the same number
    ordered = sorted(base + new)
    midrank = {}
    for value, count in Counter(ordered).items():
        first = ordered.index(value) + 1
        midrank[value] = first + (count - 1) / 2
    assert sum(midrank[x] for x in new) - n2 * (n2 + 1) / 2 == pytest.approx(u, abs=1e-9)
    ties = sum(t**3 - t for t in Counter(ordered).values())
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = max(abs(u - n1 * n2 / 2) - 0.5, 0) / sigma
    return u, math.erfc(z / math.sqrt(2)), u / (n1 * n2)


# --- Mann-Whitney ---------------------------------------------------------------------------


def test_mann_whitney_matches_scipy_on_a_fixed_vector() -> None:
    # reference: scipy.stats.mannwhitneyu(new, base, method="asymptotic"), scipy 1.17.1
    rng = random.Random(5)
    base = [rng.randint(1, 30) for _ in range(40)]
    new = [rng.randint(3, 33) for _ in range(55)]
    result = mann_whitney(histogram_of(base), histogram_of(new))
    assert result.u == 1169.0
    assert result.p_value == pytest.approx(0.6052277720709097, abs=1e-12)
    assert (result.n_base, result.n_new) == (40, 55)


@pytest.mark.parametrize("seed", range(12))
def test_mann_whitney_matches_brute_force_on_exact_values(seed: int) -> None:
    rng = random.Random(seed)
    top = rng.choice((5, 40, 2000))  # few values (many ties) to none; below 2048 buckets are exact
    base = [rng.randint(1, top) for _ in range(rng.randint(1, 60))]
    new = [rng.randint(1, top) + rng.choice((0, 0, 1)) for _ in range(rng.randint(2, 60))]
    u, p_value, effect = brute_force(base, new)
    result = mann_whitney(histogram_of(base), histogram_of(new))
    assert result.u == pytest.approx(u, abs=1e-9)
    assert result.p_value == pytest.approx(p_value, abs=1e-9)
    assert result.effect == pytest.approx(effect, abs=1e-12)


def test_identical_distributions_give_roughly_uniform_p_values() -> None:
    p_values = [
        mann_whitney(
            lognormal_histogram(seed, 300), lognormal_histogram(seed + 10_000, 300)
        ).p_value
        for seed in range(100)
    ]
    assert sum(p < 0.01 for p in p_values) <= 4  # expected 1
    assert 0.35 <= sum(p < 0.5 for p in p_values) / len(p_values) <= 0.65
    assert 0.05 <= sum(p < 0.1 for p in p_values) / len(p_values) <= 0.2


def test_a_30_percent_shift_is_hugely_significant_and_signed() -> None:
    base = lognormal_histogram(1, 5000)
    new = lognormal_histogram(2, 5000, scale=1.3)
    slower = mann_whitney(base, new)
    assert slower.p_value < 1e-50
    assert slower.z > 10
    assert slower.effect > 0.6
    faster = mann_whitney(new, base)
    assert faster.z == pytest.approx(-slower.z)
    assert faster.effect == pytest.approx(1 - slower.effect)


def test_bucket_bounds_agree_with_hdrh_everywhere() -> None:
    """Buckets.of derives widths from the index; hdrh derives them from the value."""
    histogram = histogram_of([1, 2047, 2048, 2049, 4097, 65_537, 10**6, 123_456_789, 3 * 10**9])
    buckets = Buckets.of(histogram)
    assert buckets.total == 9
    for low, high, middle in zip(buckets.lowest, buckets.highest, buckets.middle, strict=True):
        assert low == histogram.get_lowest_equivalent_value(low)
        assert high == histogram.get_highest_equivalent_value(low)
        assert middle == histogram._hdr_median_equiv_value(low)


def test_every_sample_in_one_bucket_is_no_difference() -> None:
    result = mann_whitney(histogram_of([500] * 10), histogram_of([500] * 7))
    assert (result.u, result.z, result.p_value, result.effect) == (35.0, 0.0, 1.0, 0.5)


# --- the bootstrap --------------------------------------------------------------------------


def test_resampled_percentile_has_the_naive_bootstraps_distribution() -> None:
    """The Beta order-statistic shortcut draws exactly what resampling every sample draws."""
    rng = random.Random(3)
    samples = sorted(rng.randint(1, 40) for _ in range(201))
    buckets = Buckets.of(histogram_of(samples))
    draws = 10_000
    shortcut = Counter(buckets.resampled_percentiles(50.0, rng, draws))
    naive = Counter(sorted(rng.choices(samples, k=len(samples)))[100] for _ in range(draws))
    distance = sum(abs(shortcut[v] - naive[v]) for v in shortcut.keys() | naive.keys()) / draws
    assert distance < 0.07  # twice the total variation; sampling noise alone gives ~0.03


def test_point_estimates_follow_hdrh_summaries() -> None:
    base = lognormal_histogram(4, 2000)
    new = lognormal_histogram(5, 2000, scale=1.1)
    base_ms, new_ms = histogram_summary(base), histogram_summary(new)
    for metric, percentile in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)):
        point, _, _ = bootstrap_ratio_ci(base, new, percentile, resamples=10)
        assert point == pytest.approx(new_ms[metric] / base_ms[metric] - 1, rel=1e-9)
    mean_point, _, _ = bootstrap_mean_ratio_ci(base, new, resamples=10)
    assert mean_point == pytest.approx(new_ms["mean"] / base_ms["mean"] - 1, abs=1e-4)


def test_bootstrap_ci_covers_a_known_30_percent_difference() -> None:
    covered = Counter()
    for seed in range(20):
        base = lognormal_histogram(seed, 3000)
        new = lognormal_histogram(seed + 500, 3000, scale=1.3)
        for percentile in (50.0, 99.0):
            point, low, high = bootstrap_ratio_ci(base, new, percentile, seed=seed)
            assert low <= point <= high
            assert low > 0  # a 30% difference is never lost in noise at this size
            covered[percentile] += low <= 0.30 <= high
    assert min(covered.values()) >= 17  # 95% intervals: 19 expected


def test_bootstrap_ci_contains_zero_for_the_same_distribution() -> None:
    base = lognormal_histogram(7, 3000)
    new = lognormal_histogram(8, 3000)
    for percentile in (50.0, 90.0, 99.0):
        _, low, high = bootstrap_ratio_ci(base, new, percentile)
        assert low < 0 < high
    _, low, high = bootstrap_mean_ratio_ci(base, new)
    assert low < 0 < high


def test_bootstrap_is_seeded_and_a_higher_confidence_is_wider() -> None:
    base = lognormal_histogram(9, 1000)
    new = lognormal_histogram(10, 1000)
    assert bootstrap_ratio_ci(base, new, 99.0, seed=3) == bootstrap_ratio_ci(
        base, new, 99.0, seed=3
    )
    _, low95, high95 = bootstrap_ratio_ci(base, new, 90.0, confidence=0.95)
    _, low99, high99 = bootstrap_ratio_ci(base, new, 90.0, confidence=0.99)
    assert low99 <= low95 < high95 <= high99


def test_bootstrap_of_100k_samples_per_side_is_fast() -> None:
    base, new = new_histogram(), new_histogram()
    for value in lognormal_samples(11, 2000):  # 2000 distinct values x 50 = 100k samples a side
        base.record_value(value, 50)
        new.record_value(round(value * 1.05), 50)
    started = time.perf_counter()
    point, low, high = bootstrap_ratio_ci(base, new, 99.0, resamples=1000)
    mann_whitney(base, new)
    assert time.perf_counter() - started < 1.0
    assert base.get_total_count() == new.get_total_count() == 100_000
    assert low < point < high


def test_bootstrap_rejects_empty_histograms() -> None:
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ratio_ci(new_histogram(), lognormal_histogram(1, 10), 50.0)
