"""Outputs for CI: junit.xml (a testcase per threshold and comparison) and summary.md."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from loadgen.capacity_text import capacity_lines
from loadgen.results.files import write_text_atomic
from loadgen.summary import CapacitySummary, RunSummary


def junit_xml(summary: RunSummary) -> str:
    """A "run completed" testcase, then one per threshold and per comparison: the suite fails
    exactly when the verdict does."""
    thresholds = summary.thresholds
    comparisons = summary.comparisons
    failures = (
        (not summary.complete)
        + sum(not t.passed for t in thresholds)
        + sum(not c.passed for c in comparisons)
    )
    duration = f"{summary.duration_s:.3f}"
    suite = ET.Element(
        "testsuite",
        name=f"loadgen {summary.scenario}",
        tests=str(1 + len(thresholds) + len(comparisons)),
        failures=str(failures),
        errors="0",
        time=duration,
        timestamp=summary.started_at.isoformat(),
    )
    run = ET.SubElement(
        suite, "testcase", classname="loadgen.run", name="run completed", time=duration
    )
    if not summary.complete:
        ET.SubElement(run, "failure", message=f"run stopped early: {summary.stop_text}")
    for threshold in thresholds:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"loadgen.thresholds.{threshold.endpoint}",
            name=threshold.name,
        )
        if not threshold.passed:
            message = threshold.failure()
            ET.SubElement(case, "failure", message=message).text = message
    for comparison in comparisons:
        case = ET.SubElement(suite, "testcase", classname="loadgen.compare", name=comparison.name)
        if not comparison.passed:
            message = comparison.failure()
            ET.SubElement(case, "failure", message=message).text = message
    if summary.warnings:  # they fail nothing, but a CI log reader should see them
        warnings = "\n".join(f"warning: {warning.message}" for warning in summary.warnings)
        ET.SubElement(suite, "system-out").text = warnings
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def summary_markdown(summary: RunSummary) -> str:
    """Fits a GitHub job summary: the verdict and its reasons first, then the numbers."""
    verdict = summary.verdict
    rate = ""
    if summary.target_rate_rps is not None:
        rate = f", {summary.achieved_rate_rps:,.1f} of {summary.target_rate_rps:,.1f} req/s"
    lines = [
        f"## loadgen: {summary.scenario} {'PASSED' if verdict.passed else 'FAILED'}",
        "",
        f"Run `{summary.run_id}` started {summary.started_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"{summary.duration_s:.1f} s, {summary.transport} transport, "
        f"{summary.load_config.executor}{rate}, {summary.placement}.",
    ]
    if not verdict.passed:
        lines += ["", f"**Failed** (exit code {verdict.exit_code}):", ""]
        lines += [f"- {reason}" for reason in verdict.reasons]
    if summary.warnings:
        lines += ["", "**Warnings:**", ""]
        lines += [f"- {warning.message}" for warning in summary.warnings]
    lines += [
        "",
        "| endpoint | requests | errors | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | mismatched | missing |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, stats in summary.endpoints.items():
        rows = [(label, stats)] + [
            (f"{label} ({variant})", variant_stats)
            for variant, variant_stats in stats.variants.items()
        ]
        for name, row in rows:
            latency = row.latency_ms
            lines.append(
                f"| {name} | {row.requests} | {row.error_count} | {row.throughput_rps:.1f} | "
                f"{latency.p50:.1f} | {latency.p90:.1f} | {latency.p99:.1f} | {latency.p999:.1f} | "
                f"{latency.max:.1f} | {row.correlation.mismatched} | {row.correlation.missing} |"
            )
    if summary.capacity is not None:
        lines += capacity_markdown(summary.capacity)
    if summary.thresholds:
        lines += ["", "### Thresholds", "", "| | threshold | observed |", "|---|---|---:|"]
        for threshold in summary.thresholds:
            mark = "pass" if threshold.passed else "**FAIL**"
            lines.append(f"| {mark} | `{threshold.name}` | {threshold.observed:g} |")
    if summary.comparisons:
        lines += ["", "### Comparisons", ""]
        for comparison in summary.comparisons:
            mark = "pass" if comparison.passed else "**FAIL**"
            p99 = comparison.metrics.get("p99")
            found = (
                comparison.why_missing().strip()
                if p99 is None
                else f"(p99 {p99.change:+.1%}, Mann-Whitney p = "
                f"{comparison.mann_whitney.p_value:.3g})"
            )
            lines.append(
                f"- {mark} **{comparison.new}** vs **{comparison.base}** on "
                f"{comparison.metric.label}: {comparison.outcome} {found}"
            )
            lines += [f"  - {limit.failure()}" for limit in comparison.limits if limit.failed]
    for label, stats in summary.endpoints.items():
        if stats.slowest:
            query = stats.slowest_query
            lines += [
                "",
                f"Slowest requests of {label}: CloudWatch Logs Insights on `{query.log_group}`:",
                "",
                f"    {query.query}",
            ]
    return "\n".join(lines) + "\n"


def capacity_markdown(capacity: CapacitySummary) -> list[str]:
    """The finding, then each step in the order run."""
    lines = ["", "### Capacity", ""] + [f"- {line}" for line in capacity_lines(capacity)]
    lines += [
        "",
        "| step | rate | achieved | p50 ms | p99 ms | errors | SLO |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for step in capacity.steps:
        verdict = "good" if step.good else "**bad**: " + "; ".join(step.failures)
        lines.append(
            f"| `{step.label}` | {step.rate:g} | {step.achieved_rps:.1f} | {step.p50_ms:.1f} | "
            f"{step.p99_ms:.1f} | {step.error_rate:.2%} | {verdict} |"
        )
    return lines


def write_ci_outputs(folder: Path, summary: RunSummary) -> None:
    write_text_atomic(folder / "junit.xml", junit_xml(summary))
    write_text_atomic(folder / "summary.md", summary_markdown(summary))
