"""One verdict, everywhere: for each way a run can end, every output agrees with the RunSummary.

Each test runs `loadgen run` as a user does, then holds the exit code, summary.json,
summary.md, junit.xml, report.html (its banner, comparison rows and numbers) and the
console's last line against the summary read back through RunSummary.load.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from rich.console import Console

from loadgen.console import print_summary
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError
from loadgen.results.svg import format_number
from loadgen.summary import (
    SCHEMA,
    ComparisonOutcome,
    RunSummary,
    StopReason,
    TrafficSummary,
    WarningCode,
)
from tests.servers import echo_response, scenario, serve, wait_until_running
from tests.test_cli import QUICKSTART, fake_env, loadgen, quickstart, write

AB_VARIANTS = QUICKSTART.parent / "ab-variants.yaml"


# --- reading the views back ----------------------------------------------------------------


class Rows(HTMLParser):
    """The text of every cell of every table row, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    parser = Rows()
    parser.feed(html)
    return parser.rows


def section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]


def assert_views_agree(folder: Path, exit_code: int, stdout: str) -> RunSummary:
    """Every output of the run in `folder` says what its RunSummary says."""
    summary = RunSummary.load(folder / "summary.json")
    verdict = summary.verdict
    assert exit_code == verdict.exit_code
    assert verdict.passed == (not verdict.reasons)

    # summary.json: the derived fields are there for jq, and agree
    raw = json.loads((folder / "summary.json").read_text())
    assert raw["schema"] == SCHEMA
    assert raw["passed"] is verdict.passed and raw["complete"] is summary.complete
    assert raw["verdict"] == verdict.model_dump(mode="json")
    assert raw["stop_reason"] == summary.stop_reason.value

    # the console's last line
    assert stdout.splitlines()[-1] == f"{verdict.headline}  results: {folder}"

    # summary.md: the verdict first, then every reason
    markdown = (folder / "summary.md").read_text()
    assert markdown.splitlines()[0] == (
        f"## loadgen: {summary.scenario} {'PASSED' if verdict.passed else 'FAILED'}"
    )
    for reason in verdict.reasons:
        assert f"- {reason}\n" in markdown

    # junit.xml: a testcase fails exactly where the summary has a failure
    suite = ET.parse(folder / "junit.xml").getroot()
    failed = [
        case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None
    ]
    expected = ["run completed"] if not summary.complete else []
    expected += [t.name for t in summary.thresholds if not t.passed]
    expected += [c.name for c in summary.comparisons if not c.passed]
    assert failed == expected
    assert int(suite.get("failures", "-1")) == len(expected)
    assert (len(expected) == 0) == verdict.passed

    # report.html: the banner, then the same numbers and comparison rows as the summary
    page = (folder / "report.html").read_text()
    banner = re.search(r'<div id="verdict" class="verdict (pass|fail)">(.*?)</div>', page)
    assert banner is not None and page.index(banner.group(0)) < page.index("<h1>")
    assert banner.group(1) == ("pass" if verdict.passed else "fail")
    shown = unescape(banner.group(2))
    assert ("PASSED" in shown) == verdict.passed
    for reason in verdict.reasons:
        assert f"<li>{reason}</li>" in shown
    assert_report_numbers(section(page, "stats"), summary)
    assert_report_comparisons(section(page, "comparisons"), summary)
    thresholds = table_rows(section(page, "thresholds"))[1:]
    assert [(row[0], row[-1]) for row in thresholds] == [
        (t.name, "pass" if t.passed else "fail") for t in summary.thresholds
    ]
    return summary


def assert_report_numbers(html: str, summary: RunSummary) -> None:
    rows = {row[0].split(" · ")[0]: row for row in table_rows(html)[1:]}

    def expect(name: str, stats: TrafficSummary) -> None:
        row = rows[name]
        latency = stats.latency_ms
        assert row[1] == format_number(stats.requests)
        assert row[2] == format_number(stats.throughput_rps)
        assert row[4:9] == [
            format_number(value, 2)
            for value in (latency.p50, latency.p90, latency.p99, latency.p999, latency.max)
        ]
        assert row[9] == format_number(latency.mean, 2)

    for label, stats in summary.endpoints.items():
        expect(label, stats)
    if len(summary.endpoints) > 1:
        expect("all endpoints", summary.total)


def assert_report_comparisons(html: str, summary: RunSummary) -> None:
    blocks = html.split("<div class='comparison'>")[1:]
    assert len(blocks) == len(summary.comparisons)
    for block, comparison in zip(blocks, summary.comparisons, strict=True):
        badge = "pass" if comparison.passed else "fail"
        assert f'<span class="badge {badge}">{comparison.outcome}</span>' in block
        if comparison.missing:  # nothing was compared: it says why, and has no table
            assert escape(comparison.why_missing()) in block and "<table" not in block
            continue
        assert f"p = {comparison.mann_whitney.p_value:.3g}" in block
        rows = table_rows(block)[1:]
        assert [row[0] for row in rows] == list(comparison.metrics)
        for row, change in zip(rows, comparison.metrics.values(), strict=True):
            interval = (
                "–"
                if change.ci_low is None or change.ci_high is None
                else f"{change.ci_low * 100:+.1f}% .. {change.ci_high * 100:+.1f}%"
            )
            assert row[1:] == [
                format_number(change.base_ms, 2),
                format_number(change.new_ms, 2),
                f"{change.change * 100:+.1f}%",
                interval,
            ]


# --- one test per way a run ends ------------------------------------------------------------


def test_a_run_that_passes(tmp_path: Path) -> None:
    result = loadgen("run", str(QUICKSTART), "--duration", "1s", "--out", str(tmp_path))
    (folder,) = tmp_path.iterdir()
    summary = assert_views_agree(folder, result.returncode, result.stdout)
    assert result.returncode == EXIT_OK and summary.passed
    assert summary.stop_reason is StopReason.COMPLETED and summary.thresholds


def test_a_run_whose_threshold_fails(tmp_path: Path) -> None:
    data = quickstart()
    data["thresholds"] = {"latency_ms": {"p50": 1}, "endpoints": {"churn-v1": {"error_rate": 0.5}}}
    path = write(tmp_path, data)
    result = loadgen("run", str(path), "--duration", "1s", "--out", str(tmp_path / "out"))
    (folder,) = (tmp_path / "out").iterdir()
    summary = assert_views_agree(folder, result.returncode, result.stdout)
    assert result.returncode == EXIT_FAILED and summary.complete and not summary.passed
    failed = [t.name for t in summary.thresholds if not t.passed]
    assert failed == ["churn-v1: latency_ms.p50 <= 1", "churn-v2/canary: latency_ms.p50 <= 1"]


def test_a_run_whose_in_run_comparison_fails(tmp_path: Path) -> None:
    result = loadgen("run", str(AB_VARIANTS), "--duration", "5s", "--out", str(tmp_path))
    (folder,) = tmp_path.iterdir()
    summary = assert_views_agree(folder, result.returncode, result.stdout)
    assert result.returncode == EXIT_FAILED and summary.complete
    (comparison,) = summary.comparisons
    assert comparison.outcome is ComparisonOutcome.SLOWER_OVER_LIMIT
    assert summary.verdict.reasons[0].startswith("churn/green vs churn/blue: slower, over limit")
    # the run drew its report from memory; `loadgen report` draws the same page from the files
    in_run = (folder / "report.html").read_bytes()
    assert loadgen("report", str(folder)).returncode == EXIT_OK
    assert (folder / "report.html").read_bytes() == in_run


def test_a_slower_comparison_within_its_limit_passes_everywhere(tmp_path: Path) -> None:
    data = yaml.safe_load(AB_VARIANTS.read_text())
    data["compare"][0]["max_regression"] = {"p50": "200%"}
    path = write(tmp_path, data)
    result = loadgen("run", str(path), "--duration", "5s", "--out", str(tmp_path / "out"))
    (folder,) = (tmp_path / "out").iterdir()
    summary = assert_views_agree(folder, result.returncode, result.stdout)
    (comparison,) = summary.comparisons
    assert comparison.outcome is ComparisonOutcome.SLOWER_WITHIN_LIMIT
    assert result.returncode == EXIT_OK and summary.passed


def test_a_run_interrupted_by_sigint(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", str(QUICKSTART), "--duration", "60s"]
        + ["--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fake_env(),
    )
    wait_until_running(tmp_path)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr
    (folder,) = tmp_path.iterdir()
    summary = assert_views_agree(folder, process.returncode, stdout)
    assert process.returncode == EXIT_INTERRUPTED
    assert summary.stop_reason is StopReason.SIGINT and not summary.passed
    assert all(t.passed for t in summary.thresholds)  # failed by the interruption alone
    assert summary.verdict.reasons == ("interrupted by SIGINT",)


# --- summary.json is read through the model -------------------------------------------------


def test_summary_json_round_trips_through_the_model(tmp_path: Path) -> None:
    result = loadgen("run", str(AB_VARIANTS), "--duration", "2s", "--out", str(tmp_path))
    assert result.returncode in (EXIT_OK, EXIT_FAILED), result.stderr
    (folder,) = tmp_path.iterdir()
    text = (folder / "summary.json").read_text()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.to_json() == text
    assert summary.comparisons and summary.thresholds  # the default mismatch_rate gate


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"run_id": "x", "endpoints": {}}', "not a loadgen-summary/1 file (no 'schema' field"),
        ('{"schema": "loadgen-summary/0"}', "schema 'loadgen-summary/0' is not supported"),
        ('{"schema": "k6-summary"}', "schema 'k6-summary' is not supported"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_an_old_or_foreign_summary_is_one_clear_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "summary.json"
    path.write_text(content)
    with pytest.raises(UsageError) as caught:
        RunSummary.load(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: ") and message in problem
    result = loadgen("report", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_a_damaged_summary_names_each_field(tmp_path: Path) -> None:
    result = loadgen("run", str(QUICKSTART), "--duration", "1s", "--out", str(tmp_path), "--quiet")
    assert result.returncode == EXIT_OK, result.stderr
    (folder,) = tmp_path.iterdir()
    data = json.loads((folder / "summary.json").read_text())
    del data["endpoints"]["churn-v1"]["requests"]
    data["stop_reason"] = "bored"
    (folder / "summary.json").write_text(json.dumps(data))
    with pytest.raises(UsageError) as caught:
        RunSummary.load(folder / "summary.json")
    problems = caught.value.problems
    assert any("stop_reason" in line for line in problems)
    assert any("endpoints.churn-v1.requests: Field required" in line for line in problems)
    assert all(line.startswith(f"{folder / 'summary.json'}: ") for line in problems)


async def test_a_run_held_back_by_max_in_flight_says_so_in_every_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 req/s through 2 slots to a 50 ms endpoint: at most 40 req/s go out, so starts
    fall behind and the run overruns. It still passes (it was not asked otherwise), but
    every view warns, naming load.max_in_flight and the cure."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return echo_response(request)

    async with serve(slow) as url:
        s = scenario(url, rate=100, duration="1s", max_in_flight=2, timeout="0.5s")
        result = await run_scenario(s, RunOptions(out=tmp_path, quiet=True))
    summary = RunSummary.load(result.folder / "summary.json")
    assert summary == result.summary and summary.passed and summary.target_rate_rps == 100
    codes = [warning.code for warning in summary.warnings]
    assert codes == [
        WarningCode.RATE_BELOW_TARGET,
        WarningCode.LATE_STARTS,
        WarningCode.MAX_IN_FLIGHT_FULL,
        WarningCode.OVERRUN,
    ]
    full = summary.warnings[2].message
    assert full.startswith("load.max_in_flight (2) was full for ")
    assert "Raise load.max_in_flight" in full and "or lower the rate" in full
    assert 1.0 < summary.max_in_flight_full_s <= summary.duration_s
    assert json.loads((result.folder / "summary.json").read_text())["warnings"] == [
        {"code": warning.code.value, "message": warning.message} for warning in summary.warnings
    ]
    markdown = (result.folder / "summary.md").read_text()
    suite = ET.parse(result.folder / "junit.xml").getroot()
    assert suite.get("failures") == "0"
    assert suite.findtext("system-out") == "\n".join(
        f"warning: {warning.message}" for warning in summary.warnings
    )
    page = (result.folder / "report.html").read_text()
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=400))
    for warning in summary.warnings:
        assert f"- {warning.message}" in markdown
        assert html.escape(warning.message) in page
        assert f"warning: {warning.message}" in out.getvalue()
    assert f", {summary.achieved_rate_rps:,.1f} of 100.0 req/s, 1 process." in markdown
    assert f"<b>{format_number(summary.achieved_rate_rps)}/s of 100.0</b>" in page
