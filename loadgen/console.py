"""What a person sees: the live status line during a run and the summary table after it."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from loadgen.capacity_text import capacity_lines
from loadgen.compare import outcome_markup
from loadgen.engine.core import Progress
from loadgen.engine.schedule import due_by, rate_at
from loadgen.histograms import new_histogram, percentiles_ms
from loadgen.metrics import Interval
from loadgen.scenario import ConstantArrivalRate, LoadConfig, RampingArrivalRate, Scenario
from loadgen.summary import RunSummary
from loadgen.table import LEGEND, TABLE_WIDTH, ms_text, rate_text, slowest_line, summary_table

PROGRESS_EVERY_S = 10.0  # stderr not a terminal (CI logs): a plain progress line this often
RATE_WINDOW_S = 2.0  # the achieved rate spans about this much of the latest progress


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


class LiveStatus:
    """Where the run stands, on stderr: on a terminal a live line, refreshed each tick;
    otherwise (a CI log) the same line as plain text every `progress_every_s`.

    Fed closed one-second intervals (from one engine or merged from workers) and, each tick,
    the engines' progress. The last second's percentiles are computed only when shown, at
    most once a second: a look-up scans the histogram. Disabled, it keeps counts only.
    """

    def __init__(
        self,
        scenario: Scenario,
        labels: list[str],
        enabled: bool = True,
        console: Console | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        self._load = scenario.load
        self._streams = scenario.request.stream  # TTFT and tokens/s in the line
        self._labels = len(labels)
        self._console = console or stderr_console()
        self._live: Live | None = None
        self._plain_every_s: float | None = None  # the plain line's period, when it is shown
        if enabled and self._console.is_terminal:
            self._live = Live(Text(""), console=self._console, refresh_per_second=4, transient=True)
        elif enabled:
            self._plain_every_s = progress_every_s
        self._next_plain_s = progress_every_s
        self.requests = self.errors = self.mismatched = 0
        # the second being reported, the last complete one, and its figures once computed
        self._second_index = -1
        self._second: list[Interval] = []
        self._closed: list[Interval] = []
        self._last: LastSecond | None = None
        # progress: the latest, and the readings the achieved rate is measured over
        self._progress = Progress(0, 0, 0.0)
        self._readings: deque[Progress] = deque([self._progress])

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

    @property
    def _shown(self) -> bool:
        return self._live is not None or self._plain_every_s is not None

    def observe(self, interval: Interval) -> None:
        self.requests += interval.requests
        self.errors += interval.errors
        self.mismatched += interval.mismatched
        if not self._shown:
            return
        if interval.index != self._second_index:
            self._close_second()
            self._second_index = interval.index
        self._second.append(interval)
        if len(self._second) >= self._labels:  # every endpoint's part of it is in
            self._close_second()

    def _close_second(self) -> None:
        if self._second:
            self._closed, self._second, self._last = self._second, [], None

    def _last_second(self) -> LastSecond:
        if self._last is None:
            self._last = LastSecond.of(self._closed)
        return self._last

    def update(self, progress: Progress, elapsed_s: float | None = None) -> None:
        """A tick: the engines' progress, and the time now when later than its reading
        (workers' progress arrives with their own ticks)."""
        elapsed = progress.at_s if elapsed_s is None else elapsed_s
        self._progress = progress
        readings = self._readings
        if progress.at_s > readings[-1].at_s:
            readings.append(progress)
            while len(readings) > 2 and progress.at_s - readings[1].at_s >= RATE_WINDOW_S:
                readings.popleft()
        if self._live is not None:
            self._live.update(Text(self.line(elapsed)))
        elif self._plain_every_s is not None and elapsed >= self._next_plain_s:
            self._console.print(Text(self.line(elapsed)), soft_wrap=True)
            every = self._plain_every_s
            self._next_plain_s = (elapsed // every + 1) * every

    def rates(self) -> tuple[float, float | None]:
        """Requests sent per second over the latest readings, and what the schedule wanted
        over the same span (None: a closed loop has no schedule)."""
        first, last = self._readings[0], self._readings[-1]
        span = last.at_s - first.at_s
        achieved = (last.sent - first.sent) / span if span > 0 else 0.0
        return achieved, target_rate(self._load, first.at_s, last.at_s)

    def line(self, elapsed_s: float) -> str:
        load, progress, last = self._load, self._progress, self._last_second()
        parts = [f"{elapsed_s:5.1f}s" + (f" / {load.duration:g}s" if load.duration else "")]
        if load.requests is not None:
            parts.append(f"{progress.sent:,} / {load.requests:,} sent")
        achieved, target = self.rates()
        if target is None:
            parts.append(f"{rate_text(achieved)} req/s")
        else:
            parts.append(f"{rate_text(achieved)} of {rate_text(target)} req/s")
        parts.append(f"in flight {progress.in_flight:,}")
        if last.requests:  # none before the first second closes, or in a stalled one
            parts.append(f"p50 {ms_text(last.p50_ms)} ms  p99 {ms_text(last.p99_ms)} ms")
        else:
            parts.append("p50 - p99 - ms")
        if self._streams and last.requests:
            parts.append(
                f"TTFT p50 {ms_text(last.ttft_p50_ms)} ms  p99 {ms_text(last.ttft_p99_ms)} ms  "
                f"{rate_text(last.output_tokens)} tokens/s"
            )
        if last.late:
            parts.append(
                f"late {_share(last.late / last.requests)} "
                f"(start delay up to {ms_text(last.start_delay_max_us / 1000)} ms)"
            )
        parts.append(f"errors {self.errors:,}  mismatches {self.mismatched:,}")
        return "  ".join(parts)


def target_rate(load: LoadConfig, from_s: float, to_s: float) -> float | None:
    """The rate an open loop's schedule wants from `from_s` to `to_s` seconds in (at
    `from_s` when they are equal); None for a closed loop, which has no schedule."""
    if isinstance(load, ConstantArrivalRate):
        return load.rate
    if isinstance(load, RampingArrivalRate):
        stages = [(stage.duration, stage.target) for stage in load.stages]
        if to_s <= from_s:
            return rate_at(load.start_rate, stages, from_s)
        due = due_by(load.start_rate, stages, to_s) - due_by(load.start_rate, stages, from_s)
        return due / (to_s - from_s)
    return None


class LastSecond(NamedTuple):
    requests: int
    p50_ms: float
    p99_ms: float
    late: int
    start_delay_max_us: int
    output_tokens: int = 0  # streams that ended well in the second
    ttft_p50_ms: float = 0.0
    ttft_p99_ms: float = 0.0

    @classmethod
    def of(cls, second: list[Interval]) -> LastSecond:
        """One second's figures from its intervals (one per endpoint)."""
        if not second:
            return cls(0, 0.0, 0.0, 0, 0)
        merged = new_histogram()
        ttft = new_histogram()
        for interval in second:
            merged.add(interval.latency)
            if interval.ttft.get_total_count():
                ttft.add(interval.ttft)
        p50_ms, p99_ms = percentiles_ms(merged, (50.0, 99.0))
        ttft_p50_ms, ttft_p99_ms = percentiles_ms(ttft, (50.0, 99.0))
        return cls(
            sum(interval.requests for interval in second),
            p50_ms,
            p99_ms,
            sum(interval.late for interval in second),
            max(interval.start_delay_max_us for interval in second),
            sum(interval.output_tokens for interval in second),
            ttft_p50_ms,
            ttft_p99_ms,
        )


def _share(value: float) -> str:
    return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def print_summary(
    summary: RunSummary, console: Console | None = None, verbose: bool = False
) -> None:
    """After a run: the endpoints' table (TABLE_WIDTH columns), errors, the slowest trace
    IDs, thresholds and comparisons. `verbose` adds the Logs Insights query that finds the
    slowest requests (summary.md and the report always have it)."""
    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:  # logs and CI: the same width whatever COLUMNS says
            console = Console(highlight=False, width=TABLE_WIDTH)
    console.print(
        escape(
            f"{summary.scenario}  run {summary.run_id}  {summary.duration_s:.1f}s  "
            f"region {summary.region}  {summary.placement}"
        ),
        soft_wrap=True,
    )
    table, keyed = summary_table(summary)
    console.print(table)
    for line in keyed:
        console.print(escape(line), soft_wrap=True)
    for line in LEGEND:
        console.print(line)
    if summary.capacity is not None:
        for line in capacity_lines(summary.capacity):
            console.print(escape(line), soft_wrap=True)
    for label, stats in summary.endpoints.items():
        if stats.errors:
            codes = ", ".join(f"{code} {count:,}" for code, count in stats.errors.items())
            console.print(escape(f"errors {label}: {codes}"))
    for label, stats in summary.endpoints.items():
        slowest = slowest_line(label, stats)
        if slowest is None:
            continue
        console.print(escape(slowest), soft_wrap=True)
        if verbose:
            query = stats.slowest_query
            console.print(escape(f"  Logs Insights on {query.log_group}:"), soft_wrap=True)
            console.print(escape(f"  {query.query}"), soft_wrap=True)
    if not verbose and any(stats.slowest for stats in summary.endpoints.values()):
        console.print("  full IDs and a Logs Insights query: summary.md, report.html, --verbose")
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
        if comparison.missing:
            console.print(  # one line, whatever the width: a log is searched for it
                f"compare {escape(comparison.name)}: {outcome_markup(comparison)}"
                f"{escape(comparison.why_missing())}",
                soft_wrap=True,
            )
        else:
            changes = f"{comparison.metric.label} " + ", ".join(
                f"{key} {change.change:+.1%} [{change.ci_low:+.1%}, {change.ci_high:+.1%}]"
                for key in ("p50", "p99")
                for change in (comparison.metrics[key],)
                if change.ci_low is not None and change.ci_high is not None
            )
            p_value = comparison.mann_whitney.p_value
            console.print(
                f"compare {escape(comparison.name)}: {outcome_markup(comparison)} "
                f"(p={p_value:.2g}); {changes}"
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
