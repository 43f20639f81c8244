"""loadgen compare: the verdict, the limits, run folders and the command's output and exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from loadgen.cli import main
from loadgen.compare import (
    Limit,
    compare,
    compare_command,
    compare_within_run,
    parse_limit,
    render_report,
    render_table,
)
from loadgen.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from loadgen.scenario import ConstantConcurrency, RampingArrivalRate, Stage
from loadgen.summary import (
    CompareReport,
    ComparisonOutcome,
    ComparisonResult,
    Direction,
    RunSummary,
    ThroughputChange,
)
from loadgen.versions import Profile, Version, load_versions, profile_warnings, versions_in_run
from tests.summaries import LOAD, write_run
from tests.test_cli import loadgen
from tests.test_stats import histogram_of, lognormal_samples

TEN_PERCENT = [parse_limit("p99=10%"), parse_limit("p50=10%")]
SAMPLES = 3000


def version(name: str, samples: list[int], errors: int = 0) -> Version:
    return Version(name, histogram_of(samples), len(samples), errors)


# --- the acceptance criterion ------------------------------------------------------


def test_a_30_percent_slower_version_is_slower_and_fails_10_percent_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = lognormal_samples(0, SAMPLES)  # median 20 ms
    new = lognormal_samples(1, SAMPLES, scale=1.3)
    comparison = compare(version("ep", base), version("ep", new), TEN_PERCENT)
    assert comparison.direction is Direction.SLOWER
    assert comparison.outcome is ComparisonOutcome.SLOWER_OVER_LIMIT and not comparison.passed
    assert [check.failed for check in comparison.limits] == [True, True]
    assert comparison.metrics["p50"].change == pytest.approx(0.3, abs=0.05)
    write_run(tmp_path / "base", {"ep": base})
    write_run(tmp_path / "new", {"ep": new})
    status = compare_command(
        tmp_path / "base", tmp_path / "new", ["p99=10%", "p50=10%"], endpoint=None, json_out=False
    )
    assert status == EXIT_FAILED
    out = capsys.readouterr().out
    assert "verdict: slower, over limit" in out
    assert "limit p99 <= +10.0%: FAILED" in out
    assert "limit p50 <= +10.0%: FAILED" in out


def test_no_false_alarm_in_20_repeated_comparisons_of_identical_setups() -> None:
    verdicts = []
    for seed in range(20):
        base = version("ep", lognormal_samples(seed, SAMPLES))
        new = version("ep", lognormal_samples(seed + 100, SAMPLES))
        comparison = compare(base, new, TEN_PERCENT, seed=seed)
        assert comparison.passed
        verdicts.append(comparison.direction)
    assert verdicts.count(Direction.SAME) >= 19  # alpha 0.01 and a CI: about 0 expected


def test_a_30_percent_difference_is_found_in_every_seed() -> None:
    p99_failures = 0
    for seed in range(10):
        base = version("ep", lognormal_samples(seed, SAMPLES))
        new = version("ep", lognormal_samples(seed + 100, SAMPLES, scale=1.3))
        comparison = compare(base, new, TEN_PERCENT, seed=seed)
        assert comparison.direction is Direction.SLOWER
        p99, p50 = comparison.limits
        assert p50.failed  # ~1500 samples either side of the median: always beyond 10%
        p99_failures += p99.failed
    # 30 samples above a p99 of 3000: the CI sometimes cannot rule out a mere 10% change
    assert p99_failures >= 8


def test_a_faster_version_is_faster_and_fails_no_limit() -> None:
    base = version("ep", lognormal_samples(0, SAMPLES))
    new = version("ep", lognormal_samples(1, SAMPLES, scale=0.7))
    comparison = compare(base, new, [parse_limit("p99=0%")])
    assert comparison.direction is Direction.FASTER
    assert comparison.outcome is ComparisonOutcome.FASTER
    assert comparison.mann_whitney.z < 0
    assert comparison.passed
    p99_high = comparison.metrics["p99"].ci_high
    assert p99_high is not None and p99_high < 0


def test_a_slower_tail_outranks_a_faster_median() -> None:
    """Gates exist to catch regressions: a worse p99 is "slower" even if most calls got faster."""
    samples = sorted(lognormal_samples(1, SAMPLES))
    tail = len(samples) * 97 // 100
    new = [round(v * 0.8) for v in samples[:tail]] + [v * 2 for v in samples[tail:]]
    comparison = compare(version("ep", lognormal_samples(0, SAMPLES)), version("ep", new), [])
    test = comparison.mann_whitney
    assert test.p_value < 0.01 and test.z < 0  # most calls are faster
    p50_high, p99_low = comparison.metrics["p50"].ci_high, comparison.metrics["p99"].ci_low
    assert p50_high is not None and p50_high < 0
    assert p99_low is not None and p99_low > 0
    assert comparison.direction is Direction.SLOWER
    # no limit was set: slower passes, and says so
    assert comparison.outcome is ComparisonOutcome.SLOWER_NO_LIMIT and comparison.passed


def test_a_significant_change_below_the_limit_passes_it() -> None:
    base = version("ep", lognormal_samples(0, 20_000))
    new = version("ep", lognormal_samples(1, 20_000, scale=1.05))
    comparison = compare(base, new, [parse_limit("p50=10%"), parse_limit("p50=1%")])
    assert comparison.direction is Direction.SLOWER
    assert [check.failed for check in comparison.limits] == [False, True]
    within = compare(base, new, [parse_limit("p50=10%")])
    assert within.outcome is ComparisonOutcome.SLOWER_WITHIN_LIMIT and within.passed


def test_comparing_an_empty_version_is_a_usage_error() -> None:
    empty = Version("ep", histogram_of([]), 0, 0)
    with pytest.raises(UsageError, match="no recorded latencies"):
        compare(empty, version("ep", [1000]), [])


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("p99=10%", Limit("p99", 0.10)),
        ("P50 = 2.5%", Limit("p50", 0.025)),
        ("p99.9=20%", Limit("p999", 0.20)),
        ("p999=0%", Limit("p999", 0.0)),
        ("mean=100%", Limit("mean", 1.0)),
    ],
)
def test_parse_limit(text: str, limit: Limit) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["p99", "p99=10", "max=10%", "p99=-5%", "p99=ten%", ""])
def test_parse_limit_rejects_bad_input_naming_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--max-regression") as caught:
        parse_limit(text)
    assert caught.value.exit_code == EXIT_USAGE


# --- the command on run folders -------------------------------------------------------------


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """Two runs of endpoints "same" (unchanged) and "slow" (30% slower in the new run); the
    new run took 4 s for what the base did in 2 s: half the requests per second, no errors."""
    base = write_run(
        tmp_path / "base",
        {"same": lognormal_samples(1, 2000), "slow": lognormal_samples(2, 2000)},
        errors={"same": 3, "slow": 3},
        run_id="base-run",
    )
    new = write_run(
        tmp_path / "new",
        {"same": lognormal_samples(3, 2000), "slow": lognormal_samples(4, 2000, scale=1.3)},
        seconds=4,
        run_id="new-run",
    )
    return base.folder, new.folder


def table_rows(out: str) -> list[dict[str, list[str]]]:
    """Each table printed, its body rows by their first cell."""
    tables: list[dict[str, list[str]]] = []
    for line in out.splitlines():
        if line.startswith("┏"):
            tables.append({})
        elif line.startswith("│"):
            first, *cells = (cell.strip() for cell in line.strip("│").split("│"))
            tables[-1][first] = cells
    return tables


def percent(cell: str) -> float:
    return float(cell.removesuffix("%")) / 100


def test_the_table_shows_every_metric_and_the_verdict(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    assert compare_command(base, new, [], endpoint=None, json_out=False) == EXIT_OK
    out = capsys.readouterr().out
    for metric in ("p50", "p90", "p99", "p999", "max", "mean"):
        assert f"│ {metric} " in out
    assert "same (base) vs same (new)" in out and "slow (base) vs slow (new)" in out
    assert "verdict: no significant change" in out
    assert "verdict: slower, no limit set" in out
    assert "base 2000 (3 errors), new 2000 (0 errors)" in out


def test_json_output_parses_and_fails_on_a_limit(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    assert compare_command(base, new, ["p99=10%"], endpoint=None, json_out=True) == EXIT_FAILED
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False
    by_name = {entry["new"]: entry for entry in data["comparisons"]}
    assert by_name["same"]["outcome"] == "no significant change"
    assert by_name["same"]["passed"] is True
    assert by_name["same"]["limits"] == [
        {
            "metric": "p99",
            "max_increase": 0.1,
            "change_low": by_name["same"]["metrics"]["p99"]["ci_low"],
            "failed": False,
        }
    ]
    slow = by_name["slow"]
    assert slow["direction"] == "slower" and slow["outcome"] == "slower, over limit"
    assert slow["passed"] is False
    assert slow["mann_whitney"]["p_value"] < 0.01 and slow["mann_whitney"]["effect"] > 0.5
    assert set(slow["metrics"]) == {"p50", "p90", "p99", "p999", "max", "mean"}
    assert slow["metrics"]["max"]["ci_low"] is None
    assert slow["errors"] == {"base": 3, "new": 0}


def test_endpoint_picks_one_pair(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    status = compare_command(base, new, ["p99=10%"], endpoint="same", json_out=True)
    assert status == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert [(c["base"], c["new"]) for c in data["comparisons"]] == [("same", "same")]
    status = compare_command(base, new, ["p50=10%"], endpoint="slow", json_out=True)
    assert status == EXIT_FAILED
    with pytest.raises(UsageError) as caught:
        compare_command(base, new, [], endpoint="nope", json_out=False)
    assert caught.value.problems == [f'--endpoint: no endpoint "nope" in {base} (have: same, slow)']


def test_a_missing_folder_is_a_usage_error_naming_it(
    tmp_path: Path, runs: tuple[Path, Path]
) -> None:
    missing = tmp_path / "no-such-run"
    with pytest.raises(UsageError) as caught:
        compare_command(missing, runs[1], [], endpoint=None, json_out=False)
    assert caught.value.problems == [f"{missing}: no such run folder or file"]
    assert caught.value.exit_code == EXIT_USAGE


def test_a_bad_limit_fails_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--max-regression"):
        compare_command(tmp_path / "x", tmp_path / "y", ["p99"], endpoint=None, json_out=False)


def test_hlog_files_compare_whatever_their_names(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    versions = load_versions(base / "slow.hlog")
    assert list(versions) == ["slow"]
    assert versions["slow"].latency.get_total_count() == 2000  # both intervals
    assert (versions["slow"].requests, versions["slow"].errors) == (2000, 3)  # summary beside
    status = compare_command(
        base / "same.hlog", new / "slow.hlog", ["p50=10%"], endpoint=None, json_out=True
    )
    assert status == EXIT_FAILED
    # a folder against a .hlog: --endpoint picks the folder's side
    status = compare_command(base, new / "same.hlog", ["p50=10%"], endpoint="same", json_out=True)
    assert status == EXIT_OK
    capsys.readouterr()


def test_a_summary_json_path_reads_its_folder(runs: tuple[Path, Path]) -> None:
    base, _ = runs
    versions = load_versions(base / "summary.json")
    assert list(versions) == ["same", "slow"]
    assert (versions["same"].requests, versions["same"].errors) == (2000, 3)


def test_without_common_labels_several_versions_are_a_usage_error(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"x": [1000] * 5, "y": [1000] * 5}).folder
    new = write_run(tmp_path / "b", {"z": [1000] * 5}).folder
    with pytest.raises(UsageError, match="no endpoint label in both"):
        compare_command(base, new, [], endpoint=None, json_out=True)


def test_one_version_each_side_pairs_regardless_of_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_run(tmp_path / "a", {"model-v1": lognormal_samples(1, 500)}).folder
    new = write_run(tmp_path / "b", {"model-v2": lognormal_samples(2, 500)}).folder
    assert compare_command(base, new, [], endpoint=None, json_out=True) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert [(c["base"], c["new"]) for c in data["comparisons"]] == [("model-v1", "model-v2")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("histograms.json", "{not json", "not valid JSON"),
        ("histograms.json", "[1, 2]", "expected a JSON object"),
        ("histograms.json", '{"endpoints": {"a": {"latency": "xyz"}}}', "not a valid HdrHist"),
        ("histograms.json", '{"unit": "ms", "endpoints": {}}', "expected microseconds"),
        ("summary.json", '{"endpoints": {"a": {"ok": 1}}}', "not a loadgen-summary/1 file"),
        ("summary.json", '{"schema": "loadgen-summary/0"}', "schema 'loadgen-summary/0' is not"),
        ("timeseries.csv", "second,endpoint\n", "no histograms.json or .hlog files"),
    ],
)
def test_unreadable_run_folders_are_usage_errors_naming_the_file(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message) as caught:
        load_versions(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert len(caught.value.problems) == 1


@pytest.mark.parametrize("content", ["just some text\n", "0.0,1.0,2.0,HISTFAAAAgarbage\n", ""])
def test_unreadable_hlog_files_are_usage_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ep.hlog"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match="ep.hlog"):
        load_versions(path)


def test_other_files_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(UsageError, match="expected a run folder"):
        load_versions(path)


def test_a_folder_without_histograms_json_reads_its_hlogs(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run", {"ep/canary": [1000] * 10, "other": [2000] * 4}).folder
    (folder / "histograms.json").unlink()
    versions = load_versions(folder)
    assert sorted(versions) == ["ep/canary", "other"]  # labels back from summary.json
    assert versions["ep/canary"].latency.get_total_count() == 10
    assert list(load_versions(folder / "ep.canary.hlog")) == ["ep/canary"]
    (folder / "summary.json").write_text("{broken", encoding="utf-8")
    assert list(load_versions(folder / "ep.canary.hlog")) == ["ep.canary"]


# --- within one run -------------------------------------------------------------------------


def test_versions_in_run_and_compare_within_run(tmp_path: Path) -> None:
    samples = {"blue": lognormal_samples(2, 2000), "green": lognormal_samples(3, 2000, 1.3)}
    run = write_run(tmp_path / "run", {"ep": samples})
    folder = run.folder
    versions = versions_in_run(folder)
    assert list(versions) == ["ep", "ep/blue", "ep/green"]
    assert versions["ep/green"].requests == 2000 and versions["ep"].requests == 4000
    assert list(load_versions(folder)) == ["ep"]
    # in the run itself: the in-memory histograms and summaries, the same verdicts
    pairs = [("ep/blue", "ep/green"), ("ep/blue", "ep/blue")]
    comparisons = compare_within_run(
        run.histograms, run.summary.endpoints, pairs, [parse_limit("p50=10%")]
    )
    assert [c.direction for c in comparisons] == [Direction.SLOWER, Direction.SAME]
    assert [c.passed for c in comparisons] == [False, True]
    from_disk = [compare(versions[b], versions[n], [parse_limit("p50=10%")]) for b, n in pairs]
    assert from_disk == comparisons
    # a variant that got no traffic: the run has happened, so the comparison says so
    (red,) = compare_within_run(
        run.histograms, run.summary.endpoints, [("ep/blue", "ep/red")], [parse_limit("p99=5%")]
    )
    assert (red.outcome, red.missing, red.metrics, red.passed) == (
        ComparisonOutcome.NO_DATA,
        ("ep/red",),
        {},
        False,  # a limit it cannot check is not met
    )
    assert red.requests.base == 2000 and red.mann_whitney.n_base == 2000
    assert red.failure() == (
        "no values to compare (no latency values recorded for 'ep/red'): "
        "p99 not measured, limit +5%"
    )
    (unlimited,) = compare_within_run(
        run.histograms, run.summary.endpoints, [("ep/red", "ep/blue")], []
    )
    assert unlimited.outcome is ComparisonOutcome.NO_DATA and unlimited.passed


def test_failed_limits_are_red_and_a_comparison_round_trips_through_json() -> None:
    base = version("ep", lognormal_samples(0, SAMPLES))
    new = version("ep", lognormal_samples(1, SAMPLES, scale=1.3))
    comparisons = [compare(base, new, [parse_limit("p50=10%")])]
    buffer = io.StringIO()
    render_table(
        comparisons, Console(file=buffer, force_terminal=True, color_system="standard", width=120)
    )
    out = buffer.getvalue()
    assert "\x1b[31mlimit p50 <= +10.0%: FAILED" in out
    assert "\x1b[1;31mslower, over limit" in out  # the outcome, red: it failed
    (comparison,) = comparisons
    assert ComparisonResult.model_validate_json(comparison.model_dump_json()) == comparison


def test_in_run_comparisons_carry_each_variants_throughput_and_error_rate(tmp_path: Path) -> None:
    samples = {"blue": lognormal_samples(2, 2000), "green": lognormal_samples(3, 1000)}
    run = write_run(tmp_path / "run", {"ep": samples}, errors={"ep": 10})
    (comparison,) = compare_within_run(
        run.histograms, run.summary.endpoints, [("ep/blue", "ep/green")], []
    )
    # 2000 and 1000 requests in 2 s; the first 10 of "ep" in time order fail: 7 blue, 3 green
    # (blue's samples come every 1 ms, green's every 2 ms: 7 + 3 within the first 6 ms)
    blue, green = (run.summary.endpoints["ep"].variants[v] for v in ("blue", "green"))
    assert (blue.error_count, green.error_count) == (7, 3)
    assert comparison.throughput.model_dump() == {
        "base_rps": 1000.0,
        "new_rps": 500.0,
        "change": -0.5,
    }
    assert comparison.error_rate.base == 7 / 2000 and comparison.error_rate.new == 3 / 1000


# --- the title: which runs are compared -------------------------------------------------------


def test_the_title_names_both_runs_by_id_and_path(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    compare_command(base, new, [], endpoint=None, json_out=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"compare base base-run ({base}) vs new new-run ({new})"  # one line
    compare_command(base / "summary.json", new, [], endpoint=None, json_out=True)
    data = json.loads(capsys.readouterr().out)
    assert data["base"] == {"path": str(base / "summary.json"), "run_id": "base-run"}
    assert data["new"] == {"path": str(new), "run_id": "new-run"}


def test_a_bare_hlog_has_no_run_id_nor_counts(
    tmp_path: Path, runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    bare = tmp_path / "bare" / "slow.hlog"
    bare.parent.mkdir()
    bare.write_bytes((base / "slow.hlog").read_bytes())  # no summary.json beside it
    compare_command(bare, new, [], endpoint="slow", json_out=False)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"compare base {bare} vs new new-run ({new})"
    (rows,) = table_rows(out)
    assert rows["req/s"] == ["n/a", "500.0", "", ""]
    assert rows["error rate"] == ["n/a", "0.00%", "", ""]
    compare_command(bare, new, [], endpoint="slow", json_out=True)
    data = json.loads(capsys.readouterr().out)
    assert data["base"] == {"path": str(bare), "run_id": None}
    (slow,) = data["comparisons"]
    assert slow["throughput"] == {"base_rps": None, "new_rps": 500.0, "change": None}
    assert slow["error_rate"] == {"base": None, "new": 0.0, "difference": None}


# --- throughput and error rate beside the latency ---------------------------------------------


def test_throughput_and_error_rate_are_shown_and_decide_nothing(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    assert compare_command(base, new, [], endpoint="same", json_out=True) == EXIT_OK
    (same,) = json.loads(capsys.readouterr().out)["comparisons"]
    # 2000 requests in 2 s against 2000 in 4 s; 3 of 2000 failed against none
    assert same["throughput"] == {"base_rps": 1000.0, "new_rps": 500.0, "change": -0.5}
    assert same["error_rate"] == {"base": 0.0015, "new": 0.0, "difference": -0.0015}
    assert same["outcome"] == "no significant change"  # half the throughput: not a verdict
    compare_command(base, new, [], endpoint="same", json_out=False)
    (rows,) = table_rows(capsys.readouterr().out)
    assert rows["req/s"] == ["1,000.0", "500.0", "-50.0%", ""]
    assert rows["error rate"] == ["0.15%", "0.00%", "-0.15 pp", ""]


def test_a_summary_json_from_before_throughput_was_compared_still_loads(tmp_path: Path) -> None:
    comparison = compare(version("ep", [1000] * 5), version("ep", [2000] * 5), [])
    folder = write_run(tmp_path / "run", {"ep": [1000] * 5}, comparisons=(comparison,)).folder
    data = json.loads((folder / "summary.json").read_text())
    (written,) = data["comparisons"]
    assert written["throughput"] == {"base_rps": None, "new_rps": None, "change": None}
    del written["throughput"], written["error_rate"]
    (folder / "summary.json").write_text(json.dumps(data))
    (loaded,) = RunSummary.load(folder / "summary.json").comparisons
    assert loaded.throughput == ThroughputChange() and loaded.error_rate.difference is None
    assert loaded.metrics == comparison.metrics


# --- load profiles ----------------------------------------------------------------------------


def test_differing_load_profiles_are_warned_one_yellow_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = lognormal_samples(1, 500)
    base = write_run(tmp_path / "base", {"ep": samples}).folder
    new = write_run(
        tmp_path / "new",
        {"ep": samples},
        load_config=LOAD.model_copy(update={"rate": 400.0, "max_in_flight": 64}),
        workers=4,
        transport="botocore",
        busy_poll=True,
    ).folder
    # a warning fails nothing: the same latencies are no change
    assert compare_command(base, new, [], endpoint=None, json_out=True) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["warnings"] == [
        "load profiles differ: load.rate 200 (base) vs 400 (new)",
        "load profiles differ: load.max_in_flight 256 (base) vs 64 (new)",
        "load profiles differ: workers 1 (base) vs 4 (new)",
        "load profiles differ: transport fast (base) vs botocore (new)",
        "load profiles differ: busy_poll false (base) vs true (new)",
    ]
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=200)
    render_report(CompareReport.model_validate(data), console)
    yellow = [line for line in buffer.getvalue().splitlines() if "warning" in line]
    assert yellow == [f"\x1b[33mwarning: {text}\x1b[0m" for text in data["warnings"]]
    # the same folders, one side as its .hlog: a log of latencies has no profile
    assert compare_command(base / "ep.hlog", new, [], endpoint=None, json_out=True) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_the_same_load_profile_warns_nothing(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs  # other seconds, run ids and numbers; the same load section
    compare_command(base, new, [], endpoint=None, json_out=True)
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    compare_command(base, new, [], endpoint=None, json_out=False)
    assert "warning" not in capsys.readouterr().out


def test_profiles_of_other_executors_and_stages_differ_in_a_scenarios_words() -> None:
    closed = ConstantConcurrency(executor="constant-concurrency", concurrency=8, requests=4000)
    assert profile_warnings(Profile(closed, 1, "fast"), Profile(LOAD, 1, "fast")) == (
        "load profiles differ: load.executor constant-concurrency (base) vs "
        "constant-arrival-rate (new)",
        "load profiles differ: load.rate unset (base) vs 200 (new)",
        "load profiles differ: load.concurrency 8 (base) vs unset (new)",
        "load profiles differ: load.max_in_flight unset (base) vs 256 (new)",
        "load profiles differ: load.duration unset (base) vs 10 (new)",
        "load profiles differ: load.requests 4000 (base) vs unset (new)",
    )
    ramp = RampingArrivalRate(
        executor="ramping-arrival-rate", stages=[Stage(duration=30, target=100)]
    )
    longer = ramp.model_copy(
        update={"start_rate": 10.5, "stages": [*ramp.stages, Stage(duration=60, target=200)]}
    )
    assert profile_warnings(Profile(ramp, 2, "fast"), Profile(longer, 2, "fast")) == (
        "load profiles differ: load.start_rate 0 (base) vs 10.5 (new)",
        "load profiles differ: load.stages [{duration: 30, target: 100}] (base) vs "
        "[{duration: 30, target: 100}, {duration: 60, target: 200}] (new)",
    )
    assert profile_warnings(Profile(ramp, 2, "fast"), Profile(ramp, 2, "fast")) == ()
    assert profile_warnings(None, Profile(ramp, 2, "fast")) == ()


# --- the table and the JSON agree -----------------------------------------------------------


def test_the_table_shows_what_the_json_says(
    tmp_path: Path, runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = runs
    new = write_run(
        tmp_path / "faster",
        {"same": lognormal_samples(5, 1000), "slow": lognormal_samples(6, 3000, scale=0.8)},
        errors={"slow": 30},
        seconds=3,
        run_id="r3",
        load_config=LOAD.model_copy(update={"rate": 300.0}),
    ).folder
    assert compare_command(base, new, ["p99=5%"], endpoint=None, json_out=True) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    compare_command(base, new, ["p99=5%"], endpoint=None, json_out=False)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"compare base {data['base']['run_id']} ({base}) vs new r3 ({new})"
    assert data["warnings"] == ["load profiles differ: load.rate 200 (base) vs 300 (new)"]
    assert [line for line in lines if line.startswith("warning")] == [
        f"warning: {text}" for text in data["warnings"]
    ]
    tables = table_rows(out)
    assert len(tables) == len(data["comparisons"]) == 2
    for comparison, rows in zip(data["comparisons"], tables, strict=True):
        assert f"{comparison['base']} (base) vs {comparison['new']} (new)" in out
        assert set(rows) == {f"{m} ms" for m in comparison["metrics"]} | {"req/s", "error rate"}
        for metric, change in comparison["metrics"].items():
            base_ms, new_ms, shown, interval = rows[f"{metric} ms"]
            assert float(base_ms) == pytest.approx(change["base_ms"], abs=0.0005)
            assert float(new_ms) == pytest.approx(change["new_ms"], abs=0.0005)
            assert percent(shown) == pytest.approx(change["change"], abs=0.0005)
            if change["ci_low"] is None:
                assert interval == ""
            else:
                low, high = interval.split(" .. ")
                assert percent(low) == pytest.approx(change["ci_low"], abs=0.0005)
                assert percent(high) == pytest.approx(change["ci_high"], abs=0.0005)
        rate, errors = comparison["throughput"], comparison["error_rate"]
        base_rps, new_rps, shown, _ = rows["req/s"]
        assert float(base_rps.replace(",", "")) == pytest.approx(rate["base_rps"], abs=0.05)
        assert float(new_rps.replace(",", "")) == pytest.approx(rate["new_rps"], abs=0.05)
        assert percent(shown) == pytest.approx(rate["change"], abs=0.0005)
        base_share, new_share, points, _ = rows["error rate"]
        assert percent(base_share) == pytest.approx(errors["base"], abs=0.00005)
        assert percent(new_share) == pytest.approx(errors["new"], abs=0.00005)
        assert float(points.removesuffix(" pp")) / 100 == pytest.approx(
            errors["difference"], abs=0.00005
        )
        counts = (
            f"requests: base {comparison['requests']['base']} ({comparison['errors']['base']} "
            f"errors), new {comparison['requests']['new']} ({comparison['errors']['new']} errors)"
        )
        assert counts in lines
    verdicts = [line for line in lines if line.startswith("verdict: ")]
    assert [v.split(" (")[0] for v in verdicts] == [
        f"verdict: {c['outcome']}" for c in data["comparisons"]
    ]
    # what was set: 1000 in 3 s, 3000 in 3 s with 30 errors; slow got 20% faster
    slow = data["comparisons"][1]
    assert slow["throughput"]["new_rps"] == 1000.0 and slow["error_rate"]["new"] == 0.01
    assert slow["outcome"] == "faster"


# --- --base-endpoint and --new-endpoint -------------------------------------------------------


def test_base_and_new_endpoint_compare_two_labels(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    status = compare_command(
        base,
        new,
        ["p50=10%"],
        endpoint=None,
        json_out=True,
        base_endpoint="same",
        new_endpoint="slow",
    )
    assert status == EXIT_FAILED  # base's "same" against new's 30% slower "slow"
    (comparison,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert (comparison["base"], comparison["new"]) == ("same", "slow")
    assert comparison["outcome"] == "slower, over limit"
    assert comparison["errors"] == {"base": 3, "new": 0}
    # given alone, either names the label on both sides, as --endpoint does
    for given in ({"base_endpoint": "same"}, {"new_endpoint": "same"}):
        assert compare_command(base, new, [], endpoint=None, json_out=True, **given) == EXIT_OK
        (comparison,) = json.loads(capsys.readouterr().out)["comparisons"]
        assert (comparison["base"], comparison["new"]) == ("same", "same")
    # a .hlog side is its one version, whatever the label asked of it
    status = compare_command(
        base / "same.hlog",
        new,
        [],
        endpoint=None,
        json_out=True,
        base_endpoint="x",
        new_endpoint="slow",
    )
    assert status == EXIT_OK  # slower, but no limit was set
    (comparison,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert (comparison["base"], comparison["new"]) == ("same", "slow")
    assert comparison["outcome"] == "slower, no limit set"


def test_two_variants_of_one_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = {"v1": lognormal_samples(2, 2000), "v2": lognormal_samples(3, 2000, 1.3)}
    run = write_run(tmp_path / "run", {"ep": samples}).folder
    status = main(
        ["compare", str(run), str(run), "--base-endpoint", "ep/v1", "--new-endpoint", "ep/v2"]
        + ["--max-regression", "p50=10%", "--json"]
    )
    assert status == EXIT_FAILED
    data = json.loads(capsys.readouterr().out)
    assert data["warnings"] == []  # one run: one profile
    (comparison,) = data["comparisons"]
    assert (comparison["base"], comparison["new"]) == ("ep/v1", "ep/v2")
    assert comparison["direction"] == "slower"
    assert comparison["throughput"]["base_rps"] == comparison["throughput"]["new_rps"] == 1000.0


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--base-endpoint", "x", "--new-endpoint", "slow"],
            '--base-endpoint: no endpoint "x" in {base}',
        ),
        (
            ["--base-endpoint", "same", "--new-endpoint", "x"],
            '--new-endpoint: no endpoint "x" in {new}',
        ),
        (["--new-endpoint", "x"], '--new-endpoint: no endpoint "x" in {base}'),
        (["--endpoint", "x"], '--endpoint: no endpoint "x" in {base}'),
    ],
)
def test_an_unknown_label_is_one_line_naming_the_flag(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], flags: list[str], problem: str
) -> None:
    base, new = runs
    assert main(["compare", str(base), str(new), *flags]) == EXIT_USAGE
    captured = capsys.readouterr()
    expected = f"error: {problem.format(base=base, new=new)} (have: same, slow)"
    assert captured.err.splitlines() == [expected] and captured.out == ""


def test_endpoint_with_base_or_new_endpoint_is_a_usage_error(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = runs
    for flag in ("--base-endpoint", "--new-endpoint"):
        assert main(["compare", str(base), str(new), "--endpoint", "same", flag, "slow"]) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [
            "error: --endpoint: not with --base-endpoint/--new-endpoint "
            "(--endpoint L is --base-endpoint L --new-endpoint L)"
        ]
    # the real process: exit 2 and one line, no traceback
    result = loadgen("compare", str(base), str(new), "--base-endpoint", "nope")
    assert result.returncode == EXIT_USAGE and result.stdout == ""
    assert result.stderr.splitlines() == [
        f'error: --base-endpoint: no endpoint "nope" in {base} (have: same, slow)'
    ]
