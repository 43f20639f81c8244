"""report.html: content, escaping, offline-ness, errors, size, and a real render in Chromium."""

from __future__ import annotations

import csv
import io
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
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.errors import UsageError
from loadgen.histograms import new_histogram
from loadgen.metrics import Stats
from loadgen.results.report import render_report, write_report
from loadgen.results.rundata import TimeRow, spectrum_points
from loadgen.results.svg import CHART_IDS, MAX_POINTS, bucket_rows
from loadgen.results.writer import TIMESERIES_FIELDS
from loadgen.transport.base import Outcome
from tests import chromium
from tests.servers import echo_response, scenario, serve

EVIL = '<script>alert("x")</script><img src=x onerror=console.error("escaped-not")>'

THRESHOLDS = [
    {
        "name": "p99 under 250 ms",
        "endpoint": "churn-v1",
        "metric": "latency_ms.p99",
        "limit": 250,
        "observed": 84.99,
        "passed": True,
    },
    {
        "name": "error rate",
        "endpoint": None,
        "metric": "error_rate",
        "limit": 0.001,
        "observed": 0.004,
        "passed": False,
    },
]
COMPARISONS = [
    {
        "base": "churn-v1",
        "new": "churn-v2/canary",
        "rows": [
            {"metric": "p50", "base_ms": 23.8, "new_ms": 23.4, "change_pct": -1.7},
            {"metric": "p99", "base_ms": 85.0, "new_ms": 99.1, "change_pct": 16.6},
        ],
        "verdict": "slower",
        "p_value": 0.0021,
        "failed_limits": ["p99 change +16.6% > +10%"],
    }
]


def _stats(rng: random.Random, requests: int, errors: int, median_us: float) -> Stats:
    stats = Stats()
    for index in range(requests):
        latency = int(rng.lognormvariate(math.log(median_us), 0.6))
        outcome = Outcome(error="ModelError", original_status=500) if index < errors else Outcome()
        stats.record(outcome, None, latency, int(latency * 0.95), index % 7 == 0)
    return stats


def make_run(
    folder: Path,
    labels: tuple[str, ...] = ("churn-v1", "churn-v2/canary"),
    seconds: int = 10,
    requests: int = 2000,
    seed: int = 1,
    evil: str | None = None,
    **extra: Any,
) -> Path:
    """A run folder written by hand: the four files, from seeded histograms."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    endpoints: dict[str, Any] = {}
    histograms: dict[str, Any] = {}
    table = io.StringIO()
    rows = csv.writer(table)
    rows.writerow(TIMESERIES_FIELDS)
    total = Stats()
    for position, label in enumerate(labels):
        variants = {"AllTraffic": 0.6, "canary": 0.4} if position == 0 else {"AllTraffic": 1.0}
        if evil:
            variants = {evil: 1.0}
        parts = {
            name: _stats(rng, int(requests * share), position + 1, 20_000 + 5000 * index)
            for index, (name, share) in enumerate(variants.items())
        }
        whole = Stats()
        for part in parts.values():
            whole.merge(part)
        summary = whole.summary(seconds)
        summary["variants"] = {name: part.summary(seconds) for name, part in parts.items()}
        summary["slowest"] = [
            {
                "trace_id": evil or f"run1-{position:03d}-{index:012x}",
                "latency_ms": 200.0 - index,
                "variant": next(iter(variants)),
            }
            for index in range(20)
        ]
        if evil:
            summary["correlation"]["samples"] = [{"trace_id": evil, "sent": evil, "received": evil}]
        endpoints[label] = summary
        total.merge(whole)
        histograms[label] = {
            "latency": whole.latency.encode().decode("ascii"),
            "service_time": whole.service.encode().decode("ascii"),
            "variants": {
                name: {
                    "latency": part.latency.encode().decode("ascii"),
                    "service_time": part.service.encode().decode("ascii"),
                }
                for name, part in parts.items()
            },
        }
        for second in range(seconds + 1):
            p50 = 20 + 3 * math.sin(second / 9) + rng.random()
            count = 100 + rng.randrange(-5, 6) if second < seconds else 3
            errors = 1 if rng.random() < 0.05 else 0
            p99 = p50 * 3 + rng.random() * 20
            rows.writerow((second, label, count, errors, 0, f"{p50:.3f}", f"{p99:.3f}"))
    summary_doc: dict[str, Any] = {
        "run_id": "run1",
        "scenario": "quickstart",
        "started_at": "2026-11-28T21:00:18.982519Z",
        "duration_s": seconds + 0.02,
        "complete": True,
        "stop_reason": None,
        "transport": "fast",
        "load": {"executor": "constant-arrival-rate", "rate": 200.0, "max_in_flight": 256},
        "correlation_mode": "contains",
        "achieved_rate_rps": 200.1,
        "endpoints": endpoints,
        "total": total.summary(seconds),
        **extra,
    }
    (folder / "summary.json").write_text(json.dumps(summary_doc), encoding="utf-8")
    (folder / "histograms.json").write_text(
        json.dumps({"unit": "microseconds", "endpoints": histograms}), encoding="utf-8"
    )
    (folder / "timeseries.csv").write_text(table.getvalue(), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("full"), thresholds=THRESHOLDS, comparisons=COMPARISONS)


# --- content ------------------------------------------------------------------------------


def test_report_shows_every_chart_and_endpoint(full_run: Path) -> None:
    page = render_report(full_run)
    for chart_id in CHART_IDS:
        assert f'<svg id="{chart_id}"' in page
    for text in ("churn-v1", "churn-v2/canary", "canary", "AllTraffic", "quickstart", "run1"):
        assert text in page
    assert "2026-11-28 21:00:18 UTC" in page and "constant-arrival-rate" in page
    assert "complete" in page
    assert page.count('<path class="series"') >= 4 + 2 + 3  # latency, throughput, spectrum


def test_report_has_no_external_references(full_run: Path) -> None:
    page = render_report(full_run)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(//|[a-z]+:)""", page, re.IGNORECASE)
    assert page.count("<script") == 1  # the copy button's, inline


def test_data_from_the_run_is_escaped(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path, labels=(EVIL, "ok/" + EVIL), evil=EVIL))
    assert "<img" not in page
    assert page.count("<script") == 1
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_thresholds_and_comparisons_render_when_present(full_run: Path) -> None:
    page = render_report(full_run)
    assert "none configured" not in page
    assert "p99 under 250 ms" in page and "error_rate" in page
    assert page.count('class="badge pass">pass') == 1
    assert page.count('class="badge fail">fail') == 1
    assert "churn-v1</h3>" in page and "→ churn-v2/canary" in page
    assert "slower" in page and "p = 0.002" in page and "+16.6%" in page and "-1.7%" in page
    assert "p99 change +16.6% &gt; +10%" in page


def test_thresholds_and_comparisons_say_none_when_absent(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path))
    thresholds = page.split('<section id="thresholds">')[1].split("</section>")[0]
    comparisons = page.split('<section id="comparisons">')[1].split("</section>")[0]
    assert "none configured" in thresholds and "none configured" in comparisons


def test_stopped_early_shows_the_reason(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path, complete=False, stop_reason="SIGINT"))
    assert "stopped early: SIGINT" in page


def test_slowest_requests_and_logs_insights_query(full_run: Path) -> None:
    page = render_report(full_run)
    assert "/aws/sagemaker/Endpoints/churn-v1<" in page
    assert "/aws/sagemaker/Endpoints/churn-v2<" in page  # the name before the variant
    assert "run1-001-00000000000a" in page
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
    page = render_report(result.folder)
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
        (lambda f: (f / "summary.json").write_text("{}"), "summary.json: 'endpoints' is missing"),
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
        render_report(folder)
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


def test_a_ten_minute_four_endpoint_report_stays_small(tmp_path: Path) -> None:
    labels = ("a", "b/one", "c", "d/two")
    page = render_report(make_run(tmp_path, labels=labels, seconds=600, requests=4000))
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
        comparisons=COMPARISONS,
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
