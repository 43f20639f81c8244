"""HdrHistogram primitives for the hot path and for reports.

hdrh's record_value and iterators are pure Python and slow (~1.3 µs a record, ~0.4 s a
percentile walk on our range). Here the counts index is computed inline, as hdrh does, and
percentiles come from one pass over the counts array. Values are integer microseconds.
"""

from __future__ import annotations

import ctypes
import json
import sys
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.errors import UsageError
from loadgen.results.files import read_json_object

HIGHEST_US = 3_600_000_000  # one hour: anything slower is counted as out of range
SIGNIFICANT_FIGURES = 3
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, SIGNIFICANT_FIGURES)


# The layout every histogram of ours shares (1 µs .. 1 h, 3 figures): 2048 sub-buckets, so
# values below 2048 index themselves and bucket b >= 1 holds [2^(10+b), 2^(11+b)) at index
# (b << 10) + (value >> b). hdrh computes the same in ~1.3 µs of Python calls; inlined it is
# a few bytecodes. `counts_index` is checked against hdrh's own in tests/test_metrics.py.
_LAYOUT = new_histogram()
assert _LAYOUT.unit_magnitude == 0 and _LAYOUT.sub_bucket_half_count_magnitude == 10
COUNTS_LEN = _LAYOUT.counts_len  # 23552 counters, up to HIGHEST_US and a little beyond
COUNTER_BYTES = ctypes.sizeof(_LAYOUT.counts._type_)  # 8: hdrh's default word size
del _LAYOUT


def counts_index(value: int) -> int:
    """hdrh's counts index of a value >= 0 (may be >= COUNTS_LEN: out of range)."""
    if value < 2048:
        return value
    shift = value.bit_length() - 11
    return (shift << 10) + (value >> shift)


def _lowest_and_size(index: int) -> tuple[int, int]:
    """The lowest value a counts index stands for, and the width of its range."""
    if index < 2048:
        return index, 1
    shift = (index >> 10) - 1
    return ((index & 1023) + 1024) << shift, 1 << shift


def record_value(histogram: HdrHistogram, value: int) -> bool:
    """hdrh's `record_value(value)`, state for state (counts, total, min, max), inlined.

    False (and nothing recorded) for a negative value or one above the trackable range.
    """
    if histogram.counts_len != COUNTS_LEN:  # not our layout: let hdrh do it
        return bool(histogram.record_value(value))
    if value < 0:
        return False
    if value < 2048:
        index = value
    else:
        shift = value.bit_length() - 11
        index = (shift << 10) + (value >> shift)
        if index >= COUNTS_LEN:
            return False
    histogram.counts[index] += 1
    histogram.total_count += 1
    if value < histogram.min_value:
        histogram.min_value = value
    if value > histogram.max_value:
        histogram.max_value = value
    return True


try:  # C over the counters (_hdrc.c); without it, the Python below, which it is tested against
    from loadgen import _hdrc
except ImportError:
    _hdrc = None  # type: ignore[assignment]
_record_counts = None if _hdrc is None else _hdrc.record_counts
_move_list = None if _hdrc is None else _hdrc.move_list
_add_range = None if _hdrc is None else _hdrc.add_range


def record_all(histogram: HdrHistogram, values: array[int]) -> None:
    """record_value of each value (an array('q')), in one C call where _hdrc is built."""
    if not values:
        return
    if histogram.counts_len != COUNTS_LEN:
        for value in values:
            record_value(histogram, value)
        return
    recorded, lowest, highest = count_all(histogram, values)
    if recorded:
        histogram.total_count += recorded
        if lowest < histogram.min_value:
            histogram.min_value = lowest
        if highest > histogram.max_value:
            histogram.max_value = highest


def count_all(histogram: HdrHistogram, values: array[int]) -> tuple[int, int, int]:
    """Count each value of an array('q') at its index in our layout's counters, dropping those
    record_value drops, and leave the total, min and max to the caller: (recorded, lowest,
    highest) of the counted ones, (0, 0, 0) if none. One C call where _hdrc is built."""
    assert histogram.counts_len == COUNTS_LEN
    if _record_counts is not None:
        return _record_counts(ctypes.addressof(histogram.counts), values)
    counts, recorded, lowest, highest = histogram.counts, 0, sys.maxsize, 0
    for value in values:
        if value < 0 or (index := counts_index(value)) >= COUNTS_LEN:
            continue
        counts[index] += 1
        recorded += 1
        lowest, highest = min(lowest, value), max(highest, value)
    return (recorded, lowest, highest) if recorded else (0, 0, 0)


def add_counts(target: HdrHistogram, source: HdrHistogram, count: int, low: int, high: int) -> None:
    """Add `source`'s counters (C, one pass) as if its `count` values, min `low` and max
    `high` had been recorded into `target` one by one."""
    if count:
        if (
            _add_range is not None
            and target.counts_len == COUNTS_LEN
            and source.counts_len == COUNTS_LEN
        ):  # only the counters between low's and high's
            _add_range(
                ctypes.addressof(target.counts),
                ctypes.addressof(source.counts),
                counts_index(low),
                min(counts_index(high) + 1, COUNTS_LEN),
            )
        else:
            target.encoder.add(source.encoder)
        target.total_count += count
        if low < target.min_value:
            target.min_value = low
        if high > target.max_value:
            target.max_value = high


def move_counts(
    counts: list[int], first: int, end: int, scratch: HdrHistogram, *into: HdrHistogram
) -> int:
    """Add the list counters `counts[first:end]` (hdrh's index layout: the hot path's cheap
    form) to each histogram's counters, C-level through `scratch` (left all zero again), and
    zero them; how many there were. Totals, min and max are the caller's to update."""
    if _move_list is not None and all(histogram.counts_len == COUNTS_LEN for histogram in into):
        addresses = tuple(ctypes.addressof(histogram.counts) for histogram in into)
        return _move_list(counts, first, min(end, COUNTS_LEN), addresses)
    part = array("q", counts[first:end])
    counts[first:end] = [0] * (end - first)
    at = ctypes.addressof(scratch.counts) + first * COUNTER_BYTES
    ctypes.memmove(at, part.buffer_info()[0], len(part) * COUNTER_BYTES)
    for histogram in into:
        histogram.encoder.add(scratch.encoder)
    ctypes.memset(at, 0, len(part) * COUNTER_BYTES)
    return sum(part)


def _cumulative(histogram: HdrHistogram) -> list[int]:
    """Running totals of the counters up to the one holding the max value."""
    limit = min(counts_index(histogram.max_value) + 1, histogram.counts_len)
    return list(accumulate(histogram.counts[:limit]))


def _highest_at(cumulative: list[int], wanted: int) -> int:
    """hdrh's value at a target count: highest equivalent value of the first bucket reaching it."""
    index = min(bisect_left(cumulative, wanted), len(cumulative) - 1)
    lowest, size = _lowest_and_size(index)
    return lowest + size - 1


def _wanted(histogram: HdrHistogram, percentile: float) -> int:
    return histogram.get_target_count_at_percentile(percentile)


def recorded_buckets(histogram: HdrHistogram) -> list[tuple[int, int]]:
    """(counts index, count) of every non-empty bucket, in value order.

    hdrh's own iterators walk every sub-bucket in Python (~0.4 s a call on our range);
    slicing the ctypes counts array and skipping zeros takes about a millisecond.
    """
    counts = histogram.counts[: histogram.counts_len]
    return [(index, count) for index, count in enumerate(counts) if count]


def percentiles_ms(histogram: HdrHistogram, percentiles: tuple[float, ...]) -> list[float]:
    """Just these percentiles, in milliseconds, by hdrh's rules: one C pass, then bisection.

    What closing each second needs (timeseries p50/p99), without histogram_summary's mean.
    """
    if histogram.get_total_count() == 0:
        return [0.0 for _ in percentiles]
    cumulative = _cumulative(histogram)
    return [
        _highest_at(cumulative, _wanted(histogram, percentile)) / 1000.0
        for percentile in percentiles
    ]


def histogram_summary(histogram: HdrHistogram) -> dict[str, float]:
    """Percentiles, max and mean in milliseconds, exactly as hdrh computes them."""
    total = histogram.get_total_count()
    if total == 0:
        return {key: 0.0 for key, _ in PERCENTILES} | {"max": 0.0, "mean": 0.0}
    cumulative = _cumulative(histogram)
    summary: dict[str, float] = {
        key: _highest_at(cumulative, _wanted(histogram, percentile)) / 1000.0
        for key, percentile in PERCENTILES
    }
    weighted = 0
    previous = 0
    for index, running in enumerate(cumulative):
        if running != previous:
            lowest, size = _lowest_and_size(index)
            weighted += (running - previous) * (lowest + (size >> 1))  # hdrh's median equivalent
            previous = running
    summary["max"] = histogram.get_max_value() / 1000.0
    summary["mean"] = round(weighted / total / 1000.0, 3)
    return summary


# --- histograms.json: a run's full histograms -------------------------------------------------

HISTOGRAMS_UNIT = "microseconds"
STREAM_HISTOGRAMS = ("ttft", "itl", "tpot")  # StreamHistograms' fields, histograms.json's keys


@dataclass(frozen=True)
class StreamHistograms:
    """A streaming endpoint's or variant's token times (successful streams only): what a
    comparison on ttft, itl or tpot and the report's stream spectra read."""

    ttft: HdrHistogram  # to the first token, from the intended start (as latency)
    itl: HdrHistogram  # each gap between token events
    tpot: HdrHistogram  # per stream: time per output token after the first


@dataclass(frozen=True)
class HistogramPair:
    latency: HdrHistogram  # from the intended start
    service_time: HdrHistogram  # from the actual send
    # None: no stream ended well here (or the run did not stream, or its file predates them)
    stream: StreamHistograms | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class EndpointHistograms(HistogramPair):
    variants: dict[str, HistogramPair]


@dataclass(frozen=True)
class RunHistograms:
    """Latency and service-time histograms per endpoint and variant, and their streams' token
    times: what in-run comparisons read in memory, and histograms.json holds (HdrHistogram's
    encoding) for later ones and for `loadgen report`."""

    endpoints: dict[str, EndpointHistograms]

    @property
    def streamed(self) -> bool:
        """Some endpoint or variant has stream histograms."""
        return any(
            pair.stream is not None
            for entry in self.endpoints.values()
            for pair in (entry, *entry.variants.values())
        )

    def to_json(self) -> str:
        def pair(histograms: HistogramPair) -> dict[str, Any]:
            encoded: dict[str, Any] = {
                "latency": _encoded(histograms.latency),
                "service_time": _encoded(histograms.service_time),
            }
            stream = histograms.stream
            if stream is not None:
                encoded["stream"] = {
                    name: _encoded(getattr(stream, name)) for name in STREAM_HISTOGRAMS
                }
            return encoded

        endpoints = {
            label: pair(entry)
            | {"variants": {name: pair(variant) for name, variant in entry.variants.items()}}
            for label, entry in self.endpoints.items()
        }
        return json.dumps({"unit": HISTOGRAMS_UNIT, "endpoints": endpoints}, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> RunHistograms:
        """A histograms.json; any problem is one UsageError line naming the file and the part.
        A file from before stream histograms were kept loads without them."""
        data = read_json_object(path)
        if data.get("unit", HISTOGRAMS_UNIT) != HISTOGRAMS_UNIT:
            raise UsageError(f"{path}: unit {data.get('unit')!r}, expected {HISTOGRAMS_UNIT}")
        endpoints = data.get("endpoints")
        if not isinstance(endpoints, dict):
            raise UsageError(f"{path}: 'endpoints' is missing or not an object")
        loaded = {}
        for label, entry in endpoints.items():
            latency, service_time = _decoded_pair(path, label, entry)
            variants = entry.get("variants") or {}
            if not isinstance(variants, dict):
                raise UsageError(f"{path}: {label}: 'variants' is not an object")
            loaded[label] = EndpointHistograms(
                latency,
                service_time,
                {
                    name: HistogramPair(
                        *_decoded_pair(path, f"{label} variant {name}", value),
                        stream=_decoded_stream(path, f"{label} variant {name}", value),
                    )
                    for name, value in variants.items()
                },
                stream=_decoded_stream(path, label, entry),
            )
        return cls(loaded)


def _encoded(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")


def _decoded_pair(path: Path, where: str, entry: Any) -> tuple[HdrHistogram, HdrHistogram]:
    if not isinstance(entry, dict) or "latency" not in entry:
        raise UsageError(f"{path}: no latency histogram for {where!r}")
    return (
        _decoded(path, f"{where} latency", entry["latency"]),
        _decoded(path, f"{where} service_time", entry.get("service_time")),
    )


def _decoded_stream(path: Path, where: str, entry: dict[str, Any]) -> StreamHistograms | None:
    stream = entry.get("stream")
    if stream is None:
        return None
    if not isinstance(stream, dict):
        raise UsageError(f"{path}: {where}: 'stream' is not an object")
    return StreamHistograms(
        *(_decoded(path, f"{where} stream {name}", stream.get(name)) for name in STREAM_HISTOGRAMS)
    )


def _decoded(path: Path, where: str, encoded: Any) -> HdrHistogram:
    histogram = new_histogram()
    try:
        histogram.decode_and_add(encoded)
    except Exception:  # hdrh raises a zoo of types (binascii, zlib, its own, TypeError)
        raise UsageError(f"{path}: {where}: not a valid HdrHistogram encoding") from None
    return histogram
