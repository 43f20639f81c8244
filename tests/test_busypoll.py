"""busy_poll: the engine's loop polls without sleeping while its schedule runs, and the CPU
that polling burns is not reported as the tester's load."""

from __future__ import annotations

import asyncio
import io
import json
import resource
import time
from pathlib import Path

import pytest
from rich.console import Console

from loadgen import cli
from loadgen.console import print_summary
from loadgen.engine.busypoll import BusyPoll
from loadgen.scenario import ScenarioError, load_scenario
from loadgen.summary import RunSummary, WarningCode
from tests.servers import mock_process
from tests.test_warnings import delays, summary

RATE = 200
DURATION_S = 1.5


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def test_an_idle_loop_spins_and_its_turns_count_as_idle() -> None:
    """A sleeping loop burns next to no CPU over 0.3 s; a busy-polling one burns what the
    machine gives it, and nearly all of it in turns that only polled."""
    poll = BusyPoll(asyncio.get_running_loop())
    cpu_before, wall_before = cpu_s(), time.monotonic()
    poll.start()
    await asyncio.sleep(0.3)
    poll.stop()
    cpu, wall = cpu_s() - cpu_before, time.monotonic() - wall_before
    assert cpu > 0.25 * wall  # it spun
    assert poll.idle_ns / 1e9 > 0.5 * cpu  # and knew it was idle
    idle = poll.idle_ns
    await asyncio.sleep(0.05)
    assert poll.idle_ns == idle  # stopped: no turn runs any more


async def test_turns_that_do_work_are_not_idle() -> None:
    """Every turn runs 50 µs of work: none is counted idle, however long it spins."""
    loop = asyncio.get_running_loop()
    poll = BusyPoll(loop)
    done = loop.create_future()
    deadline = time.monotonic_ns() + 200_000_000
    turns = 0

    def work() -> None:
        nonlocal turns
        turns += 1
        until = time.monotonic_ns() + 50_000
        while time.monotonic_ns() < until:
            pass
        if time.monotonic_ns() < deadline:
            loop.call_soon(work)
        else:
            done.set_result(None)

    poll.start()
    loop.call_soon(work)
    await done
    poll.stop()
    assert turns > 100
    assert poll.idle_ns < 0.05 * 200_000_000


def test_the_flag_sets_the_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        json.dumps(
            {
                "name": "s",
                "endpoints": [{"name": "ep"}],
                "request": {"body": "{}"},
                "load": {"executor": "constant-arrival-rate", "rate": 10, "duration": "1s"},
            }
        )
    )
    assert load_scenario(path).busy_poll is False
    assert load_scenario(path, {"--busy-poll": True}).busy_poll is True
    data = json.loads(path.read_text()) | {"busy_poll": "sometimes"}
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError) as refused:
        load_scenario(path)
    assert str(refused.value).splitlines()[-1].startswith("busy_poll: ")


def test_a_tester_behind_names_busy_poll_until_it_is_on() -> None:
    (off,) = summary(start_delay_ms=delays(40.0)).warnings
    assert off.code is WarningCode.TESTER_BEHIND
    assert "busy_poll: true (or --busy-poll)" in off.message
    (on,) = summary(start_delay_ms=delays(40.0), busy_poll=True).warnings
    assert "busy_poll" not in on.message and "workers: auto" in on.message


@pytest.mark.usefixtures("fake_aws")
def test_a_busy_polling_run_spins_says_so_everywhere_and_reports_its_own_load(
    tmp_path: Path,
) -> None:
    """200 req/s for 1.5 s with --busy-poll: every request sent and echoed; the process
    burned CPU polling (a sleeping tester uses a few percent at this rate), and tester_cpu
    leaves that out. Every view names the busy polling, from the summary's placement."""
    path = tmp_path / "poll.yaml"
    out = tmp_path / "out"
    with mock_process(tmp_path) as url:
        path.write_text(
            json.dumps(
                {
                    "name": "poll",
                    "endpoint_url": url,
                    "region": "us-east-1",
                    "endpoints": [{"name": "ep"}],
                    "request": {"body": "{}", "custom_attributes": "trace={trace_id}"},
                    "load": {
                        "executor": "constant-arrival-rate",
                        "rate": RATE,
                        "duration": f"{DURATION_S}s",
                    },
                }
            )
        )
        cpu_before = cpu_s()
        code = cli.main(["run", str(path), "--busy-poll", "--quiet", "--out", str(out)])
        cpu = cpu_s() - cpu_before
    assert code == 0
    (folder,) = out.iterdir()
    run = RunSummary.load(folder / "summary.json")
    assert run.busy_poll is True
    assert run.total.requests == run.total.correlation.matched == RATE * DURATION_S
    assert cpu > 0.3 * DURATION_S  # it spun through the schedule
    assert run.tester_cpu < 0.25  # and the spinning is not the tester's load
    assert run.placement == "1 process, busy-polling"
    assert "1 process, busy-polling." in (folder / "summary.md").read_text()
    assert "1 process, busy-polling" in (folder / "report.html").read_text()
    header = io.StringIO()
    print_summary(run, Console(file=header, width=200))
    assert "1 process, busy-polling" in header.getvalue().splitlines()[0]
