"""What a person sees: the live status line during a run, the plain progress line in a CI
log, and the summary table after the run (80 columns, no cell cut)."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadgen.console import LiveStatus, print_summary
from loadgen.engine.core import Progress
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.histograms import new_histogram
from loadgen.metrics import Interval
from loadgen.scenario import Scenario, scenario_from_dict
from loadgen.summary import RunSummary
from loadgen.table import short_ids
from tests.servers import scenario
from tests.summaries import write_run
from tests.test_cli import QUICKSTART, loadgen

# --- the live line ---------------------------------------------------------------------------


def interval(
    index: int, label: str, values: list[int], late: int = 0, delay_us: int = 0
) -> Interval:
    histogram = new_histogram()
    for value in values:
        histogram.record_value(value)
    return Interval(index, label, histogram, len(values), 0, 0, late, delay_us)


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True)


def test_the_line_shows_the_last_seconds_percentiles_and_late_starts() -> None:
    status = LiveStatus(
        scenario("http://127.0.0.1:9", duration="10s"), ["a", "b"], console=terminal()
    )
    with status:
        status.observe(interval(0, "a", [1000] * 90, late=9, delay_us=2500))
        status.observe(interval(0, "b", [3000] * 10, late=1, delay_us=12_000))
        status.observe(interval(1, "a", [1000]))  # the next second is not complete yet
        line = status.line(1.5)
    assert "p50 1.0 ms  p99 3.0 ms" in line
    assert "late 10% (start delay up to 12.0 ms)" in line
    assert line.startswith("  1.5s / 10s  ")
    assert "sent" not in line  # a run by duration: no N / total


def test_a_streaming_run_shows_ttft_and_tokens_per_second() -> None:
    streams = scenario("http://127.0.0.1:9", duration="10s")
    streams = streams.model_copy(
        update={"request": streams.request.model_copy(update={"stream": True})}
    )
    status = LiveStatus(streams, ["a", "b"], console=terminal())
    with status:
        for label, ttft_us, tokens in (("a", 80_000, 300), ("b", 200_000, 100)):
            second = interval(0, label, [500_000] * 10)
            for _ in range(10):
                second.ttft.record_value(ttft_us)
            second.output_tokens = tokens
            status.observe(second)
        status.observe(interval(1, "a", [1000]))
        line = status.line(1.5)
    assert "TTFT p50 80.1 ms  p99 200 ms  400 tokens/s" in line  # hdrh: 80.0 ms bucket top
    plain = LiveStatus(scenario("http://127.0.0.1:9", duration="10s"), ["a"], console=terminal())
    assert "TTFT" not in plain.line(0.5)


def test_the_line_shows_target_and_achieved_rate_in_flight_and_n_of_total() -> None:
    """An open loop of 1,000 requests at 100/s: the rate is over the latest readings (up to
    RATE_WINDOW_S): (250 - 50) sent / (2.5 - 0.5) s = 100 of 100 req/s."""
    status = LiveStatus(scenario("http://127.0.0.1:9", requests=1000), ["ep"], console=terminal())
    with status:
        status.update(Progress(sent=0, in_flight=0, at_s=0.0))
        assert "0.0 of 100 req/s" in status.line(0.0)
        assert "p50 - p99 - ms" in status.line(0.0)  # no second closed yet
        for tenth in range(5, 26, 5):  # 0.5 s .. 2.5 s, 100 sent per second
            at_s = tenth / 10
            status.update(Progress(sent=tenth * 10, in_flight=7, at_s=at_s))
        line = status.line(2.5)
    assert line.startswith("  2.5s  250 / 1,000 sent  100 of 100 req/s  in flight 7  ")


def test_a_ramp_wants_its_mean_rate_over_the_same_readings() -> None:
    """0 -> 100 req/s over 10 s: 20 requests are due by 2 s, 80 by 4 s; 60 in those 2 s."""
    ramp = mock_run(
        1, executor="ramping-arrival-rate", start_rate=0, stages=[{"duration": 10, "target": 100}]
    )
    status = LiveStatus(ramp, ["ep"], console=terminal())
    status.update(Progress(20, 1, 2.0))
    status.update(Progress(74, 3, 4.0))
    # 0 s dropped: 2 s before the latest is RATE_WINDOW_S; (74 - 20) / 2 sent, (80 - 20) / 2 due
    assert status.rates() == (27.0, 30.0)
    status.update(Progress(80, 3, 4.5))
    status.update(Progress(140, 3, 6.0))  # now over 4 .. 6 s: 180 due by 6 s
    assert status.rates() == (33.0, 50.0)


def test_a_closed_loop_has_no_target_rate() -> None:
    closed = scenario(
        "http://127.0.0.1:9", executor="constant-concurrency", concurrency=4, duration="5s"
    )
    status = LiveStatus(closed, ["ep"], console=terminal())
    status.update(Progress(300, 4, 1.0))
    line = status.line(1.0)
    assert "300 req/s  in flight 4" in line and " of " not in line


def test_without_a_terminal_or_line_it_counts_and_computes_nothing() -> None:
    status = LiveStatus(
        scenario("http://127.0.0.1:9"), ["a"], enabled=False, console=Console(file=io.StringIO())
    )
    status.observe(interval(0, "a", [1000] * 5))
    status.observe(interval(1, "a", [1000] * 5))
    assert status.requests == 10
    assert "p50 - p99 - ms" in status.line(2.0)  # no second kept: nobody sees its percentiles


# --- the plain progress line (stderr not a terminal) -----------------------------------------


def test_without_a_terminal_a_plain_line_every_period() -> None:
    """Ticks every 0.25 s for 7 s with a 2 s period: lines at 2, 4 and 6 s, and no others."""
    out = io.StringIO()
    status = LiveStatus(
        scenario("http://127.0.0.1:9", duration="7s"),
        ["ep"],
        console=Console(file=out),
        progress_every_s=2.0,
    )
    with status:
        for quarter in range(1, 29):
            status.update(Progress(quarter * 25, 2, quarter / 4))
    lines = out.getvalue().splitlines()
    assert [line.split("s")[0].strip() for line in lines] == ["2.0", "4.0", "6.0"]
    assert all("/ 7s  100 of 100 req/s  in flight 2" in line for line in lines)
    assert "\x1b" not in out.getvalue()


def mock_run(workers: int, **load: Any) -> Scenario:
    """A run against the built-in mock, answering in ~50 ms: requests are in flight."""
    return scenario_from_dict(
        {
            "name": "console",
            "endpoint_url": "mock",
            "workers": workers,
            "endpoints": [{"name": "ep"}],
            "request": {"body": "{}", "custom_attributes": "trace={trace_id}"},
            "correlation": "contains",
            "load": {"executor": "constant-arrival-rate", "timeout": "5s"} | load,
            "mock": {"latency_ms": {"median": 50, "p99": 60}, "echo": "{custom_attributes}"},
        }
    )


def progress_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"^ *\d+\.\ds", line)]


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_real_run_prints_its_progress_at_the_given_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: int
) -> None:
    """400 requests at 200/s take 2 s: with a 0.5 s period, lines at 0.5, 1.0, 1.5 (2.0 s
    if the last requests are still under way), each with N / total and ~10 in flight."""
    s = mock_run(workers, rate=200, requests=400)
    await run_scenario(s, RunOptions(out=tmp_path, progress_every_s=0.5))
    err = capsys.readouterr().err
    lines = progress_lines(err)
    assert 3 <= len(lines) <= 5, err
    periods = [int(float(line.split("s")[0]) // 0.5) for line in lines]
    assert periods == list(range(1, len(lines) + 1)), lines  # one line a period
    sent = [int(re.findall(r"([\d,]+) / 400 sent", line)[0].replace(",", "")) for line in lines]
    assert sent == sorted(sent) and 0 < sent[0] < 400, lines
    in_flight = [int(re.findall(r"in flight (\d+)", line)[0]) for line in lines]
    assert max(in_flight) >= 3, lines  # 200/s x 50 ms = 10 under way
    assert all(re.search(r" of 200 req/s", line) for line in lines)
    assert "\x1b" not in err


async def test_quiet_prints_no_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = mock_run(1, rate=200, requests=200)
    await run_scenario(s, RunOptions(out=tmp_path, quiet=True, progress_every_s=0.2))
    assert progress_lines(capsys.readouterr().err) == []


# --- the summary table -----------------------------------------------------------------------


def rendered(summary: RunSummary, verbose: bool = False) -> str:
    out = io.StringIO()
    print_summary(summary, Console(width=80, file=out, highlight=False), verbose=verbose)
    return out.getvalue()


def table_lines(text: str) -> list[str]:
    """The table's lines: from the header's rule to the line before the legend."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("───"))
    end = next(i for i, line in enumerate(lines) if line.startswith("latency ms"))
    return lines[start + 1 : end]


def several(tmp_path: Path) -> RunSummary:
    samples = {
        "churn-v1": {"AllTraffic": [20_000] * 50 + [140_000]},
        "churn-v2/canary": {"canary": [19_000] * 40},
        "ab-test-endpoint": {"blue": [10_000] * 30, "green": [13_000] * 10},
    }
    return write_run(tmp_path, samples, errors={"churn-v1": 3}).summary


def test_the_table_fits_80_columns_with_several_endpoints_and_variants(tmp_path: Path) -> None:
    summary = several(tmp_path)
    text = rendered(summary)
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    rows = table_lines(text)
    names = [
        "churn-v1 (AllTraffic)",
        "churn-v2/canary",
        "ab-test-endpoint",
        "  blue",
        "  green",
    ]
    # one line per row (nothing wrapped), then the rule and the total
    assert [row[: len(name)] for row, name in zip(rows, names, strict=False)] == names
    assert len(rows) == len(names) + 2 and rows[-2].startswith("───")
    total = summary.total
    assert rows[-1].split() == [
        "total",
        f"{total.requests:,}",
        f"{total.error_count:,}",
        *rows[-1].split()[3:],
    ]
    v1 = summary.endpoints["churn-v1"]
    assert rows[0].split()[2:5] == [f"{v1.requests:,}", "3", f"{v1.throughput_rps:.1f}"]
    # p99, max, svc p99 (ms), bad echo: the service time is 95% of the latency here
    assert rows[0].split()[-5:-1] == ["20.0", "140", "19.0", "0"]


def test_long_names_and_large_figures_still_fit(tmp_path: Path) -> None:
    """A 50-character endpoint name cannot fit beside nine figures: it is shown as #1 and
    named in full under the table; millions are shortened, never cut."""
    long_name = "a-long-endpoint-name-for-the-recommender-model-v1"
    summary = write_run(
        tmp_path, {long_name: {"AllTraffic": [1000] * 5}, "short": [2000] * 5}
    ).summary
    big = summary.endpoints["short"].model_copy(
        update={"requests": 123_456_789, "ok": 123_000_000, "late_starts": 1_234_567}
    )
    summary = summary.model_copy(update={"endpoints": summary.endpoints | {"short": big}})
    text = rendered(summary)
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines()), text
    rows = table_lines(text)
    assert rows[0].startswith("#1 ") and rows[1].startswith("short ")
    assert rows[1].split()[1:3] == ["123M", "457k"] and "1.2M" in rows[1]
    assert f"#1 = {long_name} (AllTraffic)" in text.splitlines()


def test_a_single_endpoint_with_one_variant_is_one_row_and_no_total(tmp_path: Path) -> None:
    summary = write_run(tmp_path, {"churn-v1": {"AllTraffic": [20_000] * 10}}).summary
    rows = table_lines(rendered(summary))
    assert rows == [rows[0]] and rows[0].startswith("churn-v1 (AllTraffic) ")


def test_the_logs_insights_query_only_with_verbose(tmp_path: Path) -> None:
    summary = several(tmp_path)
    plain, verbose = rendered(summary), rendered(summary, verbose=True)
    slowest = [line for line in plain.splitlines() if line.startswith("slowest ")]
    assert len(slowest) == 3 and all(len(line) <= 80 for line in slowest)
    v1 = summary.endpoints["churn-v1"]
    assert slowest[0].startswith(f"slowest churn-v1: ...{v1.slowest[0].trace_id[-6:]} 140 ms, ")
    for stats in summary.endpoints.values():
        assert stats.slowest_query.query not in plain
        assert stats.slowest_query.query in verbose  # one line, whole, to copy
        assert f"Logs Insights on {stats.slowest_query.log_group}:" in verbose


def test_short_ids_are_tails_long_enough_to_tell_apart() -> None:
    ids = ["0badcafe-000-000000001234", "0badcafe-001-000000001234", "0badcafe-000-000000000fff"]
    assert short_ids(ids) == ["...0-000000001234", "...1-000000001234", "...0-000000000fff"]
    assert short_ids(ids[1:2]) == ["...001234"]


@pytest.mark.parametrize("verbose", [False, True])
def test_the_cli_passes_verbose_through(tmp_path: Path, verbose: bool) -> None:
    flags = ["--verbose"] if verbose else []
    result = loadgen("run", str(QUICKSTART), "--duration", "1s", "--out", str(tmp_path), *flags)
    (folder,) = tmp_path.iterdir()
    summary = RunSummary.load(folder / "summary.json")
    # a stall on a loaded machine can break the quickstart's p99 limit: the verdict says so
    assert result.returncode == summary.verdict.exit_code in (0, 1), result.stderr
    queries = [stats.slowest_query.query for stats in summary.endpoints.values()]
    markdown, page = (folder / "summary.md").read_text(), (folder / "report.html").read_text()
    for query in queries:
        assert (query in result.stdout) is verbose
        assert query in markdown and html.escape(query) in page  # there either way
    for line in result.stdout.splitlines():
        if line.startswith("thresholds"):
            break
        assert len(line) <= 80 or line.strip() in queries, line
