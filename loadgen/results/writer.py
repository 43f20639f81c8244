"""The results folder: summary.json, histograms.json, one .hlog per endpoint, timeseries.csv.

Intervals are streamed to disk as they close, and each second's row is also kept (a few
numbers per endpoint and second) for the report; summary.json and histograms.json are
written atomically, so a killed process never leaves half of one.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NamedTuple

from hdrh.log import HistogramLogWriter

from loadgen.histograms import RunHistograms, percentiles_ms
from loadgen.metrics import Interval
from loadgen.results.files import write_text_atomic
from loadgen.summary import RunSummary

HLOG_MS_RATIO = 1000.0  # values are microseconds; the log's max column is in milliseconds
TIMESERIES_FIELDS = (
    "second",
    "endpoint",
    "requests",
    "errors",
    "mismatched",
    "p50_ms",
    "p99_ms",
    "output_tokens",  # streams that ended well this second; 0 for other runs
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
)
STREAM_FIELDS = TIMESERIES_FIELDS[7:]  # 0 for a run that does not stream; absent in older files
Timeseries = dict[str, list["TimeRow"]]  # by endpoint label, in time order


class TimeRow(NamedTuple):
    """One second of one endpoint: a timeseries.csv row."""

    second: int
    requests: int
    errors: int
    mismatched: int
    p50_ms: float
    p99_ms: float
    output_tokens: int = 0
    ttft_p50_ms: float = 0.0
    ttft_p99_ms: float = 0.0
    itl_p50_ms: float = 0.0
    itl_p99_ms: float = 0.0


def run_folder(base: Path, scenario_name: str, started: datetime) -> Path:
    """A new folder `<name>-<UTC time>` under `base`; never an existing one."""
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = base / f"{scenario_name}-{stamp}"
    suffix = 1
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = base / f"{scenario_name}-{stamp}-{suffix}"


def hlog_name(label: str) -> str:
    """File name of an endpoint's log; "name/variant" labels become "name.variant"."""
    return label.replace("/", ".") + ".hlog"


class ResultsWriter:
    """Owns the open files of one run's folder."""

    def __init__(self, folder: Path, labels: list[str], started_epoch_s: float) -> None:
        self.folder = folder
        self.started_epoch_s = started_epoch_s
        self._logs: dict[str, tuple[IO[str], HistogramLogWriter]] = {}
        for label in labels:
            handle = (folder / hlog_name(label)).open("w", encoding="utf-8")
            log = HistogramLogWriter(handle)
            log.output_log_format_version()
            log.output_comment(f"[loadgen latency of {label}, values in microseconds]")
            # hdrh's own output_start_time is broken; the line format is the standard one
            stamp = datetime.fromtimestamp(started_epoch_s, UTC).isoformat(" ")
            handle.write(f"#[StartTime: {started_epoch_s:.3f} (seconds since epoch), {stamp}]\n")
            log.output_legend()
            self._logs[label] = (handle, log)
        self._timeseries_handle = (folder / "timeseries.csv").open(
            "w", encoding="utf-8", newline=""
        )
        self._timeseries = csv.writer(self._timeseries_handle)
        self._timeseries.writerow(TIMESERIES_FIELDS)
        self.timeseries: Timeseries = {label: [] for label in labels}
        self._last_flush = time.monotonic()

    def interval(self, interval: Interval) -> None:
        """The Recorder's sink: one closed second of one endpoint."""
        handle, log = self._logs[interval.label]
        histogram = interval.latency
        if histogram.get_total_count():
            log.output_interval_histogram(
                histogram,
                start_time_stamp_sec=float(interval.index),
                end_time_stamp_sec=float(interval.index + 1),
                max_value_unit_ratio=HLOG_MS_RATIO,
            )
        p50_ms, p99_ms = percentiles_ms(histogram, (50.0, 99.0))
        ttft_p50_ms, ttft_p99_ms = percentiles_ms(interval.ttft, (50.0, 99.0))
        itl_p50_ms, itl_p99_ms = percentiles_ms(interval.itl, (50.0, 99.0))
        row = TimeRow(
            interval.index,
            interval.requests,
            interval.errors,
            interval.mismatched,
            round(p50_ms, 3),  # as the CSV holds it: the report reads the same numbers
            round(p99_ms, 3),
            interval.output_tokens,
            round(ttft_p50_ms, 3),
            round(ttft_p99_ms, 3),
            round(itl_p50_ms, 3),
            round(itl_p99_ms, 3),
        )
        self.timeseries[interval.label].append(row)
        self._timeseries.writerow(
            (
                row.second,
                interval.label,
                row.requests,
                row.errors,
                row.mismatched,
                f"{row.p50_ms:.3f}",
                f"{row.p99_ms:.3f}",
                row.output_tokens,
                f"{row.ttft_p50_ms:.3f}",
                f"{row.ttft_p99_ms:.3f}",
                f"{row.itl_p50_ms:.3f}",
                f"{row.itl_p99_ms:.3f}",
            )
        )
        now = time.monotonic()
        if (
            now - self._last_flush >= 1.0
        ):  # readable while the run goes on, without a flush per line
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        for handle, _ in self._logs.values():
            handle.flush()
        self._timeseries_handle.flush()

    def write_summary(self, summary: RunSummary) -> Path:
        return write_text_atomic(self.folder / "summary.json", summary.to_json())

    def write_histograms(self, histograms: RunHistograms) -> Path:
        return write_text_atomic(self.folder / "histograms.json", histograms.to_json())

    def close(self) -> None:
        for handle, _ in self._logs.values():
            handle.close()
        self._timeseries_handle.close()
