"""report.html's Streaming section: there for a streaming run and only then, its numbers those
of the RunSummary, its lines those of the timeseries rows and the stream histograms, the
same page in memory and from the files, and a clean render in Chromium."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.results.report import render_report, write_report
from loadgen.results.rundata import load_run, table_rows
from loadgen.results.svg import CHART_IDS, STREAM_CHART_IDS, bucket_rows, format_number
from loadgen.results.writer import TimeRow
from loadgen.stream_metrics import Goodput
from loadgen.summary import RunSummary
from tests import chromium
from tests.summaries import StreamShape
from tests.test_report import CHART_PROBE, make_run
from tests.test_streaming import stream_mock, streaming
from tests.test_verdict import section
from tests.test_verdict import table_rows as html_rows

# churn-v1 has two variants, AllTraffic and canary; churn-v2/canary one
STREAMS = {
    "churn-v1": StreamShape(tokens=8, ttft_share=0.25),
    "churn-v2/canary": StreamShape(tokens=4, ttft_share=0.5),
}


def page_of(folder: Path) -> str:
    return render_report(load_run(folder))


def assert_stream_numbers(page: str, summary: RunSummary, goodput: bool) -> None:
    """Each row of the Streaming table says what the summary says, in the endpoints' table's
    rows: endpoint, its variants, the total."""
    rows = html_rows(section(page, "streaming"))
    header, body = rows[0], rows[1:]
    assert ("goodput" in header) is goodput
    expected = table_rows(summary)
    assert len(body) == len(expected)
    for shown, row in zip(body, expected, strict=True):
        stats = row.stats
        times = []
        for measured in (stats.ttft_ms, stats.itl_ms, stats.tpot_ms):
            for key in ("p50", "p90", "p99"):
                times.append(format_number(None if measured is None else getattr(measured, key), 2))
        assert shown[0].split(" · ")[0] == row.name
        assert shown[1:-1] == [
            format_number(stats.ok),
            *times,
            format_number(stats.output_tokens),
            format_number(stats.output_tokens_per_s),
            *([f"{(stats.goodput or 0) * 100:.1f}%"] if goodput else []),
        ]
        codes = " ".join(
            f"{code} {format_number(n)}" for code, n in stats.stream_error_codes.items()
        )
        assert shown[-1] == (codes or "0")


def svg_of(page: str, chart_id: str) -> str:
    return page.split(f'<svg id="{chart_id}"', 1)[1].split("</svg>", 1)[0]


def test_a_streaming_run_has_the_section_with_every_chart_and_number(tmp_path: Path) -> None:
    folder = make_run(tmp_path, streams=STREAMS)
    page = page_of(folder)
    summary = load_run(folder).summary
    assert page.index('<section id="stats">') < page.index('<section id="streaming">')
    for chart_id in (*CHART_IDS, *STREAM_CHART_IDS):
        assert f'<svg id="{chart_id}"' in page
        assert "no data" not in svg_of(page, chart_id), chart_id
    assert_stream_numbers(page, summary, goodput=False)
    # spectra as the latency spectrum's: an endpoint, and each variant of one that has several
    for chart_id in ("chart-ttft-spectrum", "chart-itl-spectrum", "chart-percentile-spectrum"):
        titles = svg_of(page, chart_id).split("<title>")[1:]
        assert [title.split("<")[0] for title in titles] == [
            "churn-v1",
            "churn-v1 / AllTraffic",
            "churn-v1 / canary",
            "churn-v2/canary (AllTraffic)",
        ]
    # over time: a p99 and a p50 line per endpoint; tokens one line each
    for chart_id in ("chart-ttft-over-time", "chart-itl-over-time"):
        assert svg_of(page, chart_id).count('<path class="series"') == 4
    assert svg_of(page, "chart-tokens-over-time").count('<path class="series"') == 2


def test_goodput_has_its_column_when_the_run_set_limits(tmp_path: Path) -> None:
    """churn-v1's streams: TTFT a quarter of ~20-25 ms latencies; a 6 ms TTFT limit keeps some."""
    folder = make_run(tmp_path, streams=STREAMS, goodput=Goodput(ttft_us=6000))
    summary = load_run(folder).summary
    goodput = summary.endpoints["churn-v1"].goodput
    assert goodput is not None and 0 < goodput < 1
    assert_stream_numbers(page_of(folder), summary, goodput=True)


def test_a_run_without_streams_has_no_streaming_section(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path))
    assert 'id="streaming"' not in page
    assert not any(chart_id in page for chart_id in STREAM_CHART_IDS)
    assert "TTFT" not in page and "tokens" not in page


def test_stream_columns_bucket_like_latency_over_seconds_in_which_streams_ended() -> None:
    """1200 s in buckets of 4; streams end only in even seconds (TTFT 0 in odd ones): TTFT
    p50 is their request-weighted mean, p99 the worst; tokens per second the mean."""
    rows = [
        TimeRow(
            s,
            100,
            0,
            0,
            10.0,
            30.0,
            40 * (s % 2 == 0),
            *((50.0, 90.0, 5.0, 8.0) if s % 2 == 0 else (0.0, 0.0, 0.0, 0.0)),
        )
        for s in range(1200)
    ]
    rows[600] = rows[600]._replace(ttft_p99_ms=400.0, itl_p99_ms=70.0)
    merged, width = bucket_rows(rows)
    assert width == 4
    assert all(row.ttft_p50_ms == 50.0 and row.itl_p50_ms == 5.0 for row in merged)
    assert all(row.output_tokens == 20 for row in merged)
    assert max(row.ttft_p99_ms for row in merged) == 400.0
    assert max(row.itl_p99_ms for row in merged) == 70.0
    assert sorted({row.ttft_p99_ms for row in merged}) == [90.0, 400.0]


@pytest.mark.usefixtures("fake_aws")
async def test_the_report_of_a_real_streaming_run_is_the_same_from_the_files(
    tmp_path: Path,
) -> None:
    """Two endpoints against the mock's stream, some streams broken: the page the run drew
    in memory is byte for byte the one `loadgen report` draws from the files."""
    mock = await stream_mock(stream_error_rate=0.2)
    try:
        load = {"executor": "constant-arrival-rate", "rate": 40, "duration": "2s"}
        endpoints = [{"name": "llm"}, {"name": "chat"}]
        result = await run_scenario(
            streaming(mock.url, "fast", load, endpoints=endpoints),
            RunOptions(out=tmp_path, quiet=True),
        )
    finally:
        await mock.close()
    folder = result.folder
    in_run = (folder / "report.html").read_bytes()
    write_report(folder)
    assert (folder / "report.html").read_bytes() == in_run
    page = in_run.decode()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.total.stream_error_codes  # some broke: the table shows their codes
    assert_stream_numbers(page, summary, goodput=False)
    for chart_id in STREAM_CHART_IDS:
        assert "no data" not in svg_of(page, chart_id), chart_id


async def test_the_streaming_section_renders_in_chromium_without_errors(tmp_path: Path) -> None:
    if os.environ.get("LOADGEN_SKIP_BROWSER") == "1":
        pytest.skip("LOADGEN_SKIP_BROWSER=1")
    if chromium.find_chromium() is None:
        pytest.fail(f"Chromium not found: {chromium.INSTALL_HINT}")
    page = write_report(make_run(tmp_path / "run", streams=STREAMS))
    result = await chromium.render(
        page, evaluate=CHART_PROBE % json.dumps(list(STREAM_CHART_IDS)), timeout_s=20
    )
    assert result.errors == [] and result.external_requests == []
    for chart in json.loads(result.value):
        assert chart["svg"], chart
        assert chart["width"] > 300 and chart["height"] > 100, chart
        assert chart["lines"] >= 2, chart
