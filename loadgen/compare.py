"""Comparing endpoint versions (two runs, two endpoints or two variants) with a noise-aware verdict.

A difference counts only when it is beyond noise twice over: the Mann-Whitney test says the
distributions differ (p < alpha) and a bootstrap CI of the percentile change excludes zero.
A limit such as p99=10% fails only when even the CI's optimistic end exceeds it, so a run
that is merely noisy never fails a gate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loadgen.errors import EXIT_FAILED, EXIT_OK, UsageError
from loadgen.histograms import PERCENTILES, histogram_summary, new_histogram
from loadgen.results.rundata import read_json_object
from loadgen.results.writer import hlog_name
from loadgen.stats import Buckets, MannWhitney, mann_whitney_buckets, ratio_ci

METRICS = ("p50", "p90", "p99", "p999", "max", "mean")
LIMIT_METRICS = ("p50", "p90", "p99", "p999", "mean")  # max has no CI: one sample decides it
VERDICT_METRICS = ("p50", "p99")
PERCENTILE_OF = dict(PERCENTILES)
CONFIDENCE = 0.95
RESAMPLES = 1000


# --- versions: what is compared -------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One side of a comparison: an endpoint (or variant) of one run, or one .hlog file."""

    name: str
    latency: HdrHistogram
    service_time: HdrHistogram | None
    requests: int
    errors: int


def load_versions(path: Path) -> dict[str, Version]:
    """Endpoints of a run folder (or of its summary.json), or a .hlog file as one version."""
    return _load(path, variants=False)


def versions_in_run(folder: Path) -> dict[str, Version]:
    """Endpoints and their variants ("label/variant"), for comparing inside one run."""
    return _load(folder, variants=True)


def _load(path: Path, *, variants: bool) -> dict[str, Version]:
    if not path.exists():
        raise UsageError(f"{path}: no such run folder or file")
    if path.is_file() and path.suffix == ".hlog":
        return _hlog_file(path)
    if path.is_file() and path.name in ("summary.json", "histograms.json"):
        path = path.parent
    elif not path.is_dir():
        raise UsageError(f"{path}: expected a run folder, a summary.json or a .hlog file")
    summary = read_json_object(path / "summary.json") if (path / "summary.json").is_file() else {}
    counts = _counts(path / "summary.json", summary)
    if (path / "histograms.json").is_file():
        return _histograms_versions(path / "histograms.json", counts, variants=variants)
    hlogs = sorted(path.glob("*.hlog"))
    if not hlogs:
        raise UsageError(f"{path}: no histograms.json or .hlog files; not a loadgen run folder")
    label_of = {hlog_name(label): label for label in counts}
    versions = {}
    for hlog in hlogs:
        name = label_of.get(hlog.name, hlog.stem)
        requests, errors = counts.get(name, (None, 0))
        versions[name] = _hlog_version(hlog, name, requests=requests, errors=errors)
    return versions


def _hlog_file(path: Path) -> dict[str, Version]:
    """One .hlog: named by its endpoint's label when a summary.json beside it says which."""
    counts: dict[str, tuple[int | None, int]] = {}
    summary = path.parent / "summary.json"
    if summary.is_file():
        try:
            counts = _counts(summary, read_json_object(summary))
        except UsageError:
            pass  # the log alone is enough; only its name and error count are lost
    name = {hlog_name(label): label for label in counts}.get(path.name, path.stem)
    requests, errors = counts.get(name, (None, 0))
    return {name: _hlog_version(path, name, requests=requests, errors=errors)}


def _counts(path: Path, summary: dict[str, Any]) -> dict[str, tuple[int | None, int]]:
    """(requests, errors) per endpoint and "label/variant" from summary.json."""
    counts: dict[str, tuple[int | None, int]] = {}
    try:
        for label, endpoint in summary.get("endpoints", {}).items():
            counts[label] = _requests_errors(endpoint)
            for variant, stats in endpoint.get("variants", {}).items():
                counts[f"{label}/{variant}"] = _requests_errors(stats)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise _not_a(path, "summary.json", error) from None
    return counts


def _not_a(path: Path, kind: str, error: Exception) -> UsageError:
    detail = f"no {error} key" if isinstance(error, KeyError) else str(error)
    return UsageError(f"{path}: not a loadgen {kind} ({detail})")


def _requests_errors(stats: dict[str, Any]) -> tuple[int | None, int]:
    requests = int(stats["requests"])
    return requests, int(stats.get("error_count", requests - int(stats.get("ok", requests))))


def _histograms_versions(
    path: Path, counts: dict[str, tuple[int | None, int]], *, variants: bool
) -> dict[str, Version]:
    data = read_json_object(path)
    if data.get("unit", "microseconds") != "microseconds":
        raise UsageError(f"{path}: unit {data.get('unit')!r}, expected microseconds")
    versions: dict[str, Version] = {}
    try:
        for label, entry in data["endpoints"].items():
            versions[label] = _encoded_version(label, entry, counts)
            if variants:
                for variant, variant_entry in entry.get("variants", {}).items():
                    name = f"{label}/{variant}"
                    versions.setdefault(name, _encoded_version(name, variant_entry, counts))
    except Exception as error:  # hdrh raises many types (binascii, zlib, its own) on bad data
        raise _not_a(path, "histograms.json", error) from None
    return versions


def _encoded_version(
    name: str, entry: dict[str, Any], counts: dict[str, tuple[int | None, int]]
) -> Version:
    latency = _decoded(entry["latency"])
    service = _decoded(entry["service_time"]) if entry.get("service_time") else None
    requests, errors = counts.get(name, (None, 0))
    total = latency.get_total_count()
    return Version(name, latency, service, total if requests is None else requests, errors)


def _decoded(encoded: str) -> HdrHistogram:
    histogram = new_histogram()
    histogram.decode_and_add(encoded)
    return histogram


def _hlog_version(path: Path, name: str, *, requests: int | None, errors: int) -> Version:
    latency = new_histogram()
    intervals = 0
    try:
        reader = HistogramLogReader(str(path), new_histogram())
        try:
            while reader.add_next_interval_histogram(latency) is not None:
                intervals += 1
        finally:
            reader.input_file.close()  # hdrh never closes it
    except Exception as error:  # hdrh raises many types (binascii, zlib, its own) on bad data
        raise UsageError(f"{path}: not a readable HdrHistogram log ({error})") from None
    if not intervals:
        raise UsageError(f"{path}: no interval histograms; not an HdrHistogram log?")
    total = latency.get_total_count()
    return Version(name, latency, None, total if requests is None else requests, errors)


# --- limits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """--max-regression p99=10%: the largest increase of `metric` a gate accepts."""

    metric: str
    max_increase: float  # 0.10 for 10%


_LIMIT = re.compile(r"\s*(p50|p90|p99|p999|p99\.9|mean)\s*=\s*(\d+(?:\.\d*)?)\s*%\s*", re.I)


def parse_limit(text: str) -> Limit:
    match = _LIMIT.fullmatch(text)
    if match is None:
        raise UsageError(
            f"--max-regression {text!r}: expected METRIC=PERCENT% with METRIC one of "
            f"{', '.join(LIMIT_METRICS)} (e.g. p99=10%)"
        )
    metric = match.group(1).lower().replace("p99.9", "p999")
    return Limit(metric, float(match.group(2)) / 100.0)


# --- the comparison -------------------------------------------------------------------------


class Verdict(StrEnum):
    SLOWER = "slower"
    FASTER = "faster"
    SAME = "no significant difference"


@dataclass(frozen=True)
class Change:
    """One metric of both versions; `low`/`high` is the bootstrap CI of `change` (None for max)."""

    metric: str
    base_ms: float
    new_ms: float
    change: float  # new/base - 1
    low: float | None
    high: float | None


@dataclass(frozen=True)
class LimitCheck:
    limit: Limit
    low: float  # the CI's low end of the change: the least increase the data supports
    failed: bool


@dataclass(frozen=True)
class Comparison:
    base: str
    new: str
    base_requests: int
    new_requests: int
    base_errors: int
    new_errors: int
    changes: tuple[Change, ...]
    test: MannWhitney
    verdict: Verdict
    limits: tuple[LimitCheck, ...]
    alpha: float
    confidence: float

    @property
    def failed(self) -> bool:
        return any(check.failed for check in self.limits)

    def change(self, metric: str) -> Change:
        return next(change for change in self.changes if change.metric == metric)


def compare(
    base: Version,
    new: Version,
    limits: Sequence[Limit],
    *,
    alpha: float = 0.01,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> Comparison:
    """Percentile changes with bootstrap CIs, a Mann-Whitney test, the verdict and the limits."""
    for version in (base, new):
        if not version.latency.get_total_count():
            raise UsageError(f"cannot compare {version.name!r}: it has no recorded latencies")
    base_buckets, new_buckets = Buckets.of(base.latency), Buckets.of(new.latency)
    base_ms, new_ms = histogram_summary(base.latency), histogram_summary(new.latency)
    changes = []
    for metric in METRICS:
        low: float | None = None
        high: float | None = None
        if metric in LIMIT_METRICS:
            _, low, high = ratio_ci(
                base_buckets,
                new_buckets,
                PERCENTILE_OF.get(metric),  # None: the mean
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            )
        change = new_ms[metric] / base_ms[metric] - 1.0 if base_ms[metric] else 0.0
        changes.append(Change(metric, base_ms[metric], new_ms[metric], change, low, high))
    test = mann_whitney_buckets(base_buckets, new_buckets)
    by_metric = {change.metric: change for change in changes}
    verdict = Verdict.SAME
    if test.p_value < alpha:
        # a regression anywhere it is measured outranks an improvement elsewhere: gates are for that
        if any(_low(by_metric[m]) > 0 for m in VERDICT_METRICS):
            verdict = Verdict.SLOWER
        elif any(_high(by_metric[m]) < 0 for m in VERDICT_METRICS):
            verdict = Verdict.FASTER
    checks = tuple(
        LimitCheck(
            limit,
            _low(by_metric[limit.metric]),
            verdict is Verdict.SLOWER and _low(by_metric[limit.metric]) > limit.max_increase,
        )
        for limit in limits
    )
    return Comparison(
        base.name,
        new.name,
        base.requests,
        new.requests,
        base.errors,
        new.errors,
        tuple(changes),
        test,
        verdict,
        checks,
        alpha,
        confidence,
    )


def _low(change: Change) -> float:
    assert change.low is not None
    return change.low


def _high(change: Change) -> float:
    assert change.high is not None
    return change.high


def compare_within_run(
    folder: Path,
    pairs: list[tuple[str, str]],
    limits: Sequence[Limit],
    *,
    alpha: float = 0.01,
    seed: int = 0,
) -> list[Comparison]:
    """Two endpoints or two variants of one run: (base name, new name) per pair."""
    versions = versions_in_run(folder)
    return [
        compare(
            _pick(versions, base, folder),
            _pick(versions, new, folder),
            limits,
            alpha=alpha,
            seed=seed,
        )
        for base, new in pairs
    ]


def _pick(versions: dict[str, Version], name: str, where: Path) -> Version:
    if name not in versions:
        raise UsageError(f"{where}: no endpoint or variant {name!r} (has: {', '.join(versions)})")
    return versions[name]


def comparisons_failed(comparisons: Sequence[Comparison]) -> bool:
    return any(comparison.failed for comparison in comparisons)


# --- output -----------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:+.1f}%"


def render_table(comparisons: Sequence[Comparison], console: Console) -> None:
    """Per pair: each metric's base | new | change | CI, then the verdict and the limits."""
    for comparison in comparisons:
        failed_metrics = {check.limit.metric for check in comparison.limits if check.failed}
        level = f"{comparison.confidence:.0%} CI"
        table = Table(title=escape(f"{comparison.base} (base) vs {comparison.new} (new)"))
        for header in ("latency", "base ms", "new ms", "change", level):
            table.add_column(header, justify="left" if header == "latency" else "right")
        for change in comparison.changes:
            style = "red" if change.metric in failed_metrics else None
            interval = (
                "" if change.low is None else f"{_percent(change.low)} .. {_percent(change.high)}"
            )
            table.add_row(
                change.metric,
                f"{change.base_ms:.3f}",
                f"{change.new_ms:.3f}",
                _percent(change.change),
                interval,
                style=style,
            )
        console.print(table)
        _line(
            console,
            f"requests: base {comparison.base_requests} ({comparison.base_errors} errors), "
            f"new {comparison.new_requests} ({comparison.new_errors} errors)",
        )
        colour = {Verdict.SLOWER: "yellow", Verdict.FASTER: "green"}.get(comparison.verdict, "")
        verdict = f"[{colour}]{comparison.verdict}[/]" if colour else str(comparison.verdict)
        cis = "; ".join(
            f"{m} {_percent(c.change)} [{_percent(c.low)}, {_percent(c.high)}]"
            for m in VERDICT_METRICS
            for c in (comparison.change(m),)
        )
        cis = escape(cis)
        _line(
            console,
            f"verdict: {verdict} (Mann-Whitney p={comparison.test.p_value:.3g}, "
            f"alpha {comparison.alpha:g}, P(new > base)={comparison.test.effect:.3f}; "
            f"{cis}; {level})",
        )
        for check in comparison.limits:
            bound = f"{check.limit.metric} <= {_percent(check.limit.max_increase)}"
            if check.failed:
                _line(
                    console,
                    f"[red]limit {bound}: FAILED, increase of at least {_percent(check.low)}[/]",
                )
            else:
                _line(console, f"[green]limit {bound}: passed[/]")
        console.print()


def _line(console: Console, text: str) -> None:
    """Markup for colour, but no guessing: rich's highlighter would recolour every number."""
    console.print(text, highlight=False)


def to_json(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """The comparisons as plain data, for --json, summaries and junit."""
    return {
        "failed": comparisons_failed(comparisons),
        "comparisons": [
            {
                "base": c.base,
                "new": c.new,
                "verdict": str(c.verdict),
                "failed": c.failed,
                "requests": {"base": c.base_requests, "new": c.new_requests},
                "errors": {"base": c.base_errors, "new": c.new_errors},
                "alpha": c.alpha,
                "confidence": c.confidence,
                "mann_whitney": {
                    "u": c.test.u,
                    "z": c.test.z,
                    "p_value": c.test.p_value,
                    "effect": c.test.effect,
                },
                "metrics": {
                    change.metric: {
                        "base_ms": change.base_ms,
                        "new_ms": change.new_ms,
                        "change": change.change,
                        "ci_low": change.low,
                        "ci_high": change.high,
                    }
                    for change in c.changes
                },
                "limits": [
                    {
                        "metric": check.limit.metric,
                        "max_increase": check.limit.max_increase,
                        "change_low": check.low,
                        "failed": check.failed,
                    }
                    for check in c.limits
                ],
            }
            for c in comparisons
        ],
    }


# --- the command ------------------------------------------------------------------------------


def compare_command(
    base: Path, new: Path, limits: list[str], *, endpoint: str | None, json_out: bool
) -> int:
    """`loadgen compare BASE NEW`: 0, or 1 when a limit failed; UsageError on bad input."""
    parsed = [parse_limit(text) for text in limits]
    pairs = _pairs(base, new, endpoint)
    comparisons = [compare(b, n, parsed) for b, n in pairs]
    if json_out:
        print(json.dumps(to_json(comparisons), indent=2))
    else:
        render_table(comparisons, Console(highlight=False))
    return EXIT_FAILED if comparisons_failed(comparisons) else EXIT_OK


def _pairs(base: Path, new: Path, endpoint: str | None) -> list[tuple[Version, Version]]:
    """Same label on both sides; a side with a single version pairs with anything."""
    if endpoint is not None:
        return [(_one(base, endpoint), _one(new, endpoint))]
    base_versions, new_versions = load_versions(base), load_versions(new)
    common = [name for name in base_versions if name in new_versions]
    if common:
        return [(base_versions[name], new_versions[name]) for name in common]
    if len(base_versions) == 1 and len(new_versions) == 1:
        return [(next(iter(base_versions.values())), next(iter(new_versions.values())))]
    raise UsageError(
        f"no endpoint label in both {base} ({', '.join(base_versions)}) and "
        f"{new} ({', '.join(new_versions)}); pick one with --endpoint"
    )


def _one(path: Path, name: str) -> Version:
    """--endpoint's version on one side: by name, or a .hlog file's only version."""
    versions = versions_in_run(path)
    if path.suffix == ".hlog" and path.is_file():
        return next(iter(versions.values()))
    return _pick(versions, name, path)
