"""Outputs for CI: junit.xml (a testcase per threshold and comparison) and summary.md."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def _atomic_text(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def junit_xml(summary: dict[str, Any]) -> str:
    thresholds = summary.get("thresholds", [])
    comparisons = summary.get("comparisons", [])
    cases = len(thresholds) + len(comparisons) + 1
    failures = sum(not t["passed"] for t in thresholds) + sum(
        bool(c["failed_limits"]) for c in comparisons
    )
    failures += 0 if summary["complete"] else 1
    suite = ET.Element(
        "testsuite",
        name=f"loadgen {summary['scenario']}",
        tests=str(cases),
        failures=str(failures),
        errors="0",
        time=f"{summary['duration_s']:.3f}",
        timestamp=summary["started_at"],
    )
    run = ET.SubElement(
        suite,
        "testcase",
        classname="loadgen.run",
        name="run completed",
        time=f"{summary['duration_s']:.3f}",
    )
    if not summary["complete"]:
        ET.SubElement(run, "failure", message=f"run stopped early: {summary['stop_reason']}")
    for threshold in thresholds:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"loadgen.thresholds.{threshold['endpoint']}",
            name=threshold["name"],
        )
        if not threshold["passed"]:
            message = (
                f"{threshold['metric']} observed {threshold['observed']:g}, "
                f"limit {threshold['comparator']} {threshold['limit']:g}"
            )
            ET.SubElement(case, "failure", message=message).text = message
    for comparison in comparisons:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="loadgen.compare",
            name=f"{comparison['new']} vs {comparison['base']}",
        )
        if comparison["failed_limits"]:
            message = f"{comparison['verdict']}: " + "; ".join(comparison["failed_limits"])
            ET.SubElement(case, "failure", message=message).text = message
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def summary_markdown(summary: dict[str, Any]) -> str:
    """Fits a GitHub job summary: verdict first, then the numbers."""
    thresholds = summary.get("thresholds", [])
    comparisons = summary.get("comparisons", [])
    passed = summary.get("passed", True)
    status = "passed" if passed and summary["complete"] else "FAILED"
    lines = [
        f"## loadgen: {summary['scenario']} {status}",
        "",
        f"Run `{summary['run_id']}` started {summary['started_at']}, {summary['duration_s']:.1f} s, "
        f"{summary['transport']} transport, {summary['load']['executor']}.",
    ]
    if not summary["complete"]:
        lines += ["", f"**Stopped early:** {summary['stop_reason']}"]
    lines += [
        "",
        "| endpoint | requests | errors | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | mismatched | missing |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, stats in summary["endpoints"].items():
        rows = [(label, stats)] + [
            (f"{label} ({variant})", v) for variant, v in stats["variants"].items()
        ]
        for name, row in rows:
            latency = row["latency_ms"]
            lines.append(
                f"| {name} | {row['requests']} | {row['error_count']} | {row['throughput_rps']:.1f} | "
                f"{latency['p50']:.1f} | {latency['p90']:.1f} | {latency['p99']:.1f} | {latency['p999']:.1f} | "
                f"{latency['max']:.1f} | {row['correlation']['mismatched']} | {row['correlation']['missing']} |"
            )
    if thresholds:
        lines += ["", "### Thresholds", "", "| | threshold | observed |", "|---|---|---:|"]
        for threshold in thresholds:
            mark = "pass" if threshold["passed"] else "**FAIL**"
            lines.append(f"| {mark} | `{threshold['name']}` | {threshold['observed']:g} |")
    if comparisons:
        lines += ["", "### Comparisons", ""]
        for comparison in comparisons:
            failed = comparison["failed_limits"]
            lines.append(
                f"- **{comparison['new']}** vs **{comparison['base']}**: {comparison['verdict']}"
                + (f" (FAIL: {'; '.join(failed)})" if failed else "")
            )
    return "\n".join(lines) + "\n"


def write_ci_outputs(folder: Path, summary: dict[str, Any]) -> None:
    _atomic_text(folder / "junit.xml", junit_xml(summary))
    _atomic_text(folder / "summary.md", summary_markdown(summary))
