"""Comparing endpoint versions (two runs, two endpoints or two variants) with a noise-aware verdict,
on latency or, for streaming runs, on time to first token, the gaps between tokens or the time
per output token.

A difference counts only when it is beyond noise twice over: the Mann-Whitney test says the
distributions differ (p < alpha) and a bootstrap CI of the percentile change excludes zero.
A limit such as p99=10% fails only when even the CI's optimistic end exceeds it, so a run
that is merely noisy never fails a gate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loadgen.capacity_text import change_line
from loadgen.errors import EXIT_FAILED, EXIT_OK, UsageError
from loadgen.histograms import PERCENTILES, RunHistograms, histogram_summary, new_histogram
from loadgen.scenario import CompareMetric
from loadgen.stats import Buckets, mann_whitney_buckets, ratio_ci
from loadgen.summary import (
    CapacityChange,
    CompareReport,
    ComparisonResult,
    Direction,
    EndpointSummary,
    ErrorRateChange,
    LimitResult,
    MetricChange,
    Pair,
    RankTest,
    ThroughputChange,
    is_step_label,
)
from loadgen.versions import (
    Side,
    Version,
    counted_by_name,
    load_side,
    profile_warnings,
    versions_of,
)

METRICS = ("p50", "p90", "p99", "p999", "max", "mean")
LIMIT_METRICS = ("p50", "p90", "p99", "p999", "mean")  # max has no CI: one sample decides it
VERDICT_METRICS = ("p50", "p99")
PERCENTILE_OF = dict(PERCENTILES)
CONFIDENCE = 0.95
RESAMPLES = 1000


# --- limits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """--max-regression p99=10%: the largest increase of `metric` a gate accepts."""

    metric: str
    max_increase: float  # 0.10 for 10%


_LIMIT = re.compile(r"\s*(p50|p90|p99|p999|p99\.9|mean)\s*=\s*(\d+(?:\.\d*)?)\s*%\s*", re.I)
_CAPACITY_LIMIT = re.compile(r"\s*capacity\s*=\s*(\d+(?:\.\d*)?)\s*%\s*", re.I)


def parse_limit(text: str) -> Limit:
    match = _LIMIT.fullmatch(text)
    if match is None:
        raise UsageError(
            f"--max-regression {text!r}: expected METRIC=PERCENT% with METRIC one of "
            f"{', '.join(LIMIT_METRICS)} (e.g. p99=10%), or capacity=PERCENT% (a drop)"
        )
    metric = match.group(1).lower().replace("p99.9", "p999")
    return Limit(metric, float(match.group(2)) / 100.0)


# --- the comparison -------------------------------------------------------------------------


def compare(
    base: Version,
    new: Version,
    limits: Sequence[Limit],
    *,
    metric: CompareMetric = CompareMetric.LATENCY,
    alpha: float = 0.01,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> ComparisonResult:
    """Percentile changes with bootstrap CIs, a Mann-Whitney test, the direction and the
    limits, of the versions' histograms: `metric` says what they hold."""
    for version in (base, new):
        if not version.latency.get_total_count():
            recorded = "latencies" if metric is CompareMetric.LATENCY else f"{metric} values"
            raise UsageError(f"cannot compare {version.name!r}: it has no recorded {recorded}")
    base_buckets, new_buckets = Buckets.of(base.latency), Buckets.of(new.latency)
    base_ms, new_ms = histogram_summary(base.latency), histogram_summary(new.latency)
    metrics: dict[str, MetricChange] = {}
    for key in METRICS:
        low: float | None = None
        high: float | None = None
        if key in LIMIT_METRICS:
            _, low, high = ratio_ci(
                base_buckets,
                new_buckets,
                PERCENTILE_OF.get(key),  # None: the mean
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            )
        change = new_ms[key] / base_ms[key] - 1.0 if base_ms[key] else 0.0
        metrics[key] = MetricChange(
            base_ms=base_ms[key], new_ms=new_ms[key], change=change, ci_low=low, ci_high=high
        )
    test = mann_whitney_buckets(base_buckets, new_buckets)
    direction = Direction.SAME
    if test.p_value < alpha:
        # a regression anywhere it is measured outranks an improvement elsewhere: gates are for that
        if any(_low(metrics[m]) > 0 for m in VERDICT_METRICS):
            direction = Direction.SLOWER
        elif any(_high(metrics[m]) < 0 for m in VERDICT_METRICS):
            direction = Direction.FASTER
    checks = tuple(
        LimitResult(
            metric=limit.metric,
            max_increase=limit.max_increase,
            change_low=_low(metrics[limit.metric]),
            failed=direction is Direction.SLOWER
            and _low(metrics[limit.metric]) > limit.max_increase,
        )
        for limit in limits
    )
    return ComparisonResult(
        base=base.name,
        new=new.name,
        metric=metric,
        requests=Pair(base=base.requests, new=new.requests),
        errors=Pair(base=base.errors, new=new.errors),
        direction=direction,
        alpha=alpha,
        confidence=confidence,
        mann_whitney=RankTest(**asdict(test)),
        metrics=metrics,
        limits=checks,
        throughput=ThroughputChange(base_rps=base.throughput_rps, new_rps=new.throughput_rps),
        error_rate=ErrorRateChange(base=base.error_rate, new=new.error_rate),
    )


def _low(change: MetricChange) -> float:
    assert change.ci_low is not None
    return change.ci_low


def _high(change: MetricChange) -> float:
    assert change.ci_high is not None
    return change.ci_high


def compare_within_run(
    histograms: RunHistograms,
    endpoints: Mapping[str, EndpointSummary],
    pairs: list[tuple[str, str]],
    limits: Sequence[Limit],
    *,
    metric: CompareMetric = CompareMetric.LATENCY,
    alpha: float = 0.01,
    seed: int = 0,
) -> list[ComparisonResult]:
    """Two endpoints or two variants of one run, from its in-memory histograms and
    summaries: (base name, new name) per pair, on `metric`. The run has happened: a side
    with nothing recorded (every stream failed, a variant that got no traffic) makes a
    comparison that says so (`missing`), never an error that would lose the run's results."""
    versions = versions_of(histograms, counted_by_name(endpoints), variants=True, metric=metric)
    results = []
    for base, new in pairs:
        base_version = versions.get(base) or Version(base, new_histogram(), 0, 0)
        new_version = versions.get(new) or Version(new, new_histogram(), 0, 0)
        missing = tuple(
            version.name
            for version in (base_version, new_version)
            if not version.latency.get_total_count()
        )
        if missing:
            results.append(_unmeasured(base_version, new_version, limits, metric, missing, alpha))
        else:
            results.append(
                compare(base_version, new_version, limits, metric=metric, alpha=alpha, seed=seed)
            )
    return results


def _unmeasured(
    base: Version,
    new: Version,
    limits: Sequence[Limit],
    metric: CompareMetric,
    missing: tuple[str, ...],
    alpha: float,
) -> ComparisonResult:
    """A comparison one side has no values for: no change to state, every limit unchecked."""
    return ComparisonResult(
        base=base.name,
        new=new.name,
        metric=metric,
        requests=Pair(base=base.requests, new=new.requests),
        errors=Pair(base=base.errors, new=new.errors),
        direction=Direction.SAME,
        alpha=alpha,
        confidence=CONFIDENCE,
        mann_whitney=RankTest(
            u=0.0,
            z=0.0,
            p_value=1.0,
            effect=0.5,
            n_base=base.latency.get_total_count(),
            n_new=new.latency.get_total_count(),
        ),
        metrics={},
        limits=tuple(
            LimitResult(
                metric=limit.metric, max_increase=limit.max_increase, change_low=None, failed=True
            )
            for limit in limits
        ),
        throughput=ThroughputChange(base_rps=base.throughput_rps, new_rps=new.throughput_rps),
        error_rate=ErrorRateChange(base=base.error_rate, new=new.error_rate),
        missing=missing,
    )


# --- output -----------------------------------------------------------------------------------


UNKNOWN = "n/a"  # a bare .hlog counts neither requests per second nor errors


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:+.1f}%"


def _rps(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:,.1f}"


def _share(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value * 100:.2f}%"


def _points(value: float | None) -> str:
    return "" if value is None else f"{value * 100:+.2f} pp"


def render_report(report: CompareReport, console: Console) -> None:
    """The two runs, how their load differed, then a table and a verdict per pair."""
    _line(console, f"[bold]{escape(report.title)}[/]", soft_wrap=True)
    for warning in report.warnings:
        _line(console, f"[yellow]warning: {escape(warning)}[/]", soft_wrap=True)
    if report.capacity is not None:
        colour = "red bold" if report.capacity.failed else "bold"
        _line(console, f"[{colour}]{escape(change_line(report.capacity))}[/]", soft_wrap=True)
    console.print()
    render_table(report.comparisons, console)


def render_table(comparisons: Sequence[ComparisonResult], console: Console) -> None:
    """Per pair: each percentile of the compared metric (latency, TTFT, ITL or TPOT): base |
    new | change | CI, requests per second and the error rate (informative: the verdict is
    the metric's), then the outcome and the limits."""
    for comparison in comparisons:
        failed_metrics = {limit.metric for limit in comparison.limits if limit.failed}
        level = f"{comparison.confidence:.0%} CI"
        title = f"{comparison.base} (base) vs {comparison.new} (new), {comparison.metric.label}"
        table = Table(title=escape(title))
        for header in ("metric", "base", "new", "change", level):
            table.add_column(header, justify="left" if header == "metric" else "right")
        for metric, change in comparison.metrics.items():
            interval = (
                ""
                if change.ci_low is None
                else f"{_percent(change.ci_low)} .. {_percent(change.ci_high)}"
            )
            table.add_row(
                f"{metric} ms",
                f"{change.base_ms:.3f}",
                f"{change.new_ms:.3f}",
                _percent(change.change),
                interval,
                style="red" if metric in failed_metrics else None,
            )
        table.add_section()
        rate, errors = comparison.throughput, comparison.error_rate
        table.add_row("req/s", _rps(rate.base_rps), _rps(rate.new_rps), _percent(rate.change), "")
        table.add_row(
            "error rate", _share(errors.base), _share(errors.new), _points(errors.difference), ""
        )
        console.print(table)
        _line(
            console,
            f"requests: base {comparison.requests.base} ({comparison.errors.base} errors), "
            f"new {comparison.requests.new} ({comparison.errors.new} errors)",
        )
        cis = escape(
            "; ".join(
                f"{m} {_percent(c.change)} [{_percent(c.ci_low)}, {_percent(c.ci_high)}]"
                for m in VERDICT_METRICS
                for c in (comparison.metrics[m],)
            )
        )
        test = comparison.mann_whitney
        _line(
            console,
            f"verdict: {outcome_markup(comparison)} (Mann-Whitney p={test.p_value:.3g}, "
            f"alpha {comparison.alpha:g}, P(new > base)={test.effect:.3f}; {cis}; {level})",
        )
        for limit in comparison.limits:
            bound = f"{limit.metric} <= {_percent(limit.max_increase)}"
            if limit.failed:
                _line(
                    console,
                    f"[red]limit {bound}: FAILED, increase of at least {_percent(limit.change_low)}[/]",
                )
            else:
                _line(console, f"[green]limit {bound}: passed[/]")
        console.print()


def outcome_markup(comparison: ComparisonResult) -> str:
    """The outcome in rich markup, coloured by pass (green) or fail (red)."""
    colour = "green" if comparison.passed else "red bold"
    return f"[{colour}]{comparison.outcome}[/]"


def _line(console: Console, text: str, *, soft_wrap: bool = False) -> None:
    """Markup for colour, but no guessing: rich's highlighter would recolour every number.
    `soft_wrap` for a line that must stay whole (a path), in a log as narrow as it may be."""
    console.print(text, highlight=False, soft_wrap=soft_wrap)


# --- the command ------------------------------------------------------------------------------


def compare_command(
    base: Path,
    new: Path,
    limits: list[str],
    *,
    endpoint: str | None,
    json_out: bool,
    base_endpoint: str | None = None,
    new_endpoint: str | None = None,
    metric: CompareMetric = CompareMetric.LATENCY,
) -> int:
    """`loadgen compare BASE NEW`: 0, or 1 when a limit failed; UsageError on bad input."""
    max_drop = None
    latency_limits = []
    for text in limits:
        if (match := _CAPACITY_LIMIT.fullmatch(text)) is not None:
            max_drop = float(match.group(1)) / 100.0
        else:
            latency_limits.append(text)
    parsed = [parse_limit(text) for text in latency_limits]
    choices = _choices(endpoint, base_endpoint, new_endpoint)
    base_side = load_side(base, variants=choices is not None, metric=metric)
    new_side = load_side(new, variants=choices is not None, metric=metric)
    pairs = _pairs(base_side, new_side, choices)
    report = CompareReport(
        base=base_side.ref,
        new=new_side.ref,
        warnings=profile_warnings(base_side.profile, new_side.profile),
        comparisons=tuple(compare(b, n, parsed, metric=metric) for b, n in pairs),
        capacity=capacity_change(base_side, new_side, max_drop),
    )
    if json_out:
        print(report.model_dump_json(indent=2))
    else:
        render_report(report, Console(highlight=False))
    return EXIT_OK if report.passed else EXIT_FAILED


def capacity_change(base: Side, new: Side, max_drop: float | None) -> CapacityChange | None:
    """Both runs' capacities when both searched for one; a limit asks that both did."""
    if base.capacity is None or new.capacity is None:
        if max_drop is not None:
            lacking = base if base.capacity is None else new
            raise UsageError(
                f"--max-regression capacity: {lacking.path} is not a capacity-search run "
                "(its summary.json has no capacity)"
            )
        return None
    return CapacityChange(
        base_rps=base.capacity.max_rate_rps, new_rps=new.capacity.max_rate_rps, max_drop=max_drop
    )


@dataclass(frozen=True)
class Choice:
    """The label asked for on one side, and the flag that asked (an error names it)."""

    label: str
    flag: str


def _choices(
    endpoint: str | None, base_endpoint: str | None, new_endpoint: str | None
) -> tuple[Choice, Choice] | None:
    """--endpoint: one label on both sides; --base-endpoint/--new-endpoint: one each, a side
    without its own flag taking the other's label. None: pair by label."""
    if endpoint is not None:
        if base_endpoint is not None or new_endpoint is not None:
            raise UsageError(
                "--endpoint: not with --base-endpoint/--new-endpoint "
                "(--endpoint L is --base-endpoint L --new-endpoint L)"
            )
        return Choice(endpoint, "--endpoint"), Choice(endpoint, "--endpoint")
    base_choice = None if base_endpoint is None else Choice(base_endpoint, "--base-endpoint")
    new_choice = None if new_endpoint is None else Choice(new_endpoint, "--new-endpoint")
    if base_choice is None or new_choice is None:
        given = base_choice or new_choice
        return None if given is None else (given, given)
    return base_choice, new_choice


def _pairs(
    base: Side, new: Side, choices: tuple[Choice, Choice] | None
) -> list[tuple[Version, Version]]:
    """The chosen labels; else the same label on both sides, and a side with a single version
    pairs with anything. A capacity search's steps (step-01@200rps) pair only when chosen."""
    if choices is not None:
        return [(_one(base, choices[0]), _one(new, choices[1]))]
    base_names = [name for name in base.versions if not is_step_label(name)]
    new_names = [name for name in new.versions if not is_step_label(name)]
    common = [name for name in base_names if name in new_names]
    if common:
        return [(base.versions[name], new.versions[name]) for name in common]
    if len(base_names) == 1 and len(new_names) == 1:
        return [(base.versions[base_names[0]], new.versions[new_names[0]])]
    raise UsageError(
        f"no endpoint label in both {base.path} ({', '.join(base_names)}) and "
        f"{new.path} ({', '.join(new_names)}); pick one with --endpoint, or one each "
        "with --base-endpoint and --new-endpoint"
    )


def _one(side: Side, choice: Choice) -> Version:
    """The chosen version on one side: by label, or a .hlog file's only version."""
    if side.path.suffix == ".hlog" and side.path.is_file():
        return next(iter(side.versions.values()))
    if choice.label not in side.versions:
        raise UsageError(
            f'{choice.flag}: no endpoint "{choice.label}" in {side.path} '
            f"(have: {', '.join(side.versions)})"
        )
    return side.versions[choice.label]
