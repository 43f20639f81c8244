"""The engine end to end against purpose-built servers, through the real aiobotocore client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web
from hdrh.log import HistogramLogReader

from loadgen import api
from loadgen.engine.context import RunContext
from loadgen.engine.drive import Reporting, drive
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.histograms import new_histogram
from loadgen.results.writer import hlog_name
from loadgen.scenario import scenario_from_dict
from loadgen.summary import RunSummary
from loadgen.transport.base import Outcome, Request, Transport
from tests.servers import Counter, echo_response, mock_process, scenario, serve

pytestmark = pytest.mark.usefixtures("fake_aws")


TRANSPORTS = pytest.mark.parametrize("transport", ["fast", "botocore"])


LOADS = {
    "open": {"rate": 400, "requests": 140, "max_in_flight": 16},
    "closed": {"executor": "constant-concurrency", "concurrency": 4, "requests": 140},
}


@TRANSPORTS
@pytest.mark.parametrize("load", list(LOADS))
async def test_counts_mismatched_and_missing_echoes_exactly(
    tmp_path: Path, transport: str, load: str
) -> None:
    """Every 7th response has no echo, every 10th a wrong trace ID (no echo wins when both)."""
    seen = Counter()

    async def handler(request: web.Request) -> web.Response:
        number = seen.next()
        if number % 7 == 0:
            return echo_response(request, echo="")
        if number % 10 == 0:
            return echo_response(request, echo="trace=ffffffff-000-000000000000")
        return echo_response(request)

    async with serve(handler) as url:
        result = await run_scenario(
            scenario(url, transport, **LOADS[load]),
            RunOptions(out=tmp_path, quiet=True),
        )
    stats = result.summary.endpoints["ep"]
    assert seen.count == 140
    assert stats.requests == 140 and stats.ok == 140
    # missing: 7, 14, ..., 140 -> 20; mismatched: 10, 20, ..., 140 minus 70 and 140 -> 12
    assert stats.correlation.missing == 20
    assert stats.correlation.mismatched == 12
    assert stats.correlation.matched == 108
    samples = stats.correlation.samples
    assert len(samples) == 10
    assert all(s.received == "trace=ffffffff-000-000000000000" for s in samples)
    assert all(s.sent == f"trace={s.trace_id}" for s in samples)


async def test_exact_and_regex_correlation(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return echo_response(request, echo=f"Trace ID: {request.headers[api.H_CUSTOM_ATTRIBUTES]}")

    async with serve(handler) as url:
        results = {}
        for mode in ("exact", "contains", r"regex:Trace ID: trace=(\S+)"):
            s = scenario(url, requests=20).model_copy(update={"correlation": mode})
            summary = (await run_scenario(s, RunOptions(out=tmp_path, quiet=True))).summary
            results[mode.split(":")[0]] = summary.endpoints["ep"].correlation
    assert results["exact"].mismatched == 20  # the echo is decorated, not verbatim
    assert results["contains"].matched == 20
    assert results["regex"].matched == 20


async def test_stall_shows_in_latency_not_in_service_time(tmp_path: Path) -> None:
    """A server-wide 500 ms pause: requests queued behind it are slow, though few were served slowly.

    A closed-loop or coordinated-omission tester would report ~4 slow requests; the
    schedule says ~100 were due during the pause, and their wait counts in latency.
    """
    seen = Counter()
    pause = asyncio.Event()
    pause.set()

    async def handler(request: web.Request) -> web.Response:
        if seen.next() == 50:
            pause.clear()
            await asyncio.sleep(0.5)
            pause.set()
        await pause.wait()
        return echo_response(request)

    async with serve(handler) as url:
        result = await run_scenario(
            scenario(url, rate=200, duration="3s", max_in_flight=4),
            RunOptions(out=tmp_path, quiet=True),
        )
    stats = result.summary.endpoints["ep"]
    assert stats.requests == 600
    assert stats.service_time_ms.max >= 490
    assert stats.service_time_ms.p99 < 100
    assert stats.latency_ms.p99 > 300
    assert stats.latency_ms.p99 > 4 * stats.service_time_ms.p99
    assert stats.late_starts >= 50


@TRANSPORTS
async def test_errors_and_timeouts_are_counted_alike_by_both_transports(
    tmp_path: Path, transport: str
) -> None:
    seen = Counter()

    async def handler(request: web.Request) -> web.Response:
        number = seen.next()
        if number % 4 == 1:
            body = {"message": "boom", "OriginalStatusCode": 503, "OriginalMessage": "x"}
            return web.json_response(
                body, status=424, headers={api.H_ERROR_TYPE: "ModelError:http://x/"}
            )
        if number % 4 == 2:
            return web.json_response(
                {"message": "slow down"},
                status=400,
                headers={api.H_ERROR_TYPE: "ThrottlingException"},
            )
        if number % 4 == 3:
            await asyncio.sleep(2)
        return echo_response(request)

    async with serve(handler) as url:
        result = await run_scenario(
            scenario(url, transport, rate=100, requests=40, timeout="500ms"),
            RunOptions(out=tmp_path, quiet=True),
        )
    stats = result.summary.endpoints["ep"]
    assert stats.requests == 40
    assert stats.errors == {"ModelError": 10, "ThrottlingException": 10, "Timeout": 10}
    assert stats.model_error_status == {"503": 10}
    assert stats.ok == 10
    assert stats.correlation.matched == 10


async def test_hlog_reads_back_to_summary_totals(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return echo_response(request)

    async with serve(handler) as url:
        raw = scenario(url, rate=300, duration="2500ms")
        result = await run_scenario(raw, RunOptions(out=tmp_path, quiet=True))
    summary = RunSummary.load(result.folder / "summary.json")
    assert summary == result.summary
    reader = HistogramLogReader(str(result.folder / hlog_name("ep")), new_histogram())
    total = new_histogram()
    intervals = 0
    while reader.add_next_interval_histogram(total) is not None:
        intervals += 1
    reader.close()
    stats = summary.endpoints["ep"]
    assert intervals >= 3
    assert total.get_total_count() == stats.requests == 750
    assert total.get_max_value() / 1000.0 == stats.latency_ms.max
    rows = (result.folder / "timeseries.csv").read_text().splitlines()
    assert rows[0] == (
        "second,endpoint,requests,errors,mismatched,p50_ms,p99_ms,output_tokens,ttft_p50_ms,"
        "ttft_p99_ms,itl_p50_ms,itl_p99_ms"
    )
    assert sum(int(row.split(",")[2]) for row in rows[1:]) == 750


async def test_closed_loop_keeps_concurrency_and_request_budget(tmp_path: Path) -> None:
    in_flight = 0
    peak = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return echo_response(request)

    async with serve(handler) as url:
        s = scenario_from_dict(
            {
                "name": "closed",
                "endpoint_url": url,
                "endpoints": [{"name": "a"}, {"name": "b"}],
                "request": {"body": "{}"},
                "load": {"executor": "constant-concurrency", "concurrency": 4, "requests": 101},
            }
        )
        result = await run_scenario(s, RunOptions(out=tmp_path, quiet=True))
    endpoints = result.summary.endpoints
    assert endpoints["a"].requests == 51 and endpoints["b"].requests == 50
    assert peak == 4
    assert result.summary.total.late_starts == 0


async def test_open_loop_achieves_500_per_second_within_2_percent(tmp_path: Path) -> None:
    with mock_process(tmp_path) as url:
        result = await run_scenario(
            scenario(url, rate=500, duration="5s", max_in_flight=64),
            RunOptions(out=tmp_path, quiet=True),
        )
    stats = result.summary.endpoints["ep"]
    assert stats.requests == 2500  # every scheduled start happened
    assert stats.ok == 2500
    achieved = result.summary.achieved_rate_rps
    assert abs(achieved - 500) / 500 < 0.02, achieved
    # a broken scheduler makes nearly every start late; a busy shared machine makes some late
    assert result.summary.total.late_starts < 1250


class InstantTransport(Transport):
    """Every call succeeds at once, echoing what was sent."""

    name = "instant"

    async def invoke(self, request: Request) -> Outcome:
        return Outcome(200, echoed=request.custom_attributes)


class ExplodingTransport(Transport):
    """A transport bug whose message carries what must never be written anywhere."""

    name = "exploding"

    async def invoke(self, request: Request) -> Outcome:
        raise RuntimeError("Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/secret-signature")


async def test_a_transport_bug_is_counted_and_its_text_never_kept(tmp_path: Path) -> None:
    s = scenario("http://127.0.0.1:9", rate=200, requests=20)
    stop = asyncio.Event()
    ctx = RunContext(s, "00000000", s.endpoint_url)
    driven = await drive(
        ctx, ExplodingTransport(), time.monotonic_ns(), stop, Reporting(lambda _: None)
    )
    stats = driven.recorder.totals()
    assert stats.requests == 20 and stats.errors == {"ClientFailure": 20}
    assert driven.tester.client_failure == "builtins.RuntimeError"
