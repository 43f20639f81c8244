"""Comparisons on a streaming run's token times: `compare: [{metric: ttft}]` in a run and
`loadgen compare --metric ttft|itl|tpot`; the result names its metric, in every view; a stream
metric where there are no stream histograms is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hdrh.histogram import HdrHistogram

from loadgen.cli import main
from loadgen.compare import compare, compare_command, compare_within_run, parse_limit
from loadgen.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ScenarioError
from loadgen.scenario import CompareMetric, scenario_from_dict
from loadgen.summary import ComparisonOutcome, Direction, RunSummary
from loadgen.versions import Version
from tests.summaries import StreamShape, write_run
from tests.test_cli import loadgen, write
from tests.test_stats import histogram_of, lognormal_samples
from tests.test_streaming import SCENARIOS
from tests.test_verdict import assert_views_agree, section

SAMPLES = 3000
TEN_PERCENT = ["p50=10%", "p99=10%"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Latency alike (two seeds of one distribution); the new run's first token comes at 40%
    of each request instead of 25%: TTFT 60% slower, the gaps after it 20% shorter."""
    folder = tmp_path_factory.mktemp("streams")
    base = write_run(
        folder / "base",
        {"llm": lognormal_samples(0, SAMPLES)},
        streams={"llm": StreamShape(tokens=8, ttft_share=0.25)},
    ).folder
    new = write_run(
        folder / "new",
        {"llm": lognormal_samples(1, SAMPLES)},
        streams={"llm": StreamShape(tokens=8, ttft_share=0.4)},
    ).folder
    return base, new


@pytest.mark.parametrize(
    ("metric", "direction", "status"),
    [
        (CompareMetric.LATENCY, Direction.SAME, EXIT_OK),
        (CompareMetric.TTFT, Direction.SLOWER, EXIT_FAILED),
        (CompareMetric.ITL, Direction.FASTER, EXIT_OK),
        (CompareMetric.TPOT, Direction.FASTER, EXIT_OK),
    ],
)
def test_the_metric_decides_what_is_compared(
    runs: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    metric: CompareMetric,
    direction: Direction,
    status: int,
) -> None:
    base, new = runs
    got = compare_command(base, new, TEN_PERCENT, endpoint=None, json_out=True, metric=metric)
    data = json.loads(capsys.readouterr().out)
    (comparison,) = data["comparisons"]
    assert got == status
    assert comparison["metric"] == metric.value and comparison["direction"] == direction.value
    base_summary = RunSummary.load(base / "summary.json").endpoints["llm"]
    shown = {
        CompareMetric.LATENCY: base_summary.latency_ms,
        CompareMetric.TTFT: base_summary.ttft_ms,
        CompareMetric.ITL: base_summary.itl_ms,
        CompareMetric.TPOT: base_summary.tpot_ms,
    }[metric]
    assert shown is not None and comparison["metrics"]["p50"]["base_ms"] == shown.p50
    assert comparison["requests"] == {"base": SAMPLES, "new": SAMPLES}  # the endpoint's


def test_the_table_names_the_metric(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    status = main(
        ["compare", str(base), str(new), "--metric", "ttft", "--max-regression", "p50=10%"]
    )
    out = capsys.readouterr().out
    assert status == EXIT_FAILED
    assert "llm (base) vs llm (new), TTFT" in out and "verdict: slower, over limit" in out
    assert main(["compare", str(base), str(new)]) == EXIT_OK
    assert "llm (base) vs llm (new), latency" in capsys.readouterr().out


def test_a_stream_metric_without_stream_histograms_is_one_line_and_exit_2(
    tmp_path: Path, runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plain = write_run(tmp_path / "plain", {"llm": lognormal_samples(2, 100)}).folder
    stream, _ = runs
    hlog = stream / "llm.hlog"
    cases = [
        ([str(stream), str(plain), "--metric", "itl"], f"{plain / 'histograms.json'}: no stream"),
        ([str(hlog), str(stream), "--metric", "tpot"], f"{hlog}: a .hlog holds latency only"),
    ]
    for args, start in cases:
        assert main(["compare", *args]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {start}"), err
    (plain / "histograms.json").unlink()  # its .hlog files remain: latency only
    assert main(["compare", str(stream), str(plain), "--metric", "ttft"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"error: {plain}: no histograms.json, whose stream histograms ttft needs\n"
    assert main(["compare", str(stream), str(plain), "--metric", "ttfb"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: --metric: must be one of latency, ttft, itl, tpot, not 'ttfb'")


def test_in_run_comparisons_on_stream_metrics(tmp_path: Path) -> None:
    """Variant a's first token at 25% of each request, b's at 40%: b is slower on TTFT."""
    shapes = {"llm/a": StreamShape(ttft_share=0.25), "llm/b": StreamShape(ttft_share=0.4)}
    samples = {"a": lognormal_samples(2, 2000), "b": lognormal_samples(3, 2000)}
    run = write_run(tmp_path / "run", {"llm": samples}, streams=shapes)
    limits = [parse_limit("p50=10%")]
    by_metric = {
        metric: compare_within_run(
            run.histograms, run.summary.endpoints, [("llm/a", "llm/b")], limits, metric=metric
        )[0]
        for metric in CompareMetric
    }
    assert {metric: c.direction for metric, c in by_metric.items()} == {
        CompareMetric.LATENCY: Direction.SAME,
        CompareMetric.TTFT: Direction.SLOWER,
        CompareMetric.ITL: Direction.FASTER,
        CompareMetric.TPOT: Direction.FASTER,
    }
    ttft = by_metric[CompareMetric.TTFT]
    assert ttft.metric is CompareMetric.TTFT and not ttft.passed
    assert ttft.name == "llm/b vs llm/a (ttft)"  # junit's testcase and the verdict's reason
    assert by_metric[CompareMetric.LATENCY].name == "llm/b vs llm/a"  # as it always was
    plain = write_run(tmp_path / "plain", {"llm": samples})  # as if no stream ended well
    (none,) = compare_within_run(
        plain.histograms,
        plain.summary.endpoints,
        [("llm/a", "llm/b")],
        [],
        metric=CompareMetric.ITL,
    )
    assert none.missing == ("llm/a", "llm/b") and none.outcome is ComparisonOutcome.NO_DATA
    assert none.why_missing() == " (no ITL values recorded for 'llm/a' and 'llm/b')"


def test_a_stream_metric_in_a_scenario_that_does_not_stream_is_refused() -> None:
    raw: dict[str, Any] = {
        "name": "plain",
        "endpoint_url": "mock",
        "endpoints": [{"name": "a"}, {"name": "b"}],
        "request": {"body": "{}"},
        "load": {"executor": "constant-arrival-rate", "rate": 1, "requests": 1},
        "compare": [
            {"base": "a", "new": "b"},
            {"base": "a", "new": "b", "metric": "latency"},
            {"base": "a", "new": "b", "metric": "tpot"},
        ],
    }
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(raw)
    assert caught.value.problems == [
        "compare[2].metric: tpot applies to streaming calls (request.stream: true)"
    ]
    raw["compare"] = [{"base": "a", "new": "b", "metric": "ttfb"}]
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(raw)
    (problem,) = caught.value.problems
    assert problem.startswith("compare[0].metric: ") and "'ttft'" in problem


def test_a_summary_json_from_before_the_metric_loads_as_latency(tmp_path: Path) -> None:
    base, new = (Version("ep", histogram, 5, 0) for histogram in _histograms())
    comparison = compare(base, new, [], metric=CompareMetric.ITL)
    folder = write_run(tmp_path / "run", {"ep": [1000] * 5}, comparisons=(comparison,)).folder
    data = json.loads((folder / "summary.json").read_text())
    (written,) = data["comparisons"]
    assert written["metric"] == "itl"
    assert RunSummary.load(folder / "summary.json").comparisons == (comparison,)
    del written["metric"]
    (folder / "summary.json").write_text(json.dumps(data))
    (loaded,) = RunSummary.load(folder / "summary.json").comparisons
    assert loaded.metric is CompareMetric.LATENCY and loaded.metrics == comparison.metrics


def _histograms() -> tuple[HdrHistogram, HdrHistogram]:
    return histogram_of([1000] * 5), histogram_of([2000] * 5)


def test_a_streaming_run_compares_its_endpoints_on_ttft_and_itl_in_every_view(
    tmp_path: Path,
) -> None:
    """`loadgen run` of two endpoints of the mock's one stream shape: each comparison is of
    the metric it names (its p50 is that endpoint's own TTFT or ITL p50), and says so in
    summary.json, on the console, in summary.md and in the report."""
    data = yaml.safe_load((SCENARIOS / "llm-stream.yaml").read_text())
    data["endpoints"] = [{"name": "llm"}, {"name": "chat"}]
    data["load"]["duration"] = "2s"
    data["compare"] = [
        {"base": "llm", "new": "chat", "metric": "ttft", "max_regression": {"p50": "50%"}},
        {"base": "llm", "new": "chat", "metric": "itl"},
        {"base": "llm", "new": "chat"},
    ]
    result = loadgen("run", str(write(tmp_path, data)), "--out", str(tmp_path / "out"))
    (folder,) = (tmp_path / "out").iterdir()
    summary = assert_views_agree(folder, result.returncode, result.stdout)
    ttft, itl, latency = summary.comparisons
    assert [c.metric for c in summary.comparisons] == [
        CompareMetric.TTFT,
        CompareMetric.ITL,
        CompareMetric.LATENCY,
    ]
    llm = summary.endpoints["llm"]
    assert llm.ttft_ms is not None and llm.itl_ms is not None
    assert ttft.metrics["p50"].base_ms == llm.ttft_ms.p50
    assert itl.metrics["p50"].base_ms == llm.itl_ms.p50
    assert latency.metrics["p50"].base_ms == llm.latency_ms.p50
    assert ttft.mann_whitney.n_base == llm.ok  # a TTFT per stream that ended well
    raw = json.loads((folder / "summary.json").read_text())
    assert [c["metric"] for c in raw["comparisons"]] == ["ttft", "itl", "latency"]

    markdown = (folder / "summary.md").read_text()
    page = (folder / "report.html").read_text()
    for comparison in summary.comparisons:
        label = comparison.metric.label
        assert f"compare {comparison.name}: {comparison.outcome} (p=" in result.stdout
        assert f"; {label} p50 " in result.stdout
        assert f"**chat** vs **llm** on {label}: {comparison.outcome}" in markdown
    blocks = section(page, "comparisons").split("<div class='comparison'>")[1:]
    assert [block.split(" · on ")[1].split(" · ")[0] for block in blocks] == [
        "TTFT",
        "ITL",
        "latency",
    ]
    assert [block.split("<th class='left'>")[1].split("<")[0] for block in blocks] == [
        "TTFT",
        "ITL",
        "latency",
    ]


def test_a_run_whose_base_never_streamed_writes_its_results_and_fails_the_gate(
    tmp_path: Path,
) -> None:
    """Every call of the base endpoint fails, so it has no TTFT: the run still writes every
    file, and each view says the comparison had nothing to compare; its limit fails the run
    (exit 1), where it used to end the run with exit 2 and no summary.json."""
    data = yaml.safe_load((SCENARIOS / "llm-stream.yaml").read_text())
    data["endpoints"] = [{"name": "old"}, {"name": "new"}]
    data["load"]["duration"] = "1s"
    data["thresholds"] = {}
    data["mock"]["endpoints"] = {"old": {"errors": {"ModelError": 1.0}}}
    data["compare"] = [
        {"base": "old", "new": "new", "metric": "ttft", "max_regression": {"p99": "10%"}},
        {"base": "old", "new": "new", "metric": "itl"},  # no limit: it says so and passes
    ]
    result = loadgen("run", str(write(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert result.returncode == EXIT_FAILED, result.stderr
    (folder,) = (tmp_path / "out").iterdir()
    summary = assert_views_agree(folder, result.returncode, result.stdout)
    ttft, itl = summary.comparisons
    assert ttft.missing == itl.missing == ("old",)
    assert ttft.outcome is itl.outcome is ComparisonOutcome.NO_DATA
    assert (ttft.passed, itl.passed) == (False, True)
    assert ttft.requests.base == summary.endpoints["old"].requests > 0
    why = "no TTFT values recorded for 'old'"
    assert f"compare new vs old (ttft): no values to compare ({why})" in result.stdout
    markdown = (folder / "summary.md").read_text()
    assert f"**FAIL** **new** vs **old** on TTFT: no values to compare ({why})" in markdown
    assert "p99 not measured, limit +10%" in (folder / "junit.xml").read_text()
    page = section((folder / "report.html").read_text(), "comparisons")
    assert "no values to compare" in page and "no ITL values recorded for &#x27;old&#x27;" in page
