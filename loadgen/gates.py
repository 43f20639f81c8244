"""The gates: thresholds checked per endpoint and in-run comparisons, once a run has ended,
and the early abort during one. What they find goes into the RunSummary, whose Verdict
decides the exit code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from loadgen import api
from loadgen.compare import compare_within_run, parse_limit
from loadgen.histograms import RunHistograms, histogram_summary, new_histogram
from loadgen.metrics import Interval
from loadgen.scenario import AbortOnFail, Scenario, Thresholds, ThresholdSet
from loadgen.summary import (
    CapacitySummary,
    ComparisonResult,
    EndpointSummary,
    LatencyStats,
    ThresholdResult,
    TrafficSummary,
)


@dataclass(frozen=True)
class Judgement:
    thresholds: tuple[ThresholdResult, ...]
    comparisons: tuple[ComparisonResult, ...]


def judge(
    scenario: Scenario,
    endpoints: Mapping[str, EndpointSummary],
    histograms: RunHistograms,
    capacity: CapacitySummary | None = None,
) -> Judgement:
    """The scenario's thresholds and comparisons, on this run's numbers and histograms."""
    comparisons: list[ComparisonResult] = []
    for pair in scenario.compare:
        limits = [parse_limit(f"{metric}={limit}") for metric, limit in pair.max_regression.items()]
        comparisons += compare_within_run(
            histograms, endpoints, [(pair.base, pair.new)], limits, metric=pair.metric
        )
    thresholds = evaluate(scenario.thresholds, endpoints)
    thresholds += check_capacity(scenario.thresholds, list(endpoints), capacity)
    return Judgement(thresholds, tuple(comparisons))


def check_capacity(
    thresholds: Thresholds, labels: list[str], capacity: CapacitySummary | None
) -> tuple[ThresholdResult, ...]:
    """thresholds.min_capacity_rps against what the search found (nothing found: 0)."""
    limit = thresholds.min_capacity_rps
    if limit is None:
        return ()
    observed = (capacity.max_rate_rps if capacity is not None else None) or 0.0
    return (
        ThresholdResult(
            endpoint=", ".join(labels),
            metric="capacity_rps",
            comparator=">=",
            limit=limit,
            observed=observed,
            passed=observed >= limit,
        ),
    )


def limits_for(thresholds: Thresholds, label: str) -> ThresholdSet:
    """The top-level limits with this endpoint's own limits laid over them."""
    own = thresholds.endpoints.get(label)
    base = ThresholdSet.model_validate(
        thresholds.model_dump(include=set(ThresholdSet.model_fields))
    )
    if own is None:
        return base
    merged = base.model_dump()
    for key, value in own.model_dump(exclude_unset=True).items():
        merged[key] = merged[key] | value if isinstance(value, dict) else value
    return ThresholdSet.model_validate(merged)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def check_endpoint(
    label: str, limits: ThresholdSet, stats: TrafficSummary
) -> list[ThresholdResult]:
    results: list[ThresholdResult] = []

    def at_most(metric: str, limit: float, observed: float) -> None:
        results.append(
            ThresholdResult(
                endpoint=label,
                metric=metric,
                comparator="<=",
                limit=limit,
                observed=round(observed, 6),
                passed=observed <= limit,
            )
        )

    def at_least(metric: str, limit: float, observed: float) -> None:
        results.append(
            ThresholdResult(
                endpoint=label,
                metric=metric,
                comparator=">=",
                limit=limit,
                observed=observed,
                passed=observed >= limit,
            )
        )

    for key, limit in limits.latency_ms.items():
        at_most(f"latency_ms.{key}", limit, getattr(stats.latency_ms, key))
    for key, limit in limits.service_time_ms.items():
        at_most(f"service_time_ms.{key}", limit, getattr(stats.service_time_ms, key))
    requests = stats.requests
    if limits.error_rate is not None:
        at_most("error_rate", limits.error_rate, _rate(stats.error_count, requests))
    for code, limit in limits.error_rates.items():
        at_most(f"error_rates.{code}", limit, _rate(stats.errors.get(code, 0), requests))
    if limits.late_start_rate is not None:
        at_most("late_start_rate", limits.late_start_rate, _rate(stats.late_starts, requests))
    correlation = stats.correlation
    if limits.mismatch_rate is not None:
        at_most("mismatch_rate", limits.mismatch_rate, _rate(correlation.mismatched, stats.ok))
    if limits.missing_rate is not None:
        at_most("missing_rate", limits.missing_rate, _rate(correlation.missing, stats.ok))
    for metric in ("ttft_ms", "itl_ms", "tpot_ms"):
        wanted: dict[str, float] = getattr(limits, metric)
        measured: LatencyStats | None = getattr(stats, metric)
        for percentile, limit in wanted.items():
            if measured is None:  # no stream ended well: nothing met the limit
                results.append(
                    ThresholdResult(
                        endpoint=label,
                        metric=f"{metric}.{percentile} (no stream succeeded)",
                        comparator="<=",
                        limit=limit,
                        observed=0.0,
                        passed=False,
                    )
                )
            else:
                at_most(f"{metric}.{percentile}", limit, getattr(measured, percentile))
    if limits.min_output_tokens_per_s is not None:
        at_least(
            "output_tokens_per_s", limits.min_output_tokens_per_s, stats.output_tokens_per_s or 0.0
        )
    if limits.min_goodput is not None:
        at_least("goodput", limits.min_goodput, stats.goodput or 0.0)
    if limits.min_throughput_rps is not None:
        at_least("throughput_rps", limits.min_throughput_rps, stats.throughput_rps)
    return results


def evaluate(
    thresholds: Thresholds, endpoints: Mapping[str, TrafficSummary]
) -> tuple[ThresholdResult, ...]:
    results = []
    for label, stats in endpoints.items():
        results.extend(check_endpoint(label, limits_for(thresholds, label), stats))
    return tuple(results)


class AbortWatch:
    """Watches closed seconds; calls `abort(why)` once limits are broken for `grace` in a row.

    Seconds without a single finished request keep the current streak as it is.
    """

    def __init__(self, rule: AbortOnFail, labels: list[str], abort: Callable[[str], None]) -> None:
        self.rule = rule
        self._labels = len(labels)
        self._abort = abort
        self._needed = max(1, math.ceil(rule.grace))
        self._seconds: dict[int, list[Interval]] = {}
        self._streak = 0
        self._first_reason: str | None = None
        self.fired = False

    def observe(self, interval: Interval) -> None:
        second = self._seconds.setdefault(interval.index, [])
        second.append(interval)
        if len(second) == self._labels:
            del self._seconds[interval.index]
            self._judge(second)

    def _judge(self, second: list[Interval]) -> None:
        requests = sum(interval.requests for interval in second)
        if requests == 0 or self.fired:
            return
        reason = self._broken(second, requests)
        if reason is None:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= self._needed:
            self.fired = True
            self._abort(f"{reason} for {self._streak}s (grace {self.rule.grace:g}s)")

    def _broken(self, second: list[Interval], requests: int) -> str | None:
        rule = self.rule
        errors = sum(interval.errors for interval in second)
        if rule.error_rate is not None and errors / requests > rule.error_rate:
            return f"error rate {errors / requests:.1%} above {rule.error_rate:.1%}"
        if rule.latency_ms:
            merged = new_histogram()
            for interval in second:
                merged.add(interval.latency)
            observed = histogram_summary(merged)
            for key, limit in rule.latency_ms.items():
                if observed[key] > limit:
                    return f"latency {key} {observed[key]:.1f} ms above {limit:g} ms"
        return None


class RefusalWatch:
    """Stops a run whose first second of calls all failed with codes no load test can fix
    (api.REFUSAL_FIXES): a wrong secret would otherwise send every call of a long run and
    report 100% errors with a fast p50. Judged once, on the first second with a call."""

    def __init__(self, labels: list[str], region: str, stop: Callable[[str], None]) -> None:
        self._labels = len(labels)
        self._region = region
        self._stop = stop
        self._seconds: dict[int, list[Interval]] = {}
        self.judged = False

    def observe(self, interval: Interval) -> None:
        if self.judged:
            return
        second = self._seconds.setdefault(interval.index, [])
        second.append(interval)
        if len(second) < self._labels:
            return
        del self._seconds[interval.index]
        requests = sum(interval.requests for interval in second)
        if not requests:
            return
        self.judged = True
        codes: dict[str, int] = {}
        for interval in second:
            for code, count in interval.error_codes.items():
                codes[code] = codes.get(code, 0) + count
        refused = {code: count for code, count in codes.items() if code in api.REFUSAL_FIXES}
        if sum(refused.values()) == requests:
            code = max(refused, key=lambda key: refused[key])
            fix = api.REFUSAL_FIXES[code].format(region=self._region)
            self._stop(f"{code} on all {requests:,} calls of the first second: {fix}")
