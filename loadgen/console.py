"""What a person sees: the live status line during a run and the summary table after it."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from loadgen.metrics import Recorder, histogram_summary, new_histogram
from loadgen.scenario import Scenario


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


class LiveStatus:
    """elapsed / total, req/s, p50 / p99 of the last second, errors, mismatches; on a terminal only."""

    def __init__(self, scenario: Scenario, recorder: Recorder, enabled: bool = True) -> None:
        self._recorder = recorder
        self._total_s = scenario.load.duration
        self._console = stderr_console()
        self._live: Live | None = None
        self._cached_index = -1
        self._cached: tuple[int, dict[str, float]] = (0, histogram_summary(new_histogram()))
        if enabled and self._console.is_terminal:
            self._live = Live(Text(""), console=self._console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveStatus:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, value, tb)

    def _last_second(self) -> tuple[int, dict[str, float]]:
        """Requests and percentiles of the last closed second, computed once per second."""
        last = list(self._recorder.last_closed.values())
        index = last[0].index if last else -1
        if index != self._cached_index:
            merged = new_histogram()
            for interval in last:
                merged.add(interval.latency)
            self._cached = (sum(interval.requests for interval in last), histogram_summary(merged))
            self._cached_index = index
        return self._cached

    def line(self, elapsed_s: float) -> str:
        recorder = self._recorder
        rate, percentiles = self._last_second()
        errors = sum(e.stats.requests - e.stats.ok for e in recorder.endpoints.values())
        mismatched = sum(e.stats.correlation["mismatched"] for e in recorder.endpoints.values())
        requests = sum(e.stats.requests for e in recorder.endpoints.values())
        total = f"{self._total_s:.0f}s" if self._total_s else "?"
        return (
            f"{elapsed_s:5.1f}s / {total}  {rate:>7,} req/s  "
            f"p50 {percentiles['p50']:.1f} ms  p99 {percentiles['p99']:.1f} ms  "
            f"requests {requests:,}  errors {errors:,}  mismatches {mismatched:,}"
        )

    def update(self, elapsed_s: float) -> None:
        if self._live is not None:
            self._live.update(Text(self.line(elapsed_s)))


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_summary(summary: dict[str, Any], folder: Path, console: Console | None = None) -> None:
    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:  # logs and CI: do not squeeze the table into 80 columns
            console = Console(highlight=False, width=150)
    table = Table(
        title=f"{summary['scenario']}  run {summary['run_id']}  {summary['duration_s']:.1f}s"
    )
    columns = (
        "endpoint / variant",
        "requests",
        "errors",
        "req/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
    )
    for column in columns + ("matched", "mismatched", "missing", "late"):
        table.add_column(column, justify="left" if column.startswith("endpoint") else "right")

    def row(name: str, stats: dict[str, Any]) -> None:
        latency = stats["latency_ms"]
        correlation = stats["correlation"]
        table.add_row(
            name,
            f"{stats['requests']:,}",
            f"{stats['error_count']:,}",
            f"{stats['throughput_rps']:,.1f}",
            *(_ms(latency[key]) for key in ("p50", "p90", "p99", "p999", "max")),
            f"{correlation['matched']:,}",
            f"{correlation['mismatched']:,}",
            f"{correlation['missing']:,}",
            f"{stats['late_starts']:,}",
        )

    for label, stats in summary["endpoints"].items():
        row(label, stats)
        for variant, variant_stats in stats["variants"].items():
            row(f"  {variant}", variant_stats)
    console.print(table)
    console.print(
        "latency in ms from the intended start (coordinated-omission corrected); correlation counts successful calls"
    )
    for label, stats in summary["endpoints"].items():
        if stats["errors"]:
            codes = ", ".join(f"{code} {count:,}" for code, count in stats["errors"].items())
            console.print(f"errors {label}: {codes}")
    if summary.get("client_failure"):
        console.print(
            f"[red]client failure (a loadgen bug, please report): {summary['client_failure']}[/red]"
        )
    if not summary["complete"]:
        console.print(
            f"[yellow]run stopped early ({summary['stop_reason']}): results so far are written[/yellow]"
        )
    console.print(f"results: {folder}")
