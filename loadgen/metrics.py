"""The Recorder: HdrHistograms and counters per endpoint and per production variant.

Memory is flat whatever the run's length: histograms, counters, at most MAX_SAMPLES
mismatch samples and the K slowest requests; the only per-request values kept are the late
starts' times of the current second, counted in C when it closes. Closed one-second intervals
go to a sink (the results writer) as soon as they close.

Per request, two histogram updates (latency and service time of its endpoint and variant)
with hdrh's index arithmetic inlined; the endpoint, variant and interval histograms are
summed from those in C (hdrh's encoder.add) when a second closes or the state is read.
"""

from __future__ import annotations

import ctypes
import heapq
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hdrh.histogram import HdrHistogram

from loadgen.correlate import MAX_SAMPLES, Echo, MismatchSample
from loadgen.histograms import (
    COUNTS_LEN,
    EndpointHistograms,
    HistogramPair,
    RunHistograms,
    StreamHistograms,
    add_counts,
    count_all,
    counts_index,
    histogram_summary,
    move_counts,
    new_histogram,
    record_all,
    record_value,
)
from loadgen.stream_metrics import Goodput, StreamState, StreamStats
from loadgen.summary import Correlation, LatencyStats, TrafficSummary
from loadgen.summary import MismatchSample as SampleSummary
from loadgen.transport.base import Outcome, StreamResult

SLOWEST_KEPT = 20
SLOW_CANDIDATES = 256  # requests above the slowest's floor gathered before the heap takes them
NS_PER_S = 1_000_000_000
_MATCHED = Echo.MATCHED  # enum member look-ups cost ~0.1 µs each: not per request
_MISMATCHED = Echo.MISMATCHED


class Slow(NamedTuple):
    """One of an endpoint's slowest requests; ordered by latency first, as its heap needs."""

    latency_us: int
    trace_id: str
    variant: str | None


@dataclass(frozen=True)
class StatsState:
    """A Stats as it travels between processes: histograms encoded (they do not pickle)."""

    latency: str
    service: str
    requests: int
    ok: int
    errors: dict[str, int]
    model_error_status: dict[str, int]
    late_starts: int
    out_of_range: int
    correlation: dict[str, int]
    samples: tuple[MismatchSample, ...]
    stream_error_codes: dict[str, int]
    stream: StreamState | None


@dataclass(frozen=True)
class EndpointState:
    stats: StatsState
    variants: dict[str, StatsState]
    slowest: tuple[Slow, ...]


RecorderState = dict[str, EndpointState]  # by endpoint label


def _share(part: int | None, whole: int) -> float | None:
    return None if part is None else round(part / whole, 6) if whole else 0.0


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
        "stream_error_codes",
        "stream",
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
        self.stream_error_codes: dict[str, int] = {}  # ModelStreamError's ErrorCode -> count
        self.stream: StreamStats | None = None  # once a stream succeeded

    def record(
        self, outcome: Outcome, echo: Echo | None, latency_us: int, service_us: int, late: bool
    ) -> None:
        self.requests += 1
        if not record_value(self.latency, latency_us):
            self.out_of_range += 1
        record_value(self.service, service_us)
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
            code = outcome.stream_error_code
            if code is not None:
                self.stream_error_codes[code] = self.stream_error_codes.get(code, 0) + 1
        if echo is not None:
            self.correlation[echo.value] += 1

    def add_stream(
        self,
        result: StreamResult,
        intended_ns: int,
        sent_ns: int,
        done_ns: int,
        goodput: Goodput | None = None,
    ) -> None:
        stream = self.stream
        if stream is None:
            stream = self.stream = StreamStats(goodput)
        stream.add(result, intended_ns, sent_ns, done_ns)

    def add_sample(self, sample: MismatchSample) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(sample)

    # --- merging across workers: histograms travel encoded (they do not pickle) -----------

    def to_state(self) -> StatsState:
        return StatsState(
            self.latency.encode().decode("ascii"),
            self.service.encode().decode("ascii"),
            self.requests,
            self.ok,
            dict(self.errors),
            dict(self.model_error_status),
            self.late_starts,
            self.out_of_range,
            dict(self.correlation),
            tuple(self.samples),
            dict(self.stream_error_codes),
            None if self.stream is None else self.stream.to_state(),
        )

    def merge_state(self, state: StatsState) -> None:
        if state.requests:
            self.latency.decode_and_add(state.latency)
            self.service.decode_and_add(state.service)
        self.requests += state.requests
        self.ok += state.ok
        self.late_starts += state.late_starts
        self.out_of_range += state.out_of_range
        for target, source in (
            (self.errors, state.errors),
            (self.model_error_status, state.model_error_status),
            (self.correlation, state.correlation),
            (self.stream_error_codes, state.stream_error_codes),
        ):
            for key, count in source.items():
                target[key] = target.get(key, 0) + count
        for sample in state.samples:
            self.add_sample(sample)
        if state.stream is not None:
            if self.stream is None:
                self.stream = StreamStats()
            self.stream.merge_state(state.stream)

    def merge(self, other: Stats) -> None:
        self.merge_state(other.to_state())

    def summary(self, elapsed_s: float) -> TrafficSummary:
        correlation = self.correlation
        return TrafficSummary(
            requests=self.requests,
            ok=self.ok,
            errors=dict(sorted(self.errors.items())),
            model_error_status=dict(sorted(self.model_error_status.items())),
            throughput_rps=round(self.requests / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            latency_ms=LatencyStats(**histogram_summary(self.latency)),
            service_time_ms=LatencyStats(**histogram_summary(self.service)),
            late_starts=self.late_starts,
            out_of_range=self.out_of_range,
            correlation=Correlation(
                matched=correlation[Echo.MATCHED.value],
                mismatched=correlation[Echo.MISMATCHED.value],
                missing=correlation[Echo.MISSING.value],
                samples=tuple(
                    SampleSummary(trace_id=s.trace_id, sent=s.sent, received=s.received)
                    for s in self.samples
                ),
            ),
            stream_error_codes=dict(sorted(self.stream_error_codes.items())),
            **self._stream_fields(elapsed_s),
        )

    def _stream_fields(self, elapsed_s: float) -> dict[str, Any]:
        """TrafficSummary's streaming fields; none for a run without a successful stream."""
        stream = self.stream
        if stream is None:
            return {}

        def stats(histogram: HdrHistogram) -> LatencyStats:
            return LatencyStats(**histogram_summary(histogram))

        return {
            "ttfb_ms": stats(stream.ttfb),
            "ttfb_service_time_ms": stats(stream.ttfb_service),
            "ttft_ms": stats(stream.ttft),
            "ttft_service_time_ms": stats(stream.ttft_service),
            "itl_ms": stats(stream.itl),
            "tpot_ms": stats(stream.tpot),
            "output_tokens": stream.output_tokens,
            "output_tokens_per_s": round(stream.output_tokens / elapsed_s, 3)
            if elapsed_s > 0
            else 0.0,
            "goodput": _share(stream.good, self.requests),
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
    late: int = 0  # requests that started more than 1 ms after their intended time
    start_delay_max_us: int = 0  # how late the latest of those started; 0 if none was late
    error_codes: dict[str, int] = field(default_factory=dict)  # `errors` by code
    output_tokens: int = 0  # of the streams that ended well in this second
    ttft: HdrHistogram = field(default_factory=new_histogram)  # their time to first token
    itl: HdrHistogram = field(default_factory=new_histogram)  # and the gaps between their tokens


IntervalSink = Callable[[Interval], None]


@dataclass(slots=True)
class EndpointRecord:
    stats: Stats = field(default_factory=Stats)
    variants: dict[str, Stats] = field(default_factory=dict)
    slowest: list[Slow] = field(default_factory=list)  # min-heap
    interval: Interval | None = None


_new_tuple = tuple.__new__


def keep_slowest(slowest: list[Slow], entry: Slow) -> None:
    """Push `entry` onto a min-heap of the SLOWEST_KEPT slowest."""
    if len(slowest) < SLOWEST_KEPT:
        heapq.heappush(slowest, entry)
    elif entry[0] > slowest[0][0]:
        heapq.heapreplace(slowest, entry)


class _Pending:
    """What one (endpoint, variant) recorded since the last fold: one latency and one
    service-time histogram and the counters, instead of five histogram updates per request.

    Folded (C-level counter addition) into the endpoint's and the variant's Stats and the
    endpoint's open interval when a second closes or anyone reads the Recorder's state.
    """

    __slots__ = (
        "latency",
        "service",
        "latency_count",
        "latency_min",
        "latency_max",
        "service_count",
        "service_min",
        "service_max",
        "requests",
        "ok",
        "late",
        "out_of_range",
        "matched",
        "mismatched",
        "missing",
        "errors",
        "model_error_status",
        "ok_counts",
        "ok_scratch",
        "ok_out_of_range",
        "ok_missing",
        "ok_min",
        "ok_max",
        "open_latencies",
        "open_services",
        "open_late",
        "open_missing",
        "start_delay_max",
        "slowest",
        "slowest_floor",
        "slow_candidates",
        "stream_error_codes",
    )

    def __init__(self, slowest: list[Slow]) -> None:
        self.latency = new_histogram()
        self.service = new_histogram()
        # Recorder.record_ok's counters: a list item costs a third of a ctypes one, and one
        # serves both histograms. `settle` adds them in through ok_scratch, kept all zero.
        self.ok_counts = [0] * COUNTS_LEN
        self.ok_scratch = new_histogram()
        # Recorder.record_open_ok's values as they come (an append costs less than indexing
        # them), counted in C by `settle`: a late start records two different values
        self.open_latencies = array("q")
        self.open_services = array("q")
        self.slowest = slowest  # the endpoint's heap of its slowest requests
        # Below the heap's least value while it is full, else below any: a request no slower
        # is not kept. Others may push to the shared heap, so it may lag low, never high.
        self.slowest_floor = -sys.maxsize - 1
        # Requests above the floor, put on the heap SLOW_CANDIDATES at a time: while the
        # tester falls behind, latency rises and every request is the slowest yet
        self.slow_candidates: list[tuple[int, str, str | None]] = []
        self._zero()

    def _zero(self) -> None:
        self.latency_count = self.service_count = 0
        self.latency_min = self.service_min = sys.maxsize  # as hdrh starts them
        self.latency_max = self.service_max = 0
        self.requests = self.ok = self.late = self.out_of_range = 0
        self.matched = self.mismatched = self.missing = 0
        self.errors: dict[str, int] = {}
        self.model_error_status: dict[str, int] = {}
        self.stream_error_codes: dict[str, int] = {}
        # record_ok's own counters, few per request; `settle` moves them into the ones above
        self.ok_out_of_range = self.ok_missing = 0
        self.ok_min = sys.maxsize
        self.ok_max = 0
        self.open_late = self.open_missing = 0
        self.start_delay_max = 0  # of late starts: latency minus service time

    def add(
        self, outcome: Outcome, echo: Echo | None, latency_us: int, service_us: int, late: bool
    ) -> None:
        """One request of any outcome."""
        self.times(latency_us, service_us, late, echo)
        error = outcome.error
        if error is None:
            self.ok += 1
        else:
            self.errors[error] = self.errors.get(error, 0) + 1
            if outcome.original_status is not None:
                key = str(outcome.original_status)
                self.model_error_status[key] = self.model_error_status.get(key, 0) + 1
            code = outcome.stream_error_code
            if code is not None:
                self.stream_error_codes[code] = self.stream_error_codes.get(code, 0) + 1

    def times(self, latency_us: int, service_us: int, late: bool, echo: Echo | None) -> None:
        """A request's times, late start and echo; both values indexed exactly as hdrh's
        record_value does (inlined). The caller counts it as ok or as an error."""
        self.requests += 1
        value = latency_us
        if value < 0:
            index = COUNTS_LEN
        elif value < 2048:
            index = value
        else:
            shift = value.bit_length() - 11
            index = (shift << 10) + (value >> shift)
        if index < COUNTS_LEN:
            self.latency.counts[index] += 1
            self.latency_count += 1
            if value < self.latency_min:
                self.latency_min = value
            if value > self.latency_max:
                self.latency_max = value
        else:
            self.out_of_range += 1
        value = service_us
        if value < 0:
            index = COUNTS_LEN
        elif value < 2048:
            index = value
        else:
            shift = value.bit_length() - 11
            index = (shift << 10) + (value >> shift)
        if index < COUNTS_LEN:
            self.service.counts[index] += 1
            self.service_count += 1
            if value < self.service_min:
                self.service_min = value
            if value > self.service_max:
                self.service_max = value
        if late:
            self.late += 1
            if latency_us - service_us > self.start_delay_max:
                self.start_delay_max = latency_us - service_us
        if echo is not None:
            if echo is _MATCHED:
                self.matched += 1
            elif echo is _MISMATCHED:
                self.mismatched += 1
            else:
                self.missing += 1

    def settle(self) -> None:
        """Move record_ok's and record_open_ok's counters into the general ones and both
        histograms; call before reading those. Only the counters between the least and the
        greatest value move."""
        out_of_range = self.ok_out_of_range
        low, high = self.ok_min, self.ok_max
        recorded = 0
        if low <= high:
            recorded = self._move(self.ok_counts, low, high, self.latency, self.service)
            self.latency_count += recorded
            self.service_count += recorded
            self.latency_min = min(self.latency_min, low)
            self.service_min = min(self.service_min, low)
            self.latency_max = max(self.latency_max, high)
            self.service_max = max(self.service_max, high)
        requests = recorded + out_of_range
        if requests:
            self.requests += requests
            self.ok += requests
            self.out_of_range += out_of_range
            self.matched += requests - self.ok_missing
            self.missing += self.ok_missing
            self.ok_out_of_range = self.ok_missing = 0
            self.ok_min = sys.maxsize
            self.ok_max = 0
        if self.slow_candidates:
            self.keep_slowest_candidates()
        latencies = self.open_latencies
        requests = len(latencies)
        if not requests:
            return
        recorded, low, high = count_all(self.latency, latencies)
        if recorded:
            self.latency_count += recorded
            self.latency_min = min(self.latency_min, low)
            self.latency_max = max(self.latency_max, high)
        self.out_of_range += requests - recorded
        recorded, low, high = count_all(self.service, self.open_services)
        if recorded:
            self.service_count += recorded
            self.service_min = min(self.service_min, low)
            self.service_max = max(self.service_max, high)
        del latencies[:], self.open_services[:]
        self.requests += requests
        self.ok += requests
        self.late += self.open_late
        self.matched += requests - self.open_missing
        self.missing += self.open_missing
        self.open_late = self.open_missing = 0

    def _move(self, counts: list[int], low: int, high: int, *into: HdrHistogram) -> int:
        """Move the list counters of the values `low` to `high` into each histogram."""
        end = counts_index(high) + 1
        return move_counts(counts, counts_index(low), end, self.ok_scratch, *into)

    def keep_if_slow(self, latency_us: int, trace_id: str, variant: str | None) -> None:
        """A request above the floor: a candidate among the endpoint's slowest."""
        candidates = self.slow_candidates
        candidates.append((latency_us, trace_id, variant))
        if len(candidates) >= SLOW_CANDIDATES:
            self.keep_slowest_candidates()

    def keep_slowest_candidates(self) -> None:
        """Put the slowest of the candidates on the endpoint's heap, and raise the floor.
        A sort, not heapq.nlargest: they come mostly in rising order, which timsort takes
        in one pass of C compares, where nlargest replaces its heap's top at each one."""
        slowest, candidates = self.slowest, self.slow_candidates
        candidates.sort()
        for entry in candidates[-SLOWEST_KEPT:]:
            keep_slowest(slowest, _new_tuple(Slow, entry))
        candidates.clear()
        if len(slowest) >= SLOWEST_KEPT:
            self.slowest_floor = slowest[0][0]

    def fold_into(self, stats: Stats) -> None:
        add_counts(
            stats.latency, self.latency, self.latency_count, self.latency_min, self.latency_max
        )
        add_counts(
            stats.service, self.service, self.service_count, self.service_min, self.service_max
        )
        stats.requests += self.requests
        stats.ok += self.ok
        stats.late_starts += self.late
        stats.out_of_range += self.out_of_range
        for key, count in self.errors.items():
            stats.errors[key] = stats.errors.get(key, 0) + count
        for key, count in self.model_error_status.items():
            stats.model_error_status[key] = stats.model_error_status.get(key, 0) + count
        for key, count in self.stream_error_codes.items():
            stats.stream_error_codes[key] = stats.stream_error_codes.get(key, 0) + count
        correlation = stats.correlation
        correlation[Echo.MATCHED.value] += self.matched
        correlation[Echo.MISMATCHED.value] += self.mismatched
        correlation[Echo.MISSING.value] += self.missing

    def fold_into_interval(self, interval: Interval) -> None:
        add_counts(
            interval.latency,
            self.latency,
            self.latency_count,
            self.latency_min,
            self.latency_max,
        )
        interval.requests += self.requests
        interval.errors += self.requests - self.ok
        codes = interval.error_codes
        for key, count in self.errors.items():
            codes[key] = codes.get(key, 0) + count
        interval.mismatched += self.mismatched
        interval.late += self.late
        if self.start_delay_max > interval.start_delay_max_us:
            interval.start_delay_max_us = self.start_delay_max

    def reset(self) -> None:
        for histogram, count in (
            (self.latency, self.latency_count),
            (self.service, self.service_count),
        ):
            if count:
                counts = histogram.counts
                ctypes.memset(ctypes.addressof(counts), 0, ctypes.sizeof(counts))
        self._zero()


class Recorder:
    """Records every finished request; `tick` closes one-second intervals into the sink.

    Requests go into one _Pending per (endpoint, variant); `endpoints` (and every method
    that reads state) folds them in first, so readers always see every request recorded.
    """

    def __init__(
        self,
        labels: list[str],
        start_ns: int,
        sink: IntervalSink | None = None,
        goodput: Goodput | None = None,
    ) -> None:
        self.start_ns = start_ns
        self.goodput = goodput  # streams: the limits a good request meets
        self._endpoints = {label: EndpointRecord() for label in labels}
        self._pending: dict[tuple[str, str | None], _Pending] = {}
        self._sink = sink
        self._interval_index = 0
        self._interval_end_ns = start_ns + NS_PER_S
        for label, record in self._endpoints.items():
            record.interval = Interval(0, label, new_histogram())

    @property
    def endpoints(self) -> dict[str, EndpointRecord]:
        self._fold()
        return self._endpoints

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
        variant = outcome.variant
        pending = self._pending.get((label, variant))
        if pending is None:
            pending = self._open(label, variant)
        pending.add(outcome, echo, latency_us, service_us, late)
        if latency_us > pending.slowest_floor:
            pending.keep_if_slow(latency_us, trace_id, variant)

    def record_ok(
        self,
        label: str,
        variant: str | None,
        echo: Echo,
        service_us: int,
        trace_id: str,
        now_ns: int,
    ) -> None:
        """`record` for a successful closed-loop request (latency = service time, never late)
        whose echo matched or is missing: one list counter serves both histograms."""
        if now_ns >= self._interval_end_ns:
            self.tick(now_ns)
        pending = self._pending.get((label, variant))
        if pending is None:
            pending = self._open(label, variant)
        value = service_us  # indexed as hdrh's record_value does (inlined, as in add)
        if value < 2048:
            index = value if value >= 0 else COUNTS_LEN
        else:
            shift = value.bit_length() - 11
            index = (shift << 10) + (value >> shift)
        if index < COUNTS_LEN:
            pending.ok_counts[index] += 1
            if value < pending.ok_min:
                pending.ok_min = value
            if value > pending.ok_max:
                pending.ok_max = value
        else:
            pending.ok_out_of_range += 1
        if echo is not _MATCHED:  # a mismatch goes through `record`, with its sample
            pending.ok_missing += 1
        if value > pending.slowest_floor:
            pending.keep_if_slow(value, trace_id, variant)

    def record_open_ok(
        self,
        label: str,
        variant: str | None,
        echo: Echo,
        latency_us: int,
        service_us: int,
        late: bool,
        trace_id: str,
        now_ns: int,
    ) -> None:
        """`record` for a successful open-loop request that started late (on time, it is
        record_ok's) whose echo matched or is missing: no Outcome to build, and its two
        values appended, counted in C when the pending requests settle."""
        if now_ns >= self._interval_end_ns:
            self.tick(now_ns)
        pending = self._pending.get((label, variant))
        if pending is None:
            pending = self._open(label, variant)
        pending.open_latencies.append(latency_us)
        pending.open_services.append(service_us)
        if late:
            pending.open_late += 1
            if latency_us - service_us > pending.start_delay_max:
                pending.start_delay_max = latency_us - service_us
        if echo is not _MATCHED:  # a mismatch goes through `record`, with its sample
            pending.open_missing += 1
        if latency_us > pending.slowest_floor:  # keep_if_slow, inlined: behind, every request
            candidates = pending.slow_candidates
            candidates.append((latency_us, trace_id, variant))
            if len(candidates) >= SLOW_CANDIDATES:
                pending.keep_slowest_candidates()

    def record_stream(
        self,
        label: str,
        variant: str | None,
        result: StreamResult,
        intended_ns: int,
        sent_ns: int,
        done_ns: int,
    ) -> None:
        """A successful stream's times and tokens, after `record` counted the request."""
        endpoint = self._endpoints[label]
        goodput = self.goodput
        endpoint.stats.add_stream(result, intended_ns, sent_ns, done_ns, goodput)
        if variant is not None:
            variant_stats = endpoint.variants.get(variant)  # not setdefault: a Stats costs
            if variant_stats is None:  # two histograms, ~0.4 ms, per stream
                variant_stats = endpoint.variants[variant] = Stats()
            variant_stats.add_stream(result, intended_ns, sent_ns, done_ns, goodput)
        interval = endpoint.interval
        assert interval is not None
        interval.output_tokens += result.tokens
        if result.first_token_ns:  # as StreamStats.add: no first token, no gaps
            record_value(interval.ttft, (result.first_token_ns - intended_ns) // 1000)
            if result.gaps_us is not None:
                record_all(interval.itl, result.gaps_us)

    def _open(self, label: str, variant: str | None) -> _Pending:
        endpoint = self._endpoints[label]  # KeyError for an unknown label, as before
        if variant is not None and variant not in endpoint.variants:
            endpoint.variants[variant] = Stats()  # now: mismatch samples go to it at once
        pending = self._pending[(label, variant)] = _Pending(endpoint.slowest)
        return pending

    def _fold(self) -> None:
        """Move every pending request into the Stats and the open intervals."""
        for (label, variant), pending in self._pending.items():
            pending.settle()
            if not pending.requests:
                continue
            endpoint = self._endpoints[label]
            pending.fold_into(endpoint.stats)
            if variant is not None:
                variant_stats = endpoint.variants.get(variant)
                if variant_stats is None:
                    variant_stats = endpoint.variants[variant] = Stats()
                pending.fold_into(variant_stats)
            interval = endpoint.interval
            assert interval is not None
            pending.fold_into_interval(interval)
            pending.reset()

    def add_mismatch(self, label: str, variant: str | None, sample: MismatchSample) -> None:
        endpoint = self._endpoints[label]
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
        self._fold()
        next_index = self._interval_index + 1
        for label, endpoint in self._endpoints.items():
            closed = endpoint.interval
            assert closed is not None
            endpoint.interval = Interval(next_index, label, new_histogram())
            if self._sink is not None:
                self._sink(closed)
        self._interval_index = next_index
        self._interval_end_ns += NS_PER_S

    def take_state(self) -> RecorderState:
        """Everything recorded since the last call, encoded for another process; then start afresh."""
        state = {}
        for label, endpoint in self.endpoints.items():
            state[label] = EndpointState(
                endpoint.stats.to_state(),
                {variant: stats.to_state() for variant, stats in endpoint.variants.items()},
                tuple(endpoint.slowest),
            )
            endpoint.stats = Stats()
            endpoint.variants = {}
            endpoint.slowest = []
        self._pending.clear()  # so the next request of a variant makes its Stats again
        return state

    def merge_state(self, state: RecorderState) -> None:
        """Add another recorder's `take_state()`: workers' deltas make one run's result."""
        endpoints = self.endpoints
        for label, part in state.items():
            endpoint = endpoints[label]
            endpoint.stats.merge_state(part.stats)
            for variant, variant_state in part.variants.items():
                endpoint.variants.setdefault(variant, Stats()).merge_state(variant_state)
            for slow in part.slowest:
                keep_slowest(endpoint.slowest, slow)

    def totals(self) -> Stats:
        total = Stats()
        for endpoint in self.endpoints.values():
            total.merge(endpoint.stats)
        return total

    def slowest(self, label: str) -> list[Slow]:
        return sorted(self.endpoints[label].slowest, reverse=True)

    def histograms(self) -> RunHistograms:
        """Every endpoint's and variant's full histograms, as they stand (not copies)."""
        return RunHistograms(
            {
                label: EndpointHistograms(
                    record.stats.latency,
                    record.stats.service,
                    {
                        variant: HistogramPair(
                            stats.latency, stats.service, stream=_stream_histograms(stats)
                        )
                        for variant, stats in sorted(record.variants.items())
                    },
                    stream=_stream_histograms(record.stats),
                )
                for label, record in self.endpoints.items()
            }
        )


def _stream_histograms(stats: Stats) -> StreamHistograms | None:
    stream = stats.stream
    return None if stream is None else StreamHistograms(stream.ttft, stream.itl, stream.tpot)
