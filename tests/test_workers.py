"""Worker processes: N engines merge into one result of the same shape as a 1-worker run."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from loadgen.correlate import Echo
from loadgen.engine.context import RunContext
from loadgen.engine.core import Progress
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.engine.workers import Merged, Tick, WorkerPool
from loadgen.metrics import Interval, Recorder
from loadgen.scenario import EndpointConfig
from loadgen.summary import RunSummary, StopReason
from loadgen.transport.base import Outcome
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


async def test_messages_larger_than_the_socket_buffer_while_the_runner_is_busy(
    tmp_path: Path,
) -> None:
    """Ticks of 100 endpoints through 4 KiB socket buffers arrive in pieces, often while the
    runner's loop is blocked: no worker is taken for dead, and every request is counted once."""
    labels = [f"ep{number}" for number in range(100)]
    sample = Recorder(labels, start_ns=0)
    for label in labels:
        for value in range(1500, 11500, 1000):
            sample.record(label, Outcome(200), Echo.MATCHED, value, value, False, "t", 0)
    tick = Tick((), sample.take_state(), Progress(0, 0, 0.0))
    one_tick = len(pickle.dumps(tick, pickle.HIGHEST_PROTOCOL))
    with socket.socket(socket.AF_UNIX) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        buffer = probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)  # Linux doubles it
    assert one_tick > 4 * buffer  # several buffers' worth: a tick must arrive in pieces
    with mock_process(tmp_path) as url:
        raw = scenario(url, rate=1500, requests=3000)
        endpoints = [EndpointConfig(name=label) for label in labels]
        s = raw.model_copy(update={"workers": 2, "endpoints": endpoints})
        ctx = RunContext(s, "0000beef", url, shares=2)
        pool = WorkerPool(ctx, socket_buffer_bytes=4096)
        loop = asyncio.get_running_loop()
        blocked = 0

        def block() -> None:  # the runner busy in its own work: nothing is read meanwhile
            nonlocal blocked
            time.sleep(0.15)
            blocked += 1
            busy.handle = loop.call_later(0.1, block)

        busy = SimpleNamespace(handle=loop.call_later(0.1, block))
        closed: list[Interval] = []
        try:
            await pool.wait_ready()
            start_ns = pool.start()
            merged = Merged(Recorder(labels, start_ns))
            deadline = ctx.finish_deadline(time.monotonic() + 30)
            await pool.collect(merged, closed.append, asyncio.Event(), deadline)
        finally:
            busy.handle.cancel()
            await pool.close()
    assert merged.failure is None
    assert blocked >= 5
    assert merged.tester.sent == 3000
    endpoints_seen = merged.recorder.endpoints
    assert [endpoints_seen[label].stats.requests for label in labels] == [30] * 100
    assert merged.recorder.totals().ok == 3000
    # each second of each endpoint written once, in order, with every request in one
    assert sum(interval.requests for interval in closed) == 3000
    keys = [(interval.index, interval.label) for interval in closed]
    assert len(keys) == len(set(keys)) and [i for i, _ in keys] == sorted(i for i, _ in keys)
