"""CI gates: thresholds, exit codes, junit.xml, summary.md, --json and abort_on_fail."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from loadgen.gates import check_endpoint, limits_for
from loadgen.scenario import Thresholds
from loadgen.summary import ComparisonOutcome, RunSummary, StopReason, TrafficSummary
from tests.test_cli import QUICKSTART, loadgen, write


def stats(**overrides: object) -> TrafficSummary:
    base: dict[str, object] = {
        "requests": 1000,
        "ok": 990,
        "errors": {"ThrottlingException": 4, "ModelError": 6},
        "throughput_rps": 100.0,
        "late_starts": 5,
        "latency_ms": {
            "p50": 20.0,
            "p90": 40.0,
            "p95": 50.0,
            "p99": 90.0,
            "p999": 120.0,
            "max": 150.0,
            "mean": 25.0,
        },
        "service_time_ms": {
            "p50": 19.0,
            "p90": 39.0,
            "p95": 49.0,
            "p99": 80.0,
            "p999": 110.0,
            "max": 140.0,
            "mean": 24.0,
        },
        "correlation": {"matched": 985, "mismatched": 3, "missing": 2, "samples": []},
        "model_error_status": {"500": 6},
        "out_of_range": 0,
    }
    return TrafficSummary.model_validate(base | overrides)


def test_each_limit_is_checked_with_its_observed_value() -> None:
    thresholds = Thresholds.model_validate(
        {
            "latency_ms": {"p99": 100, "p50": 10},
            "service_time_ms": {"max": 200},
            "error_rate": 0.02,
            "error_rates": {"ThrottlingException": 0.001},
            "min_throughput_rps": 150,
            "late_start_rate": 0.01,
            "missing_rate": 0.01,
        }
    )
    results = {r.metric: r for r in check_endpoint("ep", limits_for(thresholds, "ep"), stats())}
    assert results["latency_ms.p99"].passed and results["latency_ms.p99"].observed == 90.0
    assert not results["latency_ms.p50"].passed
    assert results["service_time_ms.max"].passed
    assert results["error_rate"].passed and results["error_rate"].observed == 0.01
    assert not results["error_rates.ThrottlingException"].passed
    assert results["error_rates.ThrottlingException"].observed == 0.004
    assert not results["throughput_rps"].passed and results["throughput_rps"].comparator == ">="
    assert results["late_start_rate"].passed
    assert not results["mismatch_rate"].passed  # the default: any mismatch fails
    assert results["missing_rate"].passed
    assert results["latency_ms.p50"].name == "ep: latency_ms.p50 <= 10"


def test_per_endpoint_limits_lay_over_the_global_ones() -> None:
    thresholds = Thresholds.model_validate(
        {
            "latency_ms": {"p99": 100},
            "error_rate": 0.01,
            "endpoints": {"slow": {"latency_ms": {"p99": 500, "p50": 30}}},
        }
    )
    slow = limits_for(thresholds, "slow")
    assert (
        slow.latency_ms == {"p99": 500, "p50": 30}
        and slow.error_rate == 0.01
        and slow.mismatch_rate == 0
    )
    assert limits_for(thresholds, "other").latency_ms == {"p99": 100}


def _scenario(tmp_path: Path, thresholds: dict, **mock: object) -> Path:
    data = yaml.safe_load(QUICKSTART.read_text())
    data["thresholds"] = thresholds
    data["mock"] = data["mock"] | mock
    return write(tmp_path, data)


def test_met_thresholds_exit_0_and_missed_ones_exit_1_named_in_output_and_junit(
    tmp_path: Path,
) -> None:
    passing = _scenario(tmp_path, {"latency_ms": {"p50": 500}, "error_rate": 0.5})
    result = loadgen("run", str(passing), "--duration", "1s", "--out", str(tmp_path / "pass"))
    assert result.returncode == 0, result.stderr

    failing = _scenario(
        tmp_path,
        {"latency_ms": {"p50": 500}, "endpoints": {"churn-v1": {"latency_ms": {"p50": 5}}}},
    )
    out = tmp_path / "fail"
    result = loadgen("run", str(failing), "--duration", "1s", "--out", str(out))
    assert result.returncode == 1, result.stderr
    assert "FAIL" in result.stdout and "latency_ms.p50 <= 5" in result.stdout
    (folder,) = out.iterdir()
    suite = ET.parse(folder / "junit.xml").getroot()
    failures = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == ["churn-v1: latency_ms.p50 <= 5"]
    assert "observed" in failures[0].find("failure").get("message")
    assert suite.get("failures") == "1"
    markdown = (folder / "summary.md").read_text()
    assert markdown.startswith("## loadgen: quickstart FAILED") and "**FAIL**" in markdown
    summary = RunSummary.load(folder / "summary.json")
    assert summary.passed is False and summary.verdict.exit_code == 1
    assert sum(not t.passed for t in summary.thresholds) == 1


def test_json_flag_prints_the_summary(tmp_path: Path) -> None:
    result = loadgen("run", str(QUICKSTART), "--duration", "1s", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    (folder,) = tmp_path.iterdir()
    assert result.stdout == (folder / "summary.json").read_text()
    assert result.stderr.startswith("PASSED")  # the verdict line, off stdout


def test_abort_on_fail_stops_within_grace_plus_a_second(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path, {"abort_on_fail": {"error_rate": 0.5, "grace": "2s"}}, error_rate=1.0
    )
    started = time.monotonic()
    result = loadgen("run", str(path), "--duration", "30s", "--out", str(tmp_path / "out"))
    wall = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    (folder,) = (tmp_path / "out").iterdir()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.complete is False and summary.stop_reason is StopReason.ABORTED
    assert summary.stop_detail is not None
    assert summary.stop_detail.startswith("error rate 100.0% above 50.0% for 2s")
    assert summary.duration_s <= 3.0
    assert wall < 15
    assert "FAILED: aborted by abort_on_fail: error rate 100.0%" in result.stdout


def test_in_run_variant_comparison_fails_a_30_percent_regression(tmp_path: Path) -> None:
    ab = QUICKSTART.parent / "ab-variants.yaml"
    out = tmp_path / "ab"
    result = loadgen("run", str(ab), "--duration", "5s", "--out", str(out))
    assert result.returncode == 1, result.stderr
    assert "compare churn/green vs churn/blue: slower, over limit" in result.stdout
    (folder,) = out.iterdir()
    summary = RunSummary.load(folder / "summary.json")
    (comparison,) = summary.comparisons
    assert comparison.outcome is ComparisonOutcome.SLOWER_OVER_LIMIT
    assert any(limit.failed for limit in comparison.limits) and not comparison.passed
    suite = ET.parse(folder / "junit.xml").getroot()
    assert [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None] == [
        "churn/green vs churn/blue"
    ]


def test_compare_command_on_two_runs_of_the_same_endpoint(tmp_path: Path) -> None:
    for name in ("base", "new"):
        result = loadgen(
            "run", str(QUICKSTART), "--duration", "2s", "--out", str(tmp_path / name), "--quiet"
        )
        assert result.returncode == 0, result.stderr
    (base,) = (tmp_path / "base").iterdir()
    (new,) = (tmp_path / "new").iterdir()
    result = loadgen("compare", str(base), str(new), "--max-regression", "p99=50%", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    data = json.loads(result.stdout)
    assert {c["base"] for c in data["comparisons"]} == {"churn-v1", "churn-v2/canary"}
    assert data["passed"] is True
    result = loadgen("compare", str(base), str(tmp_path / "nope"))
    assert result.returncode == 2 and "nope" in result.stderr and "Traceback" not in result.stderr
