"""trace-replay: requests start at a trace file's offsets (CSV or JSON lines), to each row's
endpoint with each row's body when it names them; late starts are counted as for any open
loop, and workers' engines split the trace row by row."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiohttp import web

from loadgen.engine.arrivals import EARLY_NS
from loadgen.engine.context import RunContext
from loadgen.engine.core import LATE_NS
from loadgen.engine.drive import Reporting, drive
from loadgen.engine.executors import TraceReplayExecutor
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.metrics import NS_PER_S
from loadgen.scenario import Scenario, TraceReplay, scenario_from_dict
from loadgen.transport.base import Outcome, Request, Transport
from tests.servers import echo_response, serve
from tests.test_open_loop import START_NS, arrivals_at

pytestmark = pytest.mark.usefixtures("fake_aws")

# irregular on purpose: bursts, near-ties and gaps of every size, over 0.6 s
OFFSETS = (0.0, 0.013, 0.05, 0.051, 0.1, 0.16, 0.161, 0.2, 0.27, 0.3, 0.33, 0.4, 0.45, 0.6)


class Seen(NamedTuple):
    at: float  # monotonic seconds
    endpoint: str
    body: bytes


def recorder() -> tuple[list[Seen], Any]:
    seen: list[Seen] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(Seen(time.monotonic(), request.match_info["name"], await request.read()))
        return echo_response(request)

    return seen, handler


def trace_scenario(url: str, trace: Path, **load: Any) -> Scenario:
    raw = {
        "name": "trace",
        "region": "us-east-1",
        "endpoint_url": url,
        "endpoints": [{"name": "a"}, {"name": "b"}],
        "request": {"body": "default", "custom_attributes": "trace={trace_id}"},
        "load": {"executor": "trace-replay", "file": trace.name, "timeout": "5s"} | load,
    }
    return scenario_from_dict(raw, base_dir=trace.parent)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(column, "")) for column in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("speedup", [1.0, 2.0])
def test_starts_are_due_at_the_files_offsets_and_never_late_in_virtual_time(
    tmp_path: Path, speedup: float
) -> None:
    """The loop's timers fired on time (an idle machine): request i is due at start +
    offset_i / speedup, to the nanosecond, and a caller waiting for it starts it at most 1
    ms late (never: up to EARLY_NS early, its latency then counting from the send)."""
    trace = write_csv(tmp_path / "trace.csv", [{"offset_s": offset} for offset in OFFSETS])
    config = TraceReplay(executor="trace-replay", file=trace, speedup=speedup)
    arrivals, loop = arrivals_at(START_NS, TraceReplayExecutor(config).offsets())
    starts: list[tuple[int, int]] = []  # (intended, sent)

    def caller() -> None:
        while (intended := arrivals.take(loop.clock())) is not None:
            starts.append((intended, loop.clock()))
        arrivals.park(caller)

    caller()
    loop.advance(START_NS + 2 * NS_PER_S)
    assert [intended for intended, _ in starts] == [
        START_NS + int(offset / speedup * NS_PER_S) for offset in OFFSETS
    ]
    assert all(-EARLY_NS <= sent - intended <= LATE_NS for intended, sent in starts), starts


@pytest.mark.parametrize("speedup", [1.0, 2.0])
async def test_requests_reach_the_server_at_the_files_offsets(
    tmp_path: Path, speedup: float
) -> None:
    """A real run: the server sees every row in order at the file's offsets (divided by
    speedup) from one start. On an idle machine every row is within a millisecond and no
    start is late, but that is the virtual-time test's to hold: on a loaded 2-core machine
    rows were 5 to 23 ms off and up to 9 starts in 14 late. So three rows in four within
    10 ms, which no wrong schedule meets (each row at its neighbour's time: 7 rows; the
    speedup ignored: 2), and the median start within 5 ms."""
    trace = write_csv(tmp_path / "trace.csv", [{"offset_s": offset} for offset in OFFSETS])
    seen, handler = recorder()
    async with serve(handler) as url:
        result = await run_scenario(
            trace_scenario(url, trace, speedup=speedup), RunOptions(out=tmp_path, quiet=True)
        )
    summary = result.summary
    assert summary.total.requests == len(OFFSETS) == len(seen)
    # arrival minus offset is the same for every row (the run's start, and the way to the
    # server), give or take the loop's lag
    lag = [s.at - offset / speedup for s, offset in zip(seen, OFFSETS, strict=True)]
    drift = [abs(value - statistics.median(lag)) for value in lag]
    assert sum(value < 0.010 for value in drift) >= len(OFFSETS) * 3 // 4, drift
    assert summary.start_delay_ms.p50 <= 5.0
    assert summary.target_rate_rps == pytest.approx((len(OFFSETS) - 1) / (0.6 / speedup))
    assert result.exit_code == 0


async def test_late_starts_are_counted_and_their_wait_is_latency(tmp_path: Path) -> None:
    """Six rows at once and one request in flight at a time, each served in 20 ms: they
    start at 0, 20, ..., 100 ms, so five are late, the last by 100 ms, which its latency
    (from the intended start) holds and its service time does not. The first is on time
    unless the machine held the loop up for over a millisecond as it fell due (once in four
    runs of the suite beside busy loops): five late, or six."""
    trace = write_csv(tmp_path / "burst.csv", [{"offset_s": 0.0}] * 6)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.02)
        return echo_response(request)

    async with serve(slow) as url:
        result = await run_scenario(
            trace_scenario(url, trace, max_in_flight=1), RunOptions(out=tmp_path, quiet=True)
        )
    total = result.summary.total
    assert total.requests == 6 and total.late_starts in (5, 6)
    assert total.latency_ms.max >= 115  # 6 x 20 ms from one intended time
    assert total.service_time_ms.max < 60
    assert result.summary.start_delay_ms.max >= 95


async def test_rows_name_their_endpoint_and_body(tmp_path: Path) -> None:
    """JSON lines: a row's endpoint and body are sent; a row without them takes the
    scenario's endpoints in turn (a, b, a, b by request) and its request body; a JSON
    body goes as compact JSON."""
    rows = [
        {"offset_s": 0.0, "endpoint": "b", "body": {"x": 1}, "tokens": 9},  # tokens: ignored
        {"offset_s": 0.02},
        {"offset_s": 0.04, "endpoint": "a", "body": "raw text"},
        {"offset_s": 0.06, "endpoint": "b"},
    ]
    trace = tmp_path / "trace.jsonl"
    trace.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    seen, handler = recorder()
    async with serve(handler) as url:
        result = await run_scenario(
            trace_scenario(url, trace), RunOptions(out=tmp_path, quiet=True)
        )
    assert [(s.endpoint, s.body) for s in seen] == [
        ("b", b'{"x":1}'),
        ("b", b"default"),  # the second request: b in turn
        ("a", b"raw text"),
        ("b", b"default"),
    ]
    endpoints = result.summary.endpoints
    assert (endpoints["a"].requests, endpoints["b"].requests) == (1, 3)
    assert result.summary.load_config.file == trace  # type: ignore[union-attr]


class Recording(Transport):
    """Every call succeeds at once; what each carried is kept, in order."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bytes]] = []

    async def invoke(self, request: Request) -> Outcome:
        self.sent.append((request.target.label, request.body))
        return Outcome(200, echoed=request.custom_attributes)


@pytest.mark.parametrize("shares", [2, 3])
async def test_workers_split_the_trace_row_by_row(tmp_path: Path, shares: int) -> None:
    """Each worker's engine replays every shares-th row, each with its own row's endpoint
    and body (the times and the rows are split alike): together every row once."""
    rows = [
        {"offset_s": index * 0.005, "endpoint": "ab"[index % 3 == 0], "body": f"row{index}"}
        for index in range(30)
    ]
    trace = write_csv(tmp_path / "split.csv", rows)
    ctx = RunContext(trace_scenario("http://127.0.0.1:9", trace), "00000000", None)
    sent = []
    for share in range(shares):
        transport = Recording()
        driven = await drive(
            ctx.part(share, shares),
            transport,
            time.monotonic_ns(),
            asyncio.Event(),
            Reporting(lambda _: None),
        )
        assert driven.recorder.totals().requests == len(rows[share::shares])
        assert transport.sent == [
            (row["endpoint"], row["body"].encode()) for row in rows[share::shares]
        ]
        sent += transport.sent
    assert sorted(sent) == sorted((row["endpoint"], row["body"].encode()) for row in rows)
