"""capacity-search: the search's arithmetic in virtual time, a search against an endpoint of
exactly known capacity (the mock as a queue of model copies), and every view of what it
found (summary.json, histograms.json, summary.md, the report, the gate, `loadgen compare`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from loadgen import cli
from loadgen.engine import core
from loadgen.engine.capacity import judge_step
from loadgen.engine.runner import RunOptions, RunResult, run_scenario
from loadgen.engine.search import MAX_HALVINGS, Search, between
from loadgen.gates import check_capacity
from loadgen.histograms import RunHistograms
from loadgen.metrics import Stats
from loadgen.results.report import render_report
from loadgen.results.rundata import load_run
from loadgen.results.svg import CAPACITY_CHART_ID
from loadgen.scenario import Slo, Thresholds, scenario_from_dict
from loadgen.summary import (
    CapacityStep,
    CapacitySummary,
    RunSummary,
    StopReason,
    Verdict,
    knee_rate,
)
from loadgen.transport.base import Outcome
from tests.test_mock_capacity import stream_scenario

SERVICE_MS = 10.0
COPIES = 2
TRUE_CAPACITY = COPIES * 1000 / SERVICE_MS  # 200 req/s: each copy serves 100 a second


# --- the search, in virtual time: a verdict per rate, no endpoint ------------------------------


def search_against(capacity: float, start: float, most: float, precision: float) -> Search:
    """Run a search against an endpoint good exactly up to `capacity`; its steps' rates in
    `search.tried`."""
    search = Search(start, most, precision)
    tried: list[float] = []
    while (rate := search.next_rate) is not None:
        tried.append(rate)
        search.record(rate, rate <= capacity)
        assert len(tried) <= search.most_steps(start)  # bounded, whatever the capacity
    search.tried = tried  # type: ignore[attr-defined]
    return search


@pytest.mark.parametrize("capacity", [7.0, 50.0, 199.0, 200.0, 333.3, 1000.0, 1499.0])
@pytest.mark.parametrize("precision", [0.05, 0.01])
def test_the_search_ends_within_precision_of_the_capacity(
    capacity: float, precision: float
) -> None:
    """Doubling from 10, bisecting: the last good rate is at most the capacity and the first
    bad one above it, within `precision` of the good one."""
    search = search_against(capacity, 10.0, 1500.0, precision)
    good, bad = search.good_rate, search.bad_rate
    assert good is not None and bad is not None and not search.stopped_at_max_rate
    assert good <= capacity < bad
    assert bad - good <= precision * good
    tried = search.tried  # type: ignore[attr-defined]
    doublings = [min(10.0 * 2**n, 1500.0) for n in range(len(tried))]
    first_bad = next(index for index, rate in enumerate(tried) if rate > capacity)
    assert tried[: first_bad + 1] == doublings[: first_bad + 1] or capacity < 10.0


def test_the_search_doubles_then_bisects_step_by_step() -> None:
    """Capacity 200 from 50: 50, 100, 200 good, 400 bad; then midpoints 300, 250, 225,
    212.5 (all bad), 206.2 (good): 212.5 - 206.2 = 6.3 <= 5% of 206.2 (10.3), the end."""
    search = search_against(200.0, 50.0, 800.0, 0.05)
    assert search.tried == [50, 100, 200, 400, 300, 250, 225, 212.5, 206.2]  # type: ignore[attr-defined]
    assert search.good_rate == 200.0  # 206.2 is bad here: 200 is the capacity
    assert between(200.0, 212.5) == 206.2  # rounded to 4 significant digits


def test_the_search_stops_at_max_rate_and_says_so() -> None:
    search = search_against(10_000.0, 50.0, 300.0, 0.05)
    assert search.tried == [50, 100, 200, 300]  # type: ignore[attr-defined]
    assert search.stopped_at_max_rate and search.good_rate == 300.0 and search.bad_rate is None


def test_when_even_the_start_rate_is_bad_the_search_halves_then_bisects() -> None:
    search = search_against(30.0, 100.0, 800.0, 0.05)
    tried = search.tried  # type: ignore[attr-defined]
    assert tried[:3] == [100.0, 50.0, 25.0]  # halved until good
    assert search.good_rate is not None and 30.0 / 1.05 <= search.good_rate <= 30.0
    nothing = search_against(0.001, 100.0, 800.0, 0.05)
    assert nothing.good_rate is None and nothing.next_rate is None
    assert len(nothing.tried) == 1 + MAX_HALVINGS  # type: ignore[attr-defined]


# --- judging a step -------------------------------------------------------------------------


def sends_late_by(delays_ms: list[float]) -> core.TesterStats:
    """A step of 1,000 requests due every 2 ms (500 req/s), each sent `delays_ms[i]` late."""
    tester = core.TesterStats()
    sent_ns = [i * 2_000_000 + int(delay * 1e6) for i, delay in enumerate(delays_ms)]
    tester.sent, tester.first_sent_ns, tester.last_sent_ns = (
        len(sent_ns),
        min(sent_ns),
        max(sent_ns),
    )
    for delay in delays_ms:
        if delay * 1000 > 0:
            tester.late_start_delays.append(int(delay * 1000))
        else:
            tester.on_time_starts += 1
    return tester


def judged(tester: core.TesterStats) -> CapacityStep:
    stats = Stats()
    for _ in range(tester.sent):
        stats.record(Outcome(status=200), None, 5_000, 5_000, False)
    slo = Slo(latency_ms={"p99": 250.0})
    return judge_step("step-01@500rps", 500.0, 500.0, stats, tester, 2.0, slo, True)


def test_a_step_is_bad_for_the_rate_only_when_the_tester_fell_behind_it() -> None:
    """A 30 ms stall before the last 15 sends cuts the first-to-last-send rate to 98.5%, but
    leaves 98.5% of starts on time: the endpoint was offered the rate, and the step is good.
    Sending at 98% throughout (the last 40 ms late, the median 20 ms) is behind: bad."""
    stalled = [0.0] * 985 + [30.0 - 2.0 * i for i in range(15)]
    stalled[-1] = 30.0  # the last send, as late as the stall
    tester = sends_late_by(stalled)
    assert tester.achieved_rate() < 0.99 * 500
    assert judged(tester).good
    behind = sends_late_by([i * 2.0 * (1 / 0.98 - 1) for i in range(1000)])
    step = judged(behind)
    assert not step.good
    (failure,) = step.failures
    assert failure.startswith(
        "achieved 490.0 req/s, 98% of the 500.0 scheduled, start delay p50 20.4 ms"
    )
    assert judged(sends_late_by([0.0] * 1000)).good


# --- the knee -----------------------------------------------------------------------------------


def step(rate: float, p50: float, good: bool = True) -> CapacityStep:
    return CapacityStep(
        label=f"step@{rate:g}",
        rate=rate,
        achieved_rps=rate,
        requests=100,
        p50_ms=p50,
        p99_ms=2 * p50,
        error_rate=0.0,
        failures=() if good else ("latency_ms.p99 observed 1000, limit <= 50",),
    )


def test_the_knee_is_the_last_rate_before_p50_rises_by_half() -> None:
    """Run order does not matter; the floor is the lowest rate's p50 (10 ms); 400's 14.9 ms
    has not risen by half, 450's 15.1 ms has: the knee is 400."""
    steps = (step(100, 10.0), step(800, 90.0, False), step(400, 14.9), step(450, 15.1, False))
    assert knee_rate(steps) == 400
    assert knee_rate((step(100, 10.0), step(200, 10.4))) is None  # flat: no knee
    assert knee_rate((step(100, 0.2), step(200, 0.5))) is None  # under 1 ms more: noise
    assert knee_rate((step(100, 0.2), step(200, 1.5))) == 100


# --- against an endpoint of known capacity ------------------------------------------------------


def capacity_scenario(**load: Any) -> dict[str, Any]:
    """The mock as COPIES copies of SERVICE_MS each, queued: TRUE_CAPACITY req/s."""
    return {
        "name": "capacity-test",
        "region": "us-east-1",
        "endpoint_url": "mock",
        "endpoints": [{"name": "ep"}],
        "request": {"body": "{}"},
        "load": {
            "executor": "capacity-search",
            "start_rate": 100,
            "max_rate": 800,
            "step_duration": "0.8s",  # 1% of a step is 8 ms: a busy machine's stall fits
            # p90: a step of a few hundred requests has a p99 that one stall decides
            "slo": {"latency_ms": {"p90": 4 * SERVICE_MS}},
            "timeout": "5s",
        }
        | load,
        "thresholds": {"min_capacity_rps": 150},
        "mock": {
            "latency_ms": {"median": SERVICE_MS, "p99": SERVICE_MS},
            "capacity": {"copies": COPIES},
        },
    }


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunResult]:
    """One search against the queue (about 8 s); the views below read its folder."""
    out = tmp_path_factory.mktemp("known")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        scenario = scenario_from_dict(capacity_scenario())
        yield uvloop.run(run_scenario(scenario, RunOptions(out=out, quiet=True)))


def test_finds_a_known_capacity_within_10_percent_in_bounded_steps(known: RunResult) -> None:
    capacity = known.summary.capacity
    assert capacity is not None and capacity.max_rate_rps is not None
    assert abs(capacity.max_rate_rps / TRUE_CAPACITY - 1) <= 0.10, capacity.steps
    rates = [step.rate for step in capacity.steps]
    assert rates[:3] == [100, 200, 400] or rates[:2] == [100, 200]  # doubling
    assert len(rates) <= Search(100, 800, 0.05).most_steps(100)
    assert not capacity.stopped_at_max_rate
    assert all(step.good for step in capacity.steps if step.rate <= 0.9 * TRUE_CAPACITY)
    overloaded = [step for step in capacity.steps if step.rate >= 1.2 * TRUE_CAPACITY]
    assert overloaded and not any(step.good for step in overloaded)
    assert all("latency_ms.p90 observed" in step.failures[0] for step in overloaded)
    # every request of every step is in the run's totals; probes are counted apart
    assert known.summary.total.requests == sum(step.requests for step in capacity.steps)
    assert capacity.probe_requests >= 5 * len(capacity.steps)  # one probe before each step
    assert known.exit_code == 0 and known.summary.thresholds[-1].metric == "capacity_rps"


def test_summary_json_holds_the_capacity_and_reads_back(known: RunResult) -> None:
    data = json.loads((known.folder / "summary.json").read_text())
    capacity = data["capacity"]
    assert list(capacity)[0] == "max_rate_rps"
    assert {"max_rate_rps", "slo", "precision", "steps", "knee_rate_rps"} <= set(capacity)
    assert capacity["slo"] == {"latency_ms": {"p90": 40.0}, "ttft_ms": {}, "error_rate": 0.01}
    assert capacity["precision"] == 0.05
    first = capacity["steps"][0]
    assert {"rate", "achieved_rps", "p50_ms", "p99_ms", "error_rate", "good"} <= set(first)
    assert first["label"] == "step-01@100rps" and first["good"] is True
    loaded = RunSummary.load(known.folder / "summary.json")
    assert loaded.capacity == known.summary.capacity
    assert loaded.capacity is not None
    assert capacity["max_rate_rps"] == loaded.capacity.max_rate_rps
    assert capacity["knee_rate_rps"] == loaded.capacity.knee_rate_rps
    assert loaded.capacity.knee_rate_rps is not None
    assert loaded.capacity.knee_rate_rps <= TRUE_CAPACITY * 1.1


def test_each_step_has_its_histograms_as_an_endpoint_has(known: RunResult) -> None:
    histograms = RunHistograms.load(known.folder / "histograms.json")
    capacity = known.summary.capacity
    assert capacity is not None
    labels = [step.label for step in capacity.steps]
    assert set(histograms.endpoints) == {"ep", *labels}
    for step in capacity.steps:
        assert histograms.endpoints[step.label].latency.get_total_count() == step.requests
    assert sum(histograms.endpoints[label].latency.get_total_count() for label in labels) == (
        histograms.endpoints["ep"].latency.get_total_count()
    )


def test_the_report_and_summary_md_show_the_search(known: RunResult) -> None:
    capacity = known.summary.capacity
    assert capacity is not None
    page = render_report(load_run(known.folder))
    assert f'<svg id="{CAPACITY_CHART_ID}"' in page
    assert f"capacity {capacity.max_rate_rps:g} req/s" in page  # its vertical line
    assert "SLO p90 40 ms" in page  # the SLO line
    assert all(step.label in page for step in capacity.steps)
    markdown = (known.folder / "summary.md").read_text()
    assert "### Capacity" in markdown and f"capacity: {capacity.text}" in markdown
    assert markdown.count("| `step-") == len(capacity.steps)


def test_compare_prints_the_capacity_change_and_fails_on_a_drop(
    known: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run against itself: no change, passes with a 5% limit. Against a copy whose steps
    were 10% slower to break (rates scaled by 0.9): a drop of 10%, exit 1."""
    base = known.folder
    lower = tmp_path / "lower"
    shutil.copytree(base, lower)
    data = json.loads((lower / "summary.json").read_text())
    for entry in data["capacity"]["steps"]:
        entry["rate"] *= 0.9
    (lower / "summary.json").write_text(json.dumps(data))
    capacity = known.summary.capacity
    assert capacity is not None and capacity.max_rate_rps is not None
    found = capacity.max_rate_rps

    assert cli.main(["compare", str(base), str(base), "--max-regression", "capacity=5%"]) == 0
    out = capsys.readouterr().out
    assert f"capacity: base {found:g} req/s, new {found:g} req/s (+0.0%)" in out
    assert "limit: a drop of at most 5%: passed" in out
    assert "step-01" not in out  # steps pair only when chosen: the endpoint is compared

    code = cli.main(["compare", str(base), str(lower), "--max-regression", "capacity=5%"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"new {found * 0.9:g} req/s (-10.0%)" in out and "FAILED" in out
    assert cli.main(["compare", str(base), str(lower), "--max-regression", "capacity=15%"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", str(base), str(lower), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["capacity"]["change"] == pytest.approx(-0.1)
    assert report["capacity"]["failed"] is False  # no limit given

    step = capacity.steps[0].label
    assert cli.main(["compare", str(base), str(lower), "--endpoint", step]) == 0
    assert f"{step} (base) vs {step} (new)" in capsys.readouterr().out


def test_a_capacity_limit_needs_two_capacity_runs(
    known: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_report import make_run

    other = make_run(tmp_path / "plain", labels=("ep",))
    code = cli.main(["compare", str(other), str(known.folder), "--max-regression", "capacity=5%"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert lines == [
        f"error: --max-regression capacity: {other} is not a capacity-search run "
        "(its summary.json has no capacity)"
    ]


# --- the gate -----------------------------------------------------------------------------------


def test_min_capacity_rps_passes_at_and_fails_below_the_limit() -> None:
    slo = Slo(latency_ms={"p99": 50})
    found = CapacitySummary(
        slo=slo,
        precision=0.05,
        steps=(step(100, 10), step(200, 80, False)),
        stopped_at_max_rate=False,
    )
    (met,) = check_capacity(Thresholds(min_capacity_rps=100), ["ep"], found)
    assert met.passed and met.observed == 100 and met.name == "ep: capacity_rps >= 100"
    (missed,) = check_capacity(Thresholds(min_capacity_rps=150), ["ep"], found)
    assert not missed.passed
    verdict = Verdict.of(StopReason.COMPLETED, None, (missed,), ())
    assert verdict.exit_code == 1
    assert verdict.reasons == ("ep: capacity_rps observed 100, limit >= 150",)
    none = CapacitySummary(
        slo=slo, precision=0.05, steps=(step(100, 90, False),), stopped_at_max_rate=False
    )
    (nothing,) = check_capacity(Thresholds(min_capacity_rps=1), ["ep"], none)
    assert nothing.observed == 0 and not nothing.passed
    assert none.text == "below 100 req/s: no step met the SLO"
    assert check_capacity(Thresholds(), ["ep"], found) == ()


# --- an endpoint that never breaks the SLO -------------------------------------------------------


def test_stops_at_max_rate_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_aws: None
) -> None:
    """No queue and no service time, and a p99 limit of a second: 100, 200, 400 req/s are
    all good; the search stops at max_rate, and says so as each step ends (stderr) and
    after the run (stdout).

    A step is also bad when the tester fell behind its rate (under 99%, the median start
    late), which a machine loaded enough can make it. So the SLO must fail no step, stderr
    and stdout must say what the search found whatever it was, and it stops at max_rate,
    with the words for it, exactly when every step kept its rate."""
    data = capacity_scenario(start_rate=100, step_duration="0.4s", max_rate=400)
    data["load"]["slo"] = {"latency_ms": {"p99": 1000}}
    data["mock"] = {"latency_ms": {"median": 0, "p99": 0}}
    del data["thresholds"]  # the exit code is the run's, not where a noisy search ended
    path = tmp_path / "never.yaml"
    path.write_text(json.dumps(data))
    code = cli.main(["run", str(path), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (folder,) = (tmp_path / "out").iterdir()
    capacity = RunSummary.load(folder / "summary.json").capacity
    assert capacity is not None
    steps = [line for line in captured.err.splitlines() if line.startswith("step-")]
    assert [line.split()[0] for line in steps] == [step.label for step in capacity.steps]
    assert [line.endswith("good") for line in steps] == [step.good for step in capacity.steps]
    assert all(
        failure.startswith("achieved ") for step in capacity.steps for failure in step.failures
    )
    assert f"capacity: {capacity.text}" in captured.out
    kept = all(step.good for step in capacity.steps)
    assert kept == capacity.stopped_at_max_rate
    if kept:
        assert [step.rate for step in capacity.steps] == [100, 200, 400]
        assert "capacity: at least 400 req/s: the SLO held at load.max_rate" in captured.out
        assert capacity.max_rate_rps == 400


# --- streams --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_aws")
@pytest.mark.parametrize(("limit", "good"), [(1000, True), (3, False)])
async def test_a_streaming_search_judges_ttft(tmp_path: Path, limit: float, good: bool) -> None:
    """TTFT is 5 ms at any rate here: a 1 s limit holds at max_rate (one step), a 3 ms one
    fails at every rate, halving until the search gives up.

    A step is also bad when the tester fell behind its rate (under 99%, the median start
    late), which a machine loaded enough can make it; the search then halves and bisects.
    That is the machine's verdict, not the TTFT's: the 1 s limit must fail no step, and the
    search must end at max_rate in one step exactly when the first step kept its rate."""
    load = {
        "executor": "capacity-search",
        "start_rate": 100,
        "max_rate": 100,
        "step_duration": "0.3s" if good else "0.1s",
        "slo": {"ttft_ms": {"p99": limit}},
    }
    result = await run_scenario(
        scenario_from_dict(stream_scenario(load, ttft_ms=5)), RunOptions(out=tmp_path, quiet=True)
    )
    capacity = result.summary.capacity
    assert capacity is not None
    steps = capacity.steps
    assert all(step.ttft_p99_ms is not None and step.ttft_p99_ms >= 4.9 for step in steps)
    if good:
        assert all(failure.startswith("achieved ") for step in steps for failure in step.failures)
        assert steps[0].rate == 100 and capacity.max_rate_rps is not None
        assert (len(steps) == 1) == capacity.stopped_at_max_rate == steps[0].good
    else:
        assert [step.rate for step in steps] == [100 / 2**n for n in range(1 + MAX_HALVINGS)]
        assert all(step.failures[0].startswith("ttft_ms.p99 observed") for step in steps)
        assert capacity.max_rate_rps is None and capacity.text.startswith("below 3.125 req/s")
