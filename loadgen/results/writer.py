"""The results folder: summary.json, one .hlog per endpoint, timeseries.csv.

Intervals are streamed to disk as they close (memory stays flat); summary.json is written
atomically, so a killed process never leaves half of one.
"""

from __future__ import annotations

import csv
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from hdrh.log import HistogramLogWriter

from loadgen.histograms import percentiles_ms
from loadgen.metrics import Interval

HLOG_MS_RATIO = 1000.0  # values are microseconds; the log's max column is in milliseconds
TIMESERIES_FIELDS = ("second", "endpoint", "requests", "errors", "mismatched", "p50_ms", "p99_ms")


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


def write_json_atomic(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


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
        self._timeseries.writerow(
            (
                interval.index,
                interval.label,
                interval.requests,
                interval.errors,
                interval.mismatched,
                f"{p50_ms:.3f}",
                f"{p99_ms:.3f}",
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

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.folder / "summary.json"
        write_json_atomic(path, summary)
        return path

    def write_histograms(self, histograms: dict[str, Any]) -> Path:
        path = self.folder / "histograms.json"
        write_json_atomic(path, histograms)
        return path

    def close(self) -> None:
        for handle, _ in self._logs.values():
            handle.close()
        self._timeseries_handle.close()
