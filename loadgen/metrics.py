"""The Recorder: HdrHistograms and counters per endpoint and per production variant.

Memory is flat whatever the run's length: no per-request lists, only histograms, counters,
at most MAX_SAMPLES mismatch samples and the K slowest requests. Closed one-second intervals
go to a sink (the results writer) as soon as they close.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.correlate import MAX_SAMPLES, Echo, MismatchSample
from loadgen.transport.base import Outcome

HIGHEST_US = 3_600_000_000  # one hour: anything slower is counted as out of range
SIGNIFICANT_FIGURES = 3
SLOWEST_KEPT = 20
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))
NS_PER_S = 1_000_000_000


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, SIGNIFICANT_FIGURES)


def recorded_buckets(histogram: HdrHistogram) -> list[tuple[int, int]]:
    """(counts index, count) of every non-empty bucket, in value order.

    hdrh's own iterators walk every sub-bucket in Python (~0.4 s a call on our range);
    slicing the ctypes counts array and skipping zeros takes about a millisecond.
    """
    counts = histogram.counts[: histogram.counts_len]
    return [(index, count) for index, count in enumerate(counts) if count]


def histogram_summary(histogram: HdrHistogram) -> dict[str, float]:
    """Percentiles and mean in milliseconds, by hdrh's own rules; for report time only."""
    total = histogram.get_total_count()
    if total == 0:
        return {key: 0.0 for key, _ in PERCENTILES} | {"max": 0.0, "mean": 0.0}
    buckets = recorded_buckets(histogram)
    summary: dict[str, float] = {}
    targets = iter(PERCENTILES)
    key, percentile = next(targets)
    wanted = histogram.get_target_count_at_percentile(percentile)
    seen = 0
    weighted = 0
    for index, count in buckets:
        value = histogram.get_value_from_index(index)
        seen += count
        weighted += count * histogram._hdr_median_equiv_value(value)
        while key and seen >= wanted:
            summary[key] = histogram.get_highest_equivalent_value(value) / 1000.0
            key, percentile = next(targets, ("", 0.0))
            wanted = histogram.get_target_count_at_percentile(percentile) if key else 0
    summary["max"] = histogram.get_max_value() / 1000.0
    summary["mean"] = round(weighted / total / 1000.0, 3)
    return summary


@dataclass(frozen=True, slots=True)
class SlowRequest:
    latency_us: int
    trace_id: str
    variant: str | None


class Stats:
    """Everything recorded for one endpoint, or one (endpoint, variant)."""

    __slots__ = (
        "latency",
        "service",
        "requests",
        "ok",
        "errors",
        "model_error_status",
        "late_starts",
        "out_of_range",
        "correlation",
        "samples",
    )

    def __init__(self) -> None:
        self.latency = new_histogram()
        self.service = new_histogram()
        self.requests = 0
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.model_error_status: dict[str, int] = {}  # ModelError's OriginalStatusCode -> count
        self.late_starts = 0
        self.out_of_range = 0  # values HdrHistogram refused (above one hour)
        self.correlation = {echo.value: 0 for echo in Echo}
        self.samples: list[MismatchSample] = []

    def record(
        self, outcome: Outcome, echo: Echo | None, latency_us: int, service_us: int, late: bool
    ) -> None:
        self.requests += 1
        if not self.latency.record_value(latency_us):
            self.out_of_range += 1
        self.service.record_value(service_us)
        if late:
            self.late_starts += 1
        error = outcome.error
        if error is None:
            self.ok += 1
        else:
            self.errors[error] = self.errors.get(error, 0) + 1
            if outcome.original_status is not None:
                key = str(outcome.original_status)
                self.model_error_status[key] = self.model_error_status.get(key, 0) + 1
        if echo is not None:
            self.correlation[echo.value] += 1

    def add_sample(self, sample: MismatchSample) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(sample)

    # --- merging across workers: histograms travel encoded (they do not pickle) -----------

    def to_state(self) -> dict[str, Any]:
        return {
            "latency": self.latency.encode().decode("ascii"),
            "service": self.service.encode().decode("ascii"),
            "requests": self.requests,
            "ok": self.ok,
            "errors": dict(self.errors),
            "model_error_status": dict(self.model_error_status),
            "late_starts": self.late_starts,
            "out_of_range": self.out_of_range,
            "correlation": dict(self.correlation),
            "samples": [[s.trace_id, s.sent, s.received] for s in self.samples],
        }

    def merge_state(self, state: dict[str, Any]) -> None:
        if state["requests"]:
            self.latency.decode_and_add(state["latency"])
            self.service.decode_and_add(state["service"])
        self.requests += state["requests"]
        self.ok += state["ok"]
        self.late_starts += state["late_starts"]
        self.out_of_range += state["out_of_range"]
        for target, source in (
            (self.errors, state["errors"]),
            (self.model_error_status, state["model_error_status"]),
            (self.correlation, state["correlation"]),
        ):
            for key, count in source.items():
                target[key] = target.get(key, 0) + count
        for trace_id, sent, received in state["samples"]:
            self.add_sample(MismatchSample(trace_id, sent, received))

    def merge(self, other: Stats) -> None:
        self.merge_state(other.to_state())

    def summary(self, elapsed_s: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.requests - self.ok,
            "model_error_status": dict(sorted(self.model_error_status.items())),
            "throughput_rps": round(self.requests / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "latency_ms": histogram_summary(self.latency),
            "service_time_ms": histogram_summary(self.service),
            "late_starts": self.late_starts,
            "out_of_range": self.out_of_range,
            "correlation": {
                **self.correlation,
                "samples": [
                    {"trace_id": s.trace_id, "sent": s.sent, "received": s.received}
                    for s in self.samples
                ],
            },
        }


@dataclass(slots=True)
class Interval:
    """One closed second of one endpoint: what timeseries.csv and the .hlog are written from."""

    index: int  # seconds since the run started
    label: str
    latency: HdrHistogram
    requests: int = 0
    errors: int = 0
    mismatched: int = 0


IntervalSink = Callable[[Interval], None]


@dataclass(slots=True)
class EndpointRecord:
    stats: Stats = field(default_factory=Stats)
    variants: dict[str, Stats] = field(default_factory=dict)
    slowest: list[tuple[int, str, str | None]] = field(default_factory=list)  # min-heap
    interval: Interval | None = None


class Recorder:
    """Records every finished request; `tick` closes one-second intervals into the sink."""

    def __init__(self, labels: list[str], start_ns: int, sink: IntervalSink | None = None) -> None:
        self.start_ns = start_ns
        self.endpoints = {label: EndpointRecord() for label in labels}
        self._sink = sink
        self._interval_index = 0
        self._interval_end_ns = start_ns + NS_PER_S
        for label, record in self.endpoints.items():
            record.interval = Interval(0, label, new_histogram())
        self.last_closed: dict[str, Interval] = {}

    def record(
        self,
        label: str,
        outcome: Outcome,
        echo: Echo | None,
        latency_us: int,
        service_us: int,
        late: bool,
        trace_id: str,
        now_ns: int,
    ) -> None:
        if now_ns >= self._interval_end_ns:
            self.tick(now_ns)
        endpoint = self.endpoints[label]
        endpoint.stats.record(outcome, echo, latency_us, service_us, late)
        variant = outcome.variant
        if variant is not None:
            variant_stats = endpoint.variants.get(variant)
            if variant_stats is None:
                variant_stats = endpoint.variants[variant] = Stats()
            variant_stats.record(outcome, echo, latency_us, service_us, late)
        interval = endpoint.interval
        assert interval is not None
        interval.latency.record_value(latency_us)
        interval.requests += 1
        if outcome.error is not None:
            interval.errors += 1
        if echo is Echo.MISMATCHED:
            interval.mismatched += 1
        slowest = endpoint.slowest
        if len(slowest) < SLOWEST_KEPT:
            heapq.heappush(slowest, (latency_us, trace_id, variant))
        elif latency_us > slowest[0][0]:
            heapq.heapreplace(slowest, (latency_us, trace_id, variant))

    def add_mismatch(self, label: str, variant: str | None, sample: MismatchSample) -> None:
        endpoint = self.endpoints[label]
        endpoint.stats.add_sample(sample)
        if variant is not None and variant in endpoint.variants:
            endpoint.variants[variant].add_sample(sample)

    def tick(self, now_ns: int) -> None:
        """Close every interval that ended before `now_ns` (empty ones too: a stall shows as zeros)."""
        while now_ns >= self._interval_end_ns:
            self._close_interval()

    def flush(self) -> None:
        """Close the current, partial interval at the end of a run."""
        self._close_interval()

    def _close_interval(self) -> None:
        next_index = self._interval_index + 1
        for label, endpoint in self.endpoints.items():
            closed = endpoint.interval
            assert closed is not None
            endpoint.interval = Interval(next_index, label, new_histogram())
            self.last_closed[label] = closed
            if self._sink is not None:
                self._sink(closed)
        self._interval_index = next_index
        self._interval_end_ns += NS_PER_S

    def take_state(self) -> dict[str, Any]:
        """Everything recorded since the last call, encoded for another process; then start afresh."""
        state = {}
        for label, endpoint in self.endpoints.items():
            state[label] = {
                "stats": endpoint.stats.to_state(),
                "variants": {
                    variant: stats.to_state() for variant, stats in endpoint.variants.items()
                },
                "slowest": list(endpoint.slowest),
            }
            endpoint.stats = Stats()
            endpoint.variants = {}
            endpoint.slowest = []
        return state

    def merge_state(self, state: dict[str, Any]) -> None:
        """Add another recorder's `take_state()`: workers' deltas make one run's result."""
        for label, part in state.items():
            endpoint = self.endpoints[label]
            endpoint.stats.merge_state(part["stats"])
            for variant, variant_state in part["variants"].items():
                endpoint.variants.setdefault(variant, Stats()).merge_state(variant_state)
            for latency_us, trace_id, variant in part["slowest"]:
                if len(endpoint.slowest) < SLOWEST_KEPT:
                    heapq.heappush(endpoint.slowest, (latency_us, trace_id, variant))
                elif latency_us > endpoint.slowest[0][0]:
                    heapq.heapreplace(endpoint.slowest, (latency_us, trace_id, variant))

    def totals(self) -> Stats:
        total = Stats()
        for endpoint in self.endpoints.values():
            total.merge(endpoint.stats)
        return total

    def slowest(self, label: str) -> list[SlowRequest]:
        ordered = sorted(self.endpoints[label].slowest, reverse=True)
        return [SlowRequest(latency, trace_id, variant) for latency, trace_id, variant in ordered]
