"""report.html: content, escaping, offline-ness, errors, size, and a real render in Chromium."""

from __future__ import annotations

import json
import math
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from loadgen.api import logs_insights_query
from loadgen.compare import Version, compare, parse_limit
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.errors import UsageError
from loadgen.histograms import new_histogram
from loadgen.results.report import render_report, write_report
from loadgen.results.rundata import load_run, spectrum_points
from loadgen.results.svg import CHART_IDS, MAX_POINTS, bucket_rows
from loadgen.results.writer import TIMESERIES_FIELDS, TimeRow
from loadgen.summary import ComparisonResult, StopReason, ThresholdResult
from tests import chromium
from tests.servers import echo_response, scenario, serve
from tests.summaries import StreamShape, write_run
from tests.test_stats import histogram_of, lognormal_samples

EVIL = '<script>alert("x")</script><img src=x onerror=console.error("escaped-not")>'

THRESHOLDS = (
    ThresholdResult(
        endpoint="churn-v1",
        metric="latency_ms.p99",
        comparator="<=",
        limit=250,
        observed=84.99,
        passed=True,
    ),
    ThresholdResult(
        endpoint="churn-v2/canary",
        metric="error_rate",
        comparator="<=",
        limit=0.001,
        observed=0.004,
        passed=False,
    ),
)


def comparisons() -> tuple[ComparisonResult, ...]:
    """A 30% slower canary against its 10% limits: slower, over limit."""
    base = Version("churn-v1", histogram_of(lognormal_samples(0, 3000)), 3000, 1)
    new = Version("churn-v2/canary", histogram_of(lognormal_samples(1, 3000, 1.3)), 3000, 2)
    return (compare(base, new, [parse_limit("p99=10%"), parse_limit("p50=10%")]),)


def make_run(
    folder: Path,
    labels: tuple[str, ...] = ("churn-v1", "churn-v2/canary"),
    seconds: int = 10,
    requests: int = 2000,
    seed: int = 1,
    evil: str | None = None,
    **fields: Any,
) -> Path:
    """A run folder written by the run's own writers, from seeded latencies."""
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[int]]] = {}
    for position, label in enumerate(labels):
        shares = {"AllTraffic": 0.6, "canary": 0.4} if position == 0 else {"AllTraffic": 1.0}
        if evil:
            shares = {evil: 1.0}
        samples[label] = {
            name: [
                int(rng.lognormvariate(math.log(20_000 + 5000 * index), 0.6))
                for _ in range(int(requests * share))
            ]
            for index, (name, share) in enumerate(shares.items())
        }
    errors = {label: position + 1 for position, label in enumerate(labels)}
    write_run(folder, samples, errors=errors, seconds=seconds, trace_id=evil, **fields)
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(
        tmp_path_factory.mktemp("full"), thresholds=THRESHOLDS, comparisons=comparisons()
    )


def page_of(folder: Path) -> str:
    return render_report(load_run(folder))


# --- content ------------------------------------------------------------------------------


def test_report_shows_every_chart_and_endpoint(full_run: Path) -> None:
    page = page_of(full_run)
    for chart_id in CHART_IDS:
        assert f'<svg id="{chart_id}"' in page
    for text in ("churn-v1", "churn-v2/canary", "canary", "AllTraffic", "quickstart", "run1"):
        assert text in page
    assert "2026-11-28 21:00:18 UTC" in page and "constant-arrival-rate" in page
    assert "complete" in page
    assert page.count('<path class="series"') >= 4 + 2 + 3  # latency, throughput, spectrum


def test_report_has_no_external_references(full_run: Path) -> None:
    page = page_of(full_run)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(//|[a-z]+:)""", page, re.IGNORECASE)
    assert page.count("<script") == 1  # the copy button's, inline


def test_data_from_the_run_is_escaped(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path, labels=(EVIL, "ok/" + EVIL), evil=EVIL))
    assert "<img" not in page
    assert page.count("<script") == 1
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_thresholds_and_comparisons_render_when_present(full_run: Path) -> None:
    page = page_of(full_run)
    assert "none configured" not in page
    assert "churn-v1: latency_ms.p99 &lt;= 250" in page and "error_rate" in page
    assert page.count('class="badge pass">pass') == 1
    assert page.count('class="badge fail">fail') == 1
    assert "churn-v1 → churn-v2/canary</h3>" in page
    assert '<span class="badge fail">slower, over limit</span>' in page
    (comparison,) = comparisons()
    p50 = comparison.metrics["p50"]
    assert f"p = {comparison.mann_whitney.p_value:.3g}" in page
    assert f"{p50.change * 100:+.1f}%" in page
    assert f"{p50.ci_low * 100:+.1f}% .. {p50.ci_high * 100:+.1f}%" in page
    assert "p50 at least +" in page and "limit +10%" in page


def test_thresholds_and_comparisons_say_none_when_absent(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path))
    thresholds = page.split('<section id="thresholds">')[1].split("</section>")[0]
    comparisons = page.split('<section id="comparisons">')[1].split("</section>")[0]
    assert "none configured" in thresholds and "none configured" in comparisons


def test_stopped_early_shows_the_reason(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path, stop_reason=StopReason.SIGINT))
    assert "stopped early: interrupted by SIGINT" in page
    assert '<div id="verdict" class="verdict fail"><b>FAILED</b>' in page


def test_slowest_requests_and_logs_insights_query(full_run: Path) -> None:
    page = page_of(full_run)
    assert "/aws/sagemaker/Endpoints/churn-v1<" in page
    assert "/aws/sagemaker/Endpoints/churn-v2<" in page  # the name before the variant
    slowest = load_run(full_run).summary.endpoints["churn-v2/canary"].slowest
    assert len(slowest) == 20 and slowest[0].trace_id.startswith("run1-001-")
    assert f"<code>{slowest[0].trace_id}</code>" in page  # the slowest, listed first
    assert f"<code>{slowest[10].trace_id}</code>" not in page  # ten listed; the query has all
    assert slowest[19].trace_id in page
    query = logs_insights_query("churn-v1", ["a-1", "b/2"])
    assert query == {
        "log_group": "/aws/sagemaker/Endpoints/churn-v1",
        "query": r"fields @timestamp, @logStream, @message | filter @message like /a-1|b\/2/"
        " | sort @timestamp desc",
    }


async def test_report_of_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    async with serve(_echo) as url:
        options = RunOptions(out=tmp_path, quiet=True)
        result = await run_scenario(scenario(url, requests=30), options)
    page = page_of(result.folder)
    for chart_id in CHART_IDS:
        assert f'<svg id="{chart_id}"' in page
    assert ">ep<" in page and "no data" not in page


async def _echo(request: web.Request) -> web.Response:
    return echo_response(request)


# --- files and errors ---------------------------------------------------------------------


def test_write_report_is_atomic_and_returns_the_path(tmp_path: Path) -> None:
    folder = make_run(tmp_path / "run")
    path = write_report(folder)
    assert path == folder / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "summary.json").unlink(), "summary.json: not found"),
        (lambda f: (f / "summary.json").write_text("{oops"), "summary.json: not valid JSON"),
        (lambda f: (f / "summary.json").write_text("{}"), "summary.json: not a loadgen-summary/1"),
        (lambda f: (f / "timeseries.csv").unlink(), "timeseries.csv: not found"),
        (lambda f: (f / "timeseries.csv").write_text("a,b\n1,2\n"), "timeseries.csv: missing"),
        (
            lambda f: (f / "timeseries.csv").write_text(
                ",".join(TIMESERIES_FIELDS) + "\nx,ep,1,0,0,1.0,2.0\n"
            ),
            "timeseries.csv: line 2",
        ),
        (lambda f: (f / "histograms.json").unlink(), "histograms.json: not found"),
        (
            lambda f: (f / "histograms.json").write_text(
                json.dumps({"endpoints": {"churn-v1": {"latency": "nope"}}})
            ),
            "histograms.json: churn-v1 latency: not a valid HdrHistogram",
        ),
    ],
)
def test_missing_or_malformed_files_are_usage_errors(
    tmp_path: Path, damage: Any, message: str
) -> None:
    folder = make_run(tmp_path / "run")
    damage(folder)
    with pytest.raises(UsageError) as caught:
        page_of(folder)
    assert len(caught.value.problems) == 1
    assert str(caught.value).startswith(str(folder)) and message in str(caught.value)


def test_a_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        write_report(tmp_path / "nope")


# --- the numbers behind the charts --------------------------------------------------------


def test_spectrum_ends_at_the_slowest_request_as_one_in_n() -> None:
    histogram = new_histogram()
    for value in range(1000, 11000, 10):  # 1000 values
        histogram.record_value(value)
    points = spectrum_points(histogram)
    assert points[-1] == (pytest.approx(3.0), histogram.get_max_value() / 1000.0)
    assert points[0][0] == 0.0
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(points, points[1:], strict=False))
    assert spectrum_points(new_histogram()) == []


def test_long_runs_are_bucketed_and_keep_the_worst_p99() -> None:
    rows = [TimeRow(s, 100, 0, 0, 10.0, 500.0 if s == 377 else 30.0) for s in range(1200)]
    merged, width = bucket_rows(rows)
    assert len(merged) <= MAX_POINTS and width == 4
    assert max(row.p99_ms for row in merged) == 500.0
    assert all(row.requests == 100 and row.p50_ms == 10.0 for row in merged)


def test_timeseries_csv_reads_back_each_seconds_stream_columns(tmp_path: Path) -> None:
    """4 s of 40 ms streams of 8 tokens: TTFT 10 ms, 7 gaps of 30/7 ms, in every second."""
    run = write_run(tmp_path, {"llm": [40_000] * 400}, seconds=4, streams={"llm": StreamShape()})
    rows = run.timeseries["llm"]
    assert load_run(tmp_path).timeseries == run.timeseries
    assert [row.output_tokens for row in rows] == [800] * 4
    assert all(row.itl_p50_ms == row.itl_p99_ms == pytest.approx(4.285, abs=0.002) for row in rows)
    assert all(row.ttft_p50_ms == pytest.approx(10.0, abs=0.01) for row in rows)
    header = (tmp_path / "timeseries.csv").read_text().splitlines()[0]
    assert header.endswith(",output_tokens,ttft_p50_ms,ttft_p99_ms,itl_p50_ms,itl_p99_ms")


def test_a_timeseries_csv_from_before_the_stream_columns_still_loads(tmp_path: Path) -> None:
    run = write_run(tmp_path, {"ep": [20_000] * 100})
    path = tmp_path / "timeseries.csv"
    lines = path.read_text().splitlines()
    path.write_text("".join(",".join(line.split(",")[:7]) + "\n" for line in lines))
    assert load_run(tmp_path).timeseries == run.timeseries
    assert all(row[6:] == (0, 0.0, 0.0, 0.0, 0.0) for row in run.timeseries["ep"])


def test_a_ten_minute_four_endpoint_report_stays_small(tmp_path: Path) -> None:
    labels = ("a", "b/one", "c", "d/two")
    page = page_of(make_run(tmp_path, labels=labels, seconds=600, requests=4000))
    assert len(page.encode()) < 300_000


# --- Chromium -----------------------------------------------------------------------------

CHART_PROBE = """
JSON.stringify(%s.map(function (id) {
  var svg = document.getElementById(id);
  if (!svg) return {id: id, svg: false};
  var box = svg.getBoundingClientRect();
  var lines = Array.from(svg.querySelectorAll("path.series, polyline")).filter(function (el) {
    var d = el.getAttribute("d") || el.getAttribute("points") || "";
    return (d.match(/[0-9.]+[ ,][0-9.]+/g) || []).length >= 2 && el.getTotalLength() > 0;
  });
  return {id: id, svg: true, width: box.width, height: box.height, lines: lines.length};
}))
"""


async def test_report_renders_in_chromium_without_errors(tmp_path: Path) -> None:
    if os.environ.get("LOADGEN_SKIP_BROWSER") == "1":
        pytest.skip("LOADGEN_SKIP_BROWSER=1")
    if chromium.find_chromium() is None:
        pytest.fail(f"Chromium not found: {chromium.INSTALL_HINT}")
    folder = make_run(
        tmp_path / "run",
        labels=("churn-v1", "churn-v2/canary", EVIL),
        thresholds=THRESHOLDS,
        comparisons=comparisons(),
    )
    page = write_report(folder)
    probe = CHART_PROBE % json.dumps(list(CHART_IDS))
    result = await chromium.render(page, evaluate=probe, timeout_s=20)
    assert result.errors == []
    assert result.external_requests == []
    charts = json.loads(result.value)
    for chart in charts:
        assert chart["svg"], chart
        assert chart["width"] > 300 and chart["height"] > 100, chart
        assert chart["lines"] >= 3, chart
