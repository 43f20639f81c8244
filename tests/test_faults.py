"""A misbehaving endpoint never costs a request: every one is counted, classified, on time.

Each fault runs through `run_scenario` on both transports against a raw server from
tests/faulty.py. Whatever the server does, the run returns, ends within its duration plus
one timeout, accounts for every scheduled request (recorded, or interrupted at the end)
and its .hlog holds exactly the requests the summary counts. The last test checks that no
credential or signature reaches a results file or the output, whatever the run's fate.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from loadgen import api
from loadgen.durations import parse_duration
from loadgen.engine.runner import RunOptions, RunResult, run_scenario
from loadgen.errors import CannotRunError
from loadgen.mock.config import MockConfig
from loadgen.mock.server import start_mock
from loadgen.summary import EndpointSummary, RunSummary
from tests import faulty
from tests.faulty import RawServer, raw_server
from tests.servers import hlog_total, mock_process, scenario
from tests.test_cli import QUICKSTART, fake_env, loadgen

TRANSPORTS = pytest.mark.parametrize("transport", ["fast", "botocore"])

RATE = 50
DURATION = "1s"
TIMEOUT = "500ms"


pytestmark = pytest.mark.usefixtures("fake_aws")


def timeseries(folder: Path) -> list[dict[str, str]]:
    header, *rows = (folder / "timeseries.csv").read_text().splitlines()
    names = header.split(",")
    return [dict(zip(names, row.split(","), strict=True)) for row in rows]


async def run_fault(
    tmp_path: Path,
    url: str,
    transport: str,
    *,
    duration: str = DURATION,
    rate: float = RATE,
    timeout: str = TIMEOUT,
) -> RunResult:
    """One short run, with the checks every fault must pass."""
    started = time.monotonic()
    result = await run_scenario(
        scenario(url, transport, rate=rate, duration=duration, timeout=timeout, max_in_flight=64),
        RunOptions(out=tmp_path, quiet=True),
    )
    elapsed = time.monotonic() - started
    assert elapsed < parse_duration(duration) + parse_duration(timeout) + 2.0, elapsed
    assert_accounted(result, scheduled=round(rate * parse_duration(duration)))
    return result


def assert_accounted(result: RunResult, scheduled: int) -> None:
    summary = result.summary
    assert RunSummary.load(result.folder / "summary.json") == summary
    for label, stats in summary.endpoints.items():
        assert stats.requests == stats.ok + sum(stats.errors.values()), stats
        assert hlog_total(result.folder, label) == stats.requests
        rows = [row for row in timeseries(result.folder) if row["endpoint"] == label]
        assert sum(int(row["requests"]) for row in rows) == stats.requests
        assert sum(int(row["errors"]) for row in rows) == stats.error_count
    assert summary.total.requests + summary.interrupted_requests == scheduled, summary
    assert summary.client_failure is None, summary.client_failure


def endpoint(result: RunResult) -> EndpointSummary:
    return result.summary.endpoints["ep"]


# --- before the run -----------------------------------------------------------------------


@TRANSPORTS
async def test_connection_refused_at_start_cannot_run(tmp_path: Path, transport: str) -> None:
    port = faulty.closed_port()
    with pytest.raises(CannotRunError) as raised:
        await run_scenario(
            scenario(f"http://127.0.0.1:{port}", transport, duration="1s"),
            RunOptions(out=tmp_path / "out", quiet=True),
        )
    (problem,) = raised.value.problems
    assert problem.startswith(f"cannot reach endpoint 127.0.0.1:{port}: ")
    assert not (tmp_path / "out").exists()  # nothing half-written


async def test_connection_refused_reason_is_the_same_on_every_event_loop(tmp_path: Path) -> None:
    port = faulty.closed_port()
    with pytest.raises(CannotRunError) as raised:
        await run_scenario(
            scenario(f"http://127.0.0.1:{port}", duration="1s"),
            RunOptions(out=tmp_path, quiet=True),
        )
    assert raised.value.problems == [f"cannot reach endpoint 127.0.0.1:{port}: Connection refused"]


def test_connection_refused_exits_3_from_the_cli(tmp_path: Path) -> None:
    port = faulty.closed_port()
    url = f"http://127.0.0.1:{port}"
    result = loadgen(
        "run", str(QUICKSTART), "--endpoint-url", url, "--transport", "botocore",
        "--out", str(tmp_path), env=fake_env(),
    )  # fmt: skip
    assert result.returncode == 3
    assert (
        result.stderr.strip()
        == f"error: cannot reach endpoint 127.0.0.1:{port}: Connection refused"
    )
    assert "Traceback" not in result.stderr


# --- during the run -----------------------------------------------------------------------


@TRANSPORTS
async def test_server_dies_mid_run_and_comes_back(tmp_path: Path, transport: str) -> None:
    server = RawServer(faulty.answer_ok)
    await server.start()
    try:
        run = asyncio.create_task(run_fault(tmp_path, server.url, transport, duration="3s"))
        await asyncio.sleep(0.7)
        await server.stop()
        await asyncio.sleep(0.6)
        await server.start()  # same port
        result = await run
    finally:
        await server.stop()
    stats = endpoint(result)
    assert set(stats.errors) == {api.CONNECTION_ERROR}, stats.errors
    assert 10 <= stats.errors[api.CONNECTION_ERROR] <= 50
    assert stats.ok >= 60
    rows = timeseries(result.folder)
    failing = [i for i, row in enumerate(rows) if int(row["errors"]) > 0]
    assert failing, rows
    recovered = [
        row
        for row in rows[failing[-1] + 1 :]
        if int(row["errors"]) == 0 and int(row["requests"]) > 0
    ]
    assert recovered, rows


FAULTS = {
    # name: (behaviour, the error class both transports report)
    "reset-mid-headers": (faulty.reset_mid_headers, api.CONNECTION_ERROR),
    "reset-mid-body": (faulty.reset_mid_body, api.CONNECTION_ERROR),
    "garbage": (faulty.garbage, api.PROTOCOL_ERROR),
    "slower-than-timeout": (faulty.slower_than(1.0), api.TIMEOUT),
    "never-answers": (faulty.never_answer, api.TIMEOUT),
}


@TRANSPORTS
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_every_request_fails_with_its_class(
    tmp_path: Path, transport: str, fault: str
) -> None:
    behaviour, expected = FAULTS[fault]
    async with raw_server(behaviour) as server:
        result = await run_fault(tmp_path, server.url, transport)
    stats = endpoint(result)
    assert stats.ok == 0
    assert stats.errors == {expected: RATE}, stats.errors
    assert result.summary.interrupted_requests == 0


@TRANSPORTS
async def test_body_longer_than_its_content_length(tmp_path: Path, transport: str) -> None:
    """Content-Length: 5, then 50 bytes in the same segment. The transports legitimately
    differ: fast answers with the 5 announced bytes and closes the connection (so the extra
    cannot desync the next response); aiohttp, under botocore, parses the extra bytes as the
    next status line and fails the response, which is a ProtocolError."""
    async with raw_server(faulty.body_longer_than_announced) as server:
        result = await run_fault(tmp_path, server.url, transport)
    stats = endpoint(result)
    if transport == "fast":
        assert stats.errors == {} and stats.ok == RATE
        assert stats.correlation.matched == RATE
    else:
        assert stats.errors == {api.PROTOCOL_ERROR: RATE} and stats.ok == 0


STORMS = {
    # name: (status, reason, x-amzn-ErrorType, body, expected code)
    "503-ServiceUnavailable": (
        503,
        "Service Unavailable",
        "ServiceUnavailable:http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/",
        b'{"message": "busy"}',
        "ServiceUnavailable",
    ),
    "500-bare": (500, "Internal Server Error", None, b"", "HTTP500"),
    "500-html": (500, "Internal Server Error", None, b"<html>oops</html>", "HTTP500"),
}


@TRANSPORTS
@pytest.mark.parametrize("storm", list(STORMS))
async def test_5xx_storm_is_counted_by_code(tmp_path: Path, transport: str, storm: str) -> None:
    status, reason, error_type, body, expected = STORMS[storm]
    async with raw_server(faulty.error_status(status, reason, error_type, body)) as server:
        result = await run_fault(tmp_path, server.url, transport)
    stats = endpoint(result)
    assert stats.errors == {expected: RATE}, stats.errors
    assert server.requests == RATE  # no retries: the endpoint saw each request once


@TRANSPORTS
async def test_huge_response_body(tmp_path: Path, transport: str) -> None:
    async with raw_server(faulty.huge_body(api.MAX_BODY_BYTES)) as server:
        result = await run_fault(tmp_path, server.url, transport, rate=20, timeout="1s")
    stats = endpoint(result)
    assert stats.errors == {} and stats.ok == 20
    assert stats.correlation.matched == 20


# --- secrets --------------------------------------------------------------------------------

ACCESS_KEY = "AKIDLOADGENLEAKTEST"
SECRET_KEY = "leak/TEST+secret/0123456789abcdefSECRET"
SESSION_TOKEN = "FwoGZXIvYXdzLEAKTESTsessionTOKEN0123456789"
# Anything that would show a credential or a signed request in the results or the output.
LEAKS = (SECRET_KEY, SESSION_TOKEN, "Authorization", "Signature=", "AWS4-HMAC-SHA256 Credential")


def secret_env(tmp_path: Path) -> dict[str, str]:
    return fake_env() | {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }


def assert_no_leak(where: str, text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} appears in {where}"


async def test_no_credential_reaches_results_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed runs that pass and fail (wrong secret), on both transports, and CLI runs with a
    bad scenario and against a rejecting endpoint: no secret, token or signature anywhere."""
    env = secret_env(tmp_path)
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    out = tmp_path / "results"
    no_latency = {"median": 0, "p99": 0}
    for transport in ("fast", "botocore"):
        for secret, expected in (
            (SECRET_KEY, {}),
            ("wrong-secret", {"InvalidSignatureException": 20}),
        ):
            config = MockConfig(access_key=ACCESS_KEY, secret_key=secret, latency_ms=no_latency)
            async with await start_mock(config) as mock:
                result = await run_scenario(
                    scenario(mock.url, transport, requests=20, rate=100),
                    RunOptions(out=out, quiet=False),
                )
            assert endpoint(result).errors == expected, (transport, secret)
    captured = capsys.readouterr()
    assert_no_leak("run_scenario's stdout", captured.out)
    assert_no_leak("run_scenario's stderr", captured.err)

    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICKSTART.read_text().replace("rate: 200", "rate: -1"))
    result = loadgen("run", str(bad), "--out", str(out), env=env)
    assert result.returncode == 2, result.stderr
    outputs = [("the CLI's bad-scenario output", result.stdout + result.stderr)]
    with mock_process(tmp_path, access_key=ACCESS_KEY, secret_key="wrong-secret") as url:
        result = loadgen(
            "run", str(QUICKSTART), "--endpoint-url", url, "--requests", "20",
            "--out", str(out), env=env,
        )  # fmt: skip
    assert "InvalidSignatureException" in result.stdout, result.stdout + result.stderr
    outputs.append(("the CLI's rejected-run output", result.stdout + result.stderr))
    for where, text in outputs:
        assert_no_leak(where, text)

    files = [path for path in out.rglob("*") if path.is_file()]
    assert len({path.parent for path in files}) == 5  # four in-process runs, one CLI run
    for path in files:
        assert_no_leak(str(path.relative_to(out)), path.read_text(errors="replace"))
