"""A run folder read back for the report: summary, per-second rows and decoded histograms."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from hdrh.histogram import HdrHistogram

from loadgen.errors import UsageError
from loadgen.histograms import recorded_buckets
from loadgen.results.writer import TIMESERIES_FIELDS

DASHES = ("6 4", "2 3", "10 3 2 3", "1 6")  # variants: the endpoint's colour, own dash
PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#b91c1c")


# --- the run folder ---------------------------------------------------------------------


class TimeRow(NamedTuple):
    second: int
    requests: int
    errors: int
    mismatched: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class Spectrum:
    name: str
    color: str
    points: list[tuple[float, float]]  # (-log10(1 - fraction), latency ms)
    dash: str = ""


@dataclass(frozen=True, slots=True)
class RunData:
    summary: dict[str, Any]
    timeseries: dict[str, list[TimeRow]]
    spectra: list[Spectrum]


def read_json_object(path: Path) -> dict[str, Any]:
    """A results file's JSON object; any problem is one UsageError line naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: not found (is this a run folder?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _check_summary(path: Path, summary: dict[str, Any]) -> None:
    endpoints = summary.get("endpoints")
    if not isinstance(endpoints, dict):
        raise UsageError(f"{path}: 'endpoints' is missing or not an object")
    for label, stats in endpoints.items():
        if not isinstance(stats, dict) or not isinstance(stats.get("latency_ms"), dict):
            raise UsageError(f"{path}: endpoints.{label}: 'latency_ms' is missing")
        if not isinstance(stats.get("requests"), int):
            raise UsageError(f"{path}: endpoints.{label}: 'requests' is missing")
    for key in ("thresholds", "comparisons"):
        if summary.get(key) is not None and not isinstance(summary[key], list):
            raise UsageError(f"{path}: '{key}' must be a list")


def _read_timeseries(path: Path) -> dict[str, list[TimeRow]]:
    rows: dict[str, list[TimeRow]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(TIMESERIES_FIELDS) - set(reader.fieldnames or ())
            if missing:
                raise UsageError(f"{path}: missing columns {', '.join(sorted(missing))}")
            for record in reader:
                try:
                    row = TimeRow(
                        int(record["second"]),
                        int(record["requests"]),
                        int(record["errors"]),
                        int(record["mismatched"]),
                        float(record["p50_ms"]),
                        float(record["p99_ms"]),
                    )
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{path}: line {reader.line_num}: {exc}") from None
                rows.setdefault(record["endpoint"], []).append(row)
    except FileNotFoundError:
        raise UsageError(f"{path}: not found (is this a run folder?)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    return {label: sorted(series) for label, series in rows.items()}


def _decode(path: Path, where: str, encoded: Any) -> HdrHistogram:
    try:
        return HdrHistogram.decode(encoded)
    except Exception:  # hdrh raises a zoo of types (binascii, zlib, its own, TypeError)
        raise UsageError(f"{path}: {where}: not a valid HdrHistogram encoding") from None


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


def load_run(folder: Path) -> RunData:
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    summary_path = folder / "summary.json"
    summary = read_json_object(summary_path)
    _check_summary(summary_path, summary)
    timeseries = _read_timeseries(folder / "timeseries.csv")
    histograms_path = folder / "histograms.json"
    histograms = read_json_object(histograms_path).get("endpoints")
    if not isinstance(histograms, dict):
        raise UsageError(f"{histograms_path}: 'endpoints' is missing or not an object")
    spectra: list[Spectrum] = []
    for position, label in enumerate(summary["endpoints"]):
        color = PALETTE[position % len(PALETTE)]
        entry = histograms.get(label)
        if not isinstance(entry, dict) or "latency" not in entry:
            raise UsageError(f"{histograms_path}: no latency histogram for {label!r}")
        variants = entry.get("variants") or {}
        name = f"{label} ({next(iter(variants))})" if len(variants) == 1 else label
        histogram = _decode(histograms_path, f"{label} latency", entry["latency"])
        spectra.append(Spectrum(name, color, spectrum_points(histogram)))
        if len(variants) > 1:  # one variant would draw the same line twice
            for number, (variant, pair) in enumerate(variants.items()):
                where = f"{label} variant {variant} latency"
                histogram = _decode(histograms_path, where, (pair or {}).get("latency"))
                points = spectrum_points(histogram)
                dash = DASHES[number % len(DASHES)]
                spectra.append(Spectrum(f"{label} / {variant}", color, points, dash))
    return RunData(summary, timeseries, spectra)
