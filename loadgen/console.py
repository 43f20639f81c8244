"""What a person sees: the live status line during a run and the summary table after it."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from loadgen.compare import outcome_markup
from loadgen.histograms import new_histogram, percentiles_ms
from loadgen.metrics import Interval
from loadgen.scenario import Scenario
from loadgen.summary import RunSummary, TrafficSummary


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


class LiveStatus:
    """elapsed / total, req/s, p50 / p99 of the last second, late starts and how late,
    errors, mismatches; on a terminal only.

    Fed closed one-second intervals (from one engine or merged from workers), so it shows
    the sum. Without a terminal it keeps counts only: a second's percentiles cost a scan.
    """

    def __init__(
        self,
        scenario: Scenario,
        labels: list[str],
        enabled: bool = True,
        console: Console | None = None,
    ) -> None:
        self._total_s = scenario.load.duration
        self._console = console or stderr_console()
        self._live: Live | None = None
        if enabled and self._console.is_terminal:
            self._live = Live(Text(""), console=self._console, refresh_per_second=4, transient=True)
        self.requests = self.errors = self.mismatched = 0
        self._second_index = -1
        self._second: list[Interval] = []
        self._last = LastSecond(0, 0.0, 0.0, 0, 0)

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

    def observe(self, interval: Interval) -> None:
        self.requests += interval.requests
        self.errors += interval.errors
        self.mismatched += interval.mismatched
        if self._live is None:
            return
        if interval.index != self._second_index:
            self._close_second()
            self._second_index = interval.index
        self._second.append(interval)

    def _close_second(self) -> None:
        """Percentiles once per second, not per refresh: look-ups scan the histogram."""
        second = self._second
        if not second:
            return
        merged = new_histogram()
        for interval in second:
            merged.add(interval.latency)
        p50_ms, p99_ms = percentiles_ms(merged, (50.0, 99.0))
        self._last = LastSecond(
            sum(interval.requests for interval in second),
            p50_ms,
            p99_ms,
            sum(interval.late for interval in second),
            max(interval.start_delay_max_us for interval in second),
        )
        self._second = []

    def line(self, elapsed_s: float) -> str:
        last = self._last
        total = f"{self._total_s:.0f}s" if self._total_s else "?"
        late = ""
        if last.late:
            late = (
                f"  late {last.late / last.requests:.0%} "
                f"(start delay up to {last.start_delay_max_us / 1000:,.1f} ms)"
            )
        return (
            f"{elapsed_s:5.1f}s / {total}  {last.requests:>7,} req/s  "
            f"p50 {last.p50_ms:.1f} ms  p99 {last.p99_ms:.1f} ms{late}  "
            f"requests {self.requests:,}  errors {self.errors:,}  mismatches {self.mismatched:,}"
        )

    def update(self, elapsed_s: float) -> None:
        if self._live is not None:
            self._live.update(Text(self.line(elapsed_s)))


class LastSecond(NamedTuple):
    requests: int
    p50_ms: float
    p99_ms: float
    late: int
    start_delay_max_us: int


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    """The tables after a run: endpoints and variants, thresholds and comparisons."""
    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:  # logs and CI: do not squeeze the table into 80 columns
            console = Console(highlight=False, width=150)
    table = Table(title=f"{summary.scenario}  run {summary.run_id}  {summary.duration_s:.1f}s")
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

    def row(name: str, stats: TrafficSummary) -> None:
        latency = stats.latency_ms
        correlation = stats.correlation
        table.add_row(
            name,
            f"{stats.requests:,}",
            f"{stats.error_count:,}",
            f"{stats.throughput_rps:,.1f}",
            *(
                _ms(value)
                for value in (latency.p50, latency.p90, latency.p99, latency.p999, latency.max)
            ),
            f"{correlation.matched:,}",
            f"{correlation.mismatched:,}",
            f"{correlation.missing:,}",
            f"{stats.late_starts:,}",
        )

    for label, stats in summary.endpoints.items():
        row(label, stats)
        for variant, variant_stats in stats.variants.items():
            row(f"  {variant}", variant_stats)
    console.print(table)
    console.print(
        "latency in ms from the intended start (coordinated-omission corrected); correlation counts successful calls"
    )
    for label, stats in summary.endpoints.items():
        if stats.errors:
            codes = ", ".join(f"{code} {count:,}" for code, count in stats.errors.items())
            console.print(f"errors {label}: {codes}")
    for label, stats in summary.endpoints.items():
        slowest = stats.slowest[:5]
        if slowest:
            listed = ", ".join(f"{s.trace_id} {_ms(s.latency_ms)} ms" for s in slowest)
            console.print(f"slowest {label}: {listed}")
            query = stats.slowest_query
            console.print(
                f"  find them: Logs Insights on {query.log_group}: {query.query}",
                soft_wrap=True,
            )
    if summary.thresholds:
        gate = Table(title="thresholds", title_justify="left")
        for column in ("", "endpoint", "threshold", "observed"):
            gate.add_column(column, justify="right" if column == "observed" else "left")
        for threshold in summary.thresholds:
            mark = "[green]pass[/green]" if threshold.passed else "[red bold]FAIL[/red bold]"
            bound = f"{threshold.metric} {threshold.comparator} {threshold.limit:g}"
            gate.add_row(mark, threshold.endpoint, bound, f"{threshold.observed:g}")
        console.print(gate)
    for comparison in summary.comparisons:
        changes = ", ".join(
            f"{key} {change.change:+.1%} [{change.ci_low:+.1%}, {change.ci_high:+.1%}]"
            for key in ("p50", "p99")
            for change in (comparison.metrics[key],)
            if change.ci_low is not None and change.ci_high is not None
        )
        p_value = comparison.mann_whitney.p_value
        console.print(
            f"compare {escape(comparison.name)}: {outcome_markup(comparison)} (p={p_value:.2g}); {changes}"
        )
        for limit in comparison.limits:
            if limit.failed:
                console.print(f"  [red bold]FAIL[/red bold] {limit.failure()}")
    if summary.client_failure:
        console.print(
            f"[red]client failure (a loadgen bug, please report): {summary.client_failure}[/red]"
        )
    for warning in summary.warnings:
        console.print(f"[yellow]warning: {escape(warning.message)}[/yellow]")
    if not summary.complete:
        console.print(
            f"[yellow]run stopped early ({escape(summary.stop_text)}): results so far are written[/yellow]"
        )


def print_verdict(summary: RunSummary, folder: Path, console: Console) -> None:
    """The run's last line, PASSED or FAILED and why, with the results folder: shown even
    with --quiet, so a CI log always ends with the verdict."""
    verdict = summary.verdict
    colour = "green" if verdict.passed else "red"
    console.print(
        f"[{colour} bold]{escape(verdict.headline)}[/{colour} bold]  results: {escape(str(folder))}",
        soft_wrap=True,
    )
