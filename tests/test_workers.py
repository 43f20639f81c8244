"""Worker processes: N engines merge into one result of the same shape as a 1-worker run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.summary import RunSummary, StopReason
from tests.servers import hlog_total, mock_process, scenario, wait_until_running
from tests.test_cli import fake_env

pytestmark = pytest.mark.usefixtures("fake_aws")


async def test_two_workers_split_an_open_loop_schedule_exactly(tmp_path: Path) -> None:
    with mock_process(tmp_path) as url:
        s = scenario(url, rate=300, duration="2s").model_copy(update={"workers": 2})
        result = await run_scenario(s, RunOptions(out=tmp_path / "out", quiet=True))
    summary = result.summary
    stats = summary.endpoints["ep"]
    assert summary.workers == 2 and summary.complete is True
    assert stats.requests == 600 and stats.ok == 600
    assert stats.correlation.matched == 600
    assert abs(summary.achieved_rate_rps - 300) / 300 < 0.02
    assert hlog_total(result.folder, "ep") == 600
    rows = (result.folder / "timeseries.csv").read_text().splitlines()[1:]
    assert sum(int(row.split(",")[2]) for row in rows) == 600
    seconds = [int(row.split(",")[0]) for row in rows]
    assert seconds == sorted(seconds) and len(seconds) == len(set(seconds))
    trace_ids = {slow.trace_id for slow in stats.slowest}
    assert len(trace_ids) == 20
    assert {t.split("-")[1] for t in trace_ids} <= {"000", "001"}  # worker number in the trace ID


async def test_two_workers_closed_loop_request_budget(tmp_path: Path) -> None:
    with mock_process(tmp_path) as url:
        raw = scenario(url, executor="constant-concurrency", concurrency=5, requests=101)
        result = await run_scenario(
            raw.model_copy(update={"workers": 2}), RunOptions(out=tmp_path / "o", quiet=True)
        )
    assert result.summary.endpoints["ep"].requests == 101
    assert result.summary.total.late_starts == 0


def worker_pids(parent: int) -> list[int]:
    """Children of `parent` that are multiprocessing workers (not its resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_a_crashed_worker_still_leaves_a_complete_results_folder(tmp_path: Path) -> None:
    with mock_process(tmp_path) as url:
        path = tmp_path / "s.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": "crash",
                    "endpoint_url": url,
                    "workers": 2,
                    "endpoints": [{"name": "ep"}],
                    "request": {"body": "{}"},
                    "load": {"executor": "constant-arrival-rate", "rate": 100, "duration": "60s"},
                }
            )
        )
        out = tmp_path / "out"
        process = subprocess.Popen(
            [sys.executable, "-m", "loadgen", "run", str(path), "--out", str(out), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=fake_env(),
        )
        wait_until_running(out)
        (victim, *_) = worker_pids(process.pid)
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 3, stderr
    assert "Traceback" not in stderr
    # --quiet still ends with the verdict line
    assert stdout.startswith("FAILED: a worker crashed: worker ") and str(out) in stdout
    (folder,) = out.iterdir()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.complete is False and summary.passed is False
    assert summary.stop_reason is StopReason.WORKER_CRASHED
    assert summary.stop_detail is not None and summary.stop_detail.startswith("worker ")
    assert summary.total.requests > 100
    assert summary.total.requests == summary.total.ok + sum(summary.total.errors.values())
