"""The run's warnings: each names what happened, the cause and the fix, from the summary's
own facts, so every view (console, summary.json, summary.md, junit, report) agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.metrics import Recorder
from loadgen.mock.config import MockConfig
from loadgen.mock.server import start_mock
from loadgen.scenario import ConstantConcurrency
from loadgen.summary import LatencyStats, RunSummary, WarningCode
from tests.servers import scenario
from tests.summaries import LOAD, summary_of


def summary(**fields: Any) -> RunSummary:
    recorder = Recorder(["ep"], start_ns=0)
    return summary_of(recorder, 10.0, **fields)


def codes(run: RunSummary) -> list[WarningCode]:
    return [warning.code for warning in run.warnings]


def delays(p99_ms: float) -> LatencyStats:
    return LatencyStats(p50=0, p90=0, p95=0, p99=p99_ms, p999=p99_ms, max=p99_ms, mean=0)


def test_a_run_that_kept_its_schedule_has_no_warning() -> None:
    assert summary(achieved_rate_rps=199.5).warnings == ()


def test_a_tester_behind_with_free_slots_names_workers_and_the_rate() -> None:
    """Starts 40 ms late at p99 while max_in_flight was never full: the tester is the cause."""
    (warning,) = summary(start_delay_ms=delays(40.0)).warnings
    assert warning.code is WarningCode.TESTER_BEHIND
    assert "start delay p99 40.0 ms" in warning.message
    assert "workers: auto" in warning.message and "a lower rate" in warning.message
    (more,) = summary(start_delay_ms=delays(40.0), workers=4).warnings
    assert "more than 4 workers" in more.message


def test_max_in_flight_full_is_the_cause_named_instead_of_the_tester() -> None:
    run = summary(achieved_rate_rps=120.0, max_in_flight_full_s=6.5)
    assert codes(run) == [WarningCode.RATE_BELOW_TARGET, WarningCode.MAX_IN_FLIGHT_FULL]
    below, full = run.warnings
    assert below.message.startswith("achieved 120.0 req/s, 60% of the requested 200.0 req/s")
    assert full.message.startswith(
        "load.max_in_flight (256) was full for 6.5 s of the 10.0 s run (65%)"
    )


def test_late_starts_over_one_percent() -> None:
    recorder = Recorder(["ep"], start_ns=0)
    run = summary_of(recorder, 10.0)
    total = run.total.model_copy(update={"requests": 1000, "late_starts": 11})
    late = run.model_copy(update={"total": total})
    assert codes(late) == [WarningCode.LATE_STARTS]
    assert late.warnings[0].message.startswith("11 of 1,000 starts (1%) were more than 1 ms late")
    on_time = run.model_copy(update={"total": total.model_copy(update={"late_starts": 10})})
    assert on_time.warnings == ()


def test_an_overrun_beyond_the_timeout() -> None:
    """A 10 s schedule with a 10 s timeout: 20.5 s is an overrun, 19.9 s is not."""
    assert codes(summary(duration_s=20.5)) == [WarningCode.OVERRUN]
    assert (
        "the run took 20.5 s for a 10.0 s schedule" in summary(duration_s=20.5).warnings[0].message
    )
    assert summary(duration_s=19.9).warnings == ()
    by_count = LOAD.model_copy(update={"duration": None, "requests": 400})  # 2 s at 200/s
    assert codes(summary(load_config=by_count, duration_s=12.5)) == [WarningCode.OVERRUN]


def test_a_saturated_tester_cpu_says_add_workers() -> None:
    (warning,) = summary(tester_cpu=0.97).warnings
    assert warning.code is WarningCode.TESTER_CPU_SATURATED
    assert "97% of a core" in warning.message and "Add workers" in warning.message
    assert summary(tester_cpu=0.89).warnings == ()


def test_a_closed_loop_has_no_schedule_to_fall_behind() -> None:
    closed = ConstantConcurrency(executor="constant-concurrency", concurrency=8, duration=10)
    run = summary(load_config=closed, target_rate_rps=None, start_delay_ms=delays(40.0))
    assert run.warnings == ()


@pytest.mark.usefixtures("fake_aws")
async def test_a_container_that_never_echoes_gets_the_hint(tmp_path: Path) -> None:
    mock = await start_mock(MockConfig(echo=""))
    try:
        result = await run_scenario(
            scenario(mock.url, rate=200, requests=50), RunOptions(out=tmp_path, quiet=True)
        )
    finally:
        await mock.close()
    run = result.summary
    assert run.total.correlation.missing == run.total.ok == 50
    (warning,) = [w for w in run.warnings if w.code is WarningCode.ECHOES_MISSING]
    assert "does the container set X-Amzn-SageMaker-Custom-Attributes?" in warning.message
    assert "(50 missing)" in warning.message
    assert run.tester_cpu > 0  # measured, from the process's CPU time


@pytest.mark.usefixtures("fake_aws")
async def test_an_echoing_container_gets_no_hint(tmp_path: Path) -> None:
    mock = await start_mock(MockConfig())
    try:
        result = await run_scenario(
            scenario(mock.url, rate=200, requests=50), RunOptions(out=tmp_path, quiet=True)
        )
    finally:
        await mock.close()
    assert WarningCode.ECHOES_MISSING not in codes(result.summary)
    assert result.summary.total.correlation.matched == 50
