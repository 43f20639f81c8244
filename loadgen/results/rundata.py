"""What the report draws: a run's summary, its per-second rows, its latency spectra and, for
a streaming run, the spectra of time to first token and of the gaps between tokens.

Made in memory at the end of a run (`RunData.of`), or read back from a run folder by
`loadgen report` (`load_run`): the same page either way.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from hdrh.histogram import HdrHistogram

from loadgen.errors import UsageError
from loadgen.histograms import HistogramPair, RunHistograms, recorded_buckets
from loadgen.results.writer import STREAM_FIELDS, TIMESERIES_FIELDS, TimeRow, Timeseries
from loadgen.summary import RunSummary, TrafficSummary

DASHES = ("6 4", "2 3", "10 3 2 3", "1 6")  # variants: the endpoint's colour, own dash
PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#b91c1c")


@dataclass(frozen=True, slots=True)
class Spectrum:
    name: str
    color: str
    points: list[tuple[float, float]]  # (-log10(1 - fraction), latency ms)
    dash: str = ""


@dataclass(frozen=True, slots=True)
class StreamSpectra:
    """A streaming run's token times as spectra: endpoints (and variants) that streamed."""

    ttft: list[Spectrum]
    itl: list[Spectrum]


@dataclass(frozen=True, slots=True)
class RunData:
    summary: RunSummary
    timeseries: Timeseries
    spectra: list[Spectrum]
    stream: StreamSpectra | None  # None: the run did not stream

    @classmethod
    def of(cls, summary: RunSummary, timeseries: Timeseries, histograms: RunHistograms) -> RunData:
        stream = None
        if streamed(summary):
            stream = StreamSpectra(
                _spectra(summary, histograms, _ttft), _spectra(summary, histograms, _itl)
            )
        return cls(summary, timeseries, _spectra(summary, histograms, _latency), stream)


def streamed(summary: RunSummary) -> bool:
    """The run made streaming calls: a stream ended well, or one broke with its own error."""
    total = summary.total
    return total.ttft_ms is not None or bool(total.stream_error_codes)


class TableRow(NamedTuple):
    """A row of the report's tables: an endpoint, a variant under it, or the total."""

    name: str
    stats: TrafficSummary
    variant: bool  # a variant's row, under its endpoint's
    only: str | None = None  # the one variant of an endpoint shown on one row with it
    total: bool = False  # all endpoints together


def table_rows(summary: RunSummary) -> list[TableRow]:
    """Each endpoint, its variants under it (one row says it all when a single variant had
    every request), then the total when there are several endpoints."""
    rows = []
    for label, stats in summary.endpoints.items():
        variants = stats.variants
        if len(variants) == 1 and next(iter(variants.values())).requests == stats.requests:
            rows.append(TableRow(label, stats, False, next(iter(variants))))
            continue
        rows.append(TableRow(label, stats, False))
        rows += [TableRow(f"↳ {name}", each, True) for name, each in variants.items()]
    if len(summary.endpoints) > 1:
        rows.append(TableRow("all endpoints", summary.total, False, total=True))
    return rows


def load_run(folder: Path) -> RunData:
    """A run folder's summary.json, timeseries.csv and histograms.json."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    summary = RunSummary.load(folder / "summary.json")
    timeseries = _read_timeseries(folder / "timeseries.csv")
    histograms = RunHistograms.load(folder / "histograms.json")
    missing = [label for label in summary.endpoints if label not in histograms.endpoints]
    if missing:
        raise UsageError(f"{folder / 'histograms.json'}: no latency histogram for {missing[0]!r}")
    return RunData.of(summary, timeseries, histograms)


def _read_timeseries(path: Path) -> Timeseries:
    rows: Timeseries = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            missing = set(TIMESERIES_FIELDS) - set(STREAM_FIELDS) - columns
            if missing:
                raise UsageError(f"{path}: missing columns {', '.join(sorted(missing))}")
            absent = {name: "0" for name in STREAM_FIELDS if name not in columns}  # older files
            for record in reader:
                record = absent | record
                try:
                    row = TimeRow(
                        int(record["second"]),
                        int(record["requests"]),
                        int(record["errors"]),
                        int(record["mismatched"]),
                        float(record["p50_ms"]),
                        float(record["p99_ms"]),
                        int(record["output_tokens"]),
                        float(record["ttft_p50_ms"]),
                        float(record["ttft_p99_ms"]),
                        float(record["itl_p50_ms"]),
                        float(record["itl_p99_ms"]),
                    )
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{path}: line {reader.line_num}: {exc}") from None
                rows.setdefault(record["endpoint"], []).append(row)
    except FileNotFoundError:
        raise UsageError(f"{path}: not found (is this a run folder?)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    return {label: sorted(series) for label, series in rows.items()}


def spectrum_points(histogram: HdrHistogram) -> list[tuple[float, float]]:
    """The percentile spectrum as steps: x = -log10(1 - fraction), y = latency in ms.

    The slowest request sits at "1 in N" (x = log10 N). Walks only non-empty buckets.
    """
    total = histogram.get_total_count()
    if not total:
        return []
    cap = math.log10(total) if total > 1 else 1.0

    def nines(seen: int) -> float:
        return cap if seen >= total else min(cap, -math.log10(1.0 - seen / total))

    points: list[tuple[float, float]] = []
    seen = 0
    for index, count in recorded_buckets(histogram):
        value = histogram.get_highest_equivalent_value(histogram.get_value_from_index(index))
        start = nines(seen)
        seen += count
        points += [(start, value / 1000.0), (nines(seen), value / 1000.0)]
    return points


def _latency(pair: HistogramPair) -> HdrHistogram:
    return pair.latency


def _ttft(pair: HistogramPair) -> HdrHistogram | None:
    return None if pair.stream is None else pair.stream.ttft


def _itl(pair: HistogramPair) -> HdrHistogram | None:
    return None if pair.stream is None else pair.stream.itl


def _spectra(
    summary: RunSummary,
    histograms: RunHistograms,
    pick: Callable[[HistogramPair], HdrHistogram | None],
) -> list[Spectrum]:
    """One line per endpoint, and one per variant where an endpoint has several, of the
    histogram `pick` finds there; none where it finds none (a variant that never streamed)."""
    spectra: list[Spectrum] = []
    for position, label in enumerate(summary.endpoints):
        color = PALETTE[position % len(PALETTE)]
        entry = histograms.endpoints[label]
        variants = entry.variants
        histogram = pick(entry)
        if histogram is not None:
            name = f"{label} ({next(iter(variants))})" if len(variants) == 1 else label
            spectra.append(Spectrum(name, color, spectrum_points(histogram)))
        if len(variants) > 1:  # one variant would draw the same line twice
            for number, (variant, pair) in enumerate(variants.items()):
                histogram = pick(pair)
                if histogram is None:
                    continue
                dash = DASHES[number % len(DASHES)]
                points = spectrum_points(histogram)
                spectra.append(Spectrum(f"{label} / {variant}", color, points, dash))
    return spectra
