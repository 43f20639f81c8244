"""Fail fast on what no load test can fix: a run whose first second of calls all fail with
an auth or addressing error stops with exit 3, names the code and the fix, and writes
what it has."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from loadgen import api
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.errors import EXIT_CANNOT_RUN
from loadgen.gates import RefusalWatch
from loadgen.histograms import new_histogram
from loadgen.metrics import Interval
from loadgen.summary import RunSummary, StopReason
from tests.faulty import RawRequest, raw_server, response_bytes
from tests.servers import scenario
from tests.test_cli import fake_env, loadgen


def second(index: int, label: str, requests: int, **codes: int) -> Interval:
    return Interval(
        index, label, new_histogram(), requests, sum(codes.values()), error_codes=dict(codes)
    )


def test_the_watch_judges_the_first_second_with_calls_across_every_endpoint() -> None:
    stops: list[str] = []
    watch = RefusalWatch(["a", "b"], "eu-west-1", stops.append)
    watch.observe(second(0, "a", 0))
    watch.observe(second(0, "b", 0))  # no call yet: not judged
    watch.observe(second(1, "a", 5, InvalidSignatureException=5))
    assert not stops  # b's half of the second is not in yet
    watch.observe(second(1, "b", 3, InvalidSignatureException=2, AccessDeniedException=1))
    assert stops == [
        "InvalidSignatureException on all 8 calls of the first second: check the credentials, "
        "the region (eu-west-1) and the sagemaker:InvokeEndpoint permission"
    ]
    watch.observe(second(2, "a", 5, InvalidSignatureException=5))
    watch.observe(second(2, "b", 5, InvalidSignatureException=5))
    assert len(stops) == 1  # judged once


@pytest.mark.parametrize(
    "codes",
    [
        {"InvalidSignatureException": 19},  # one call of 20 went through
        {"ThrottlingException": 20},  # load can cause it: the run goes on
        {"InvalidSignatureException": 10, "ModelError": 10},
    ],
)
def test_a_first_second_that_is_not_all_refused_goes_on(codes: dict[str, int]) -> None:
    stops: list[str] = []
    watch = RefusalWatch(["a"], "us-east-1", stops.append)
    watch.observe(second(0, "a", 20, **codes))
    watch.observe(second(1, "a", 20, InvalidSignatureException=20))  # too late to judge
    assert not stops and watch.judged


def test_a_wrong_secret_stops_within_seconds_with_exit_3_and_results(tmp_path: Path) -> None:
    """The mock verifies SigV4 with the right secret; loadgen signs with a wrong one. A 30 s
    run ends in a few seconds, one line names the code and the fix, results are written."""
    path = tmp_path / "wrong-secret.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "wrong-secret",
                "endpoint_url": "mock",
                "endpoints": [{"name": "ep"}],
                "request": {"body": "{}"},
                "load": {"executor": "constant-arrival-rate", "rate": 200, "duration": "30s"},
                "mock": {"access_key": "AKIDCLITEST", "secret_key": "the-right-secret"},
            }
        )
    )
    began = time.monotonic()
    result = loadgen("run", str(path), "--quiet", "--out", str(tmp_path / "out"), env=fake_env())
    assert time.monotonic() - began < 15
    assert result.returncode == EXIT_CANNOT_RUN, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert "InvalidSignatureException" in last and "check the credentials" in last
    assert "Traceback" not in result.stderr and "the-right-secret" not in result.stdout
    (folder,) = (tmp_path / "out").iterdir()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.stop_reason is StopReason.REFUSED and not summary.complete
    assert summary.duration_s < 5
    assert set(summary.total.errors) == {"InvalidSignatureException"}
    assert (folder / "report.html").is_file() and (folder / "junit.xml").is_file()


async def endpoint_not_found(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    body = b'{"message": "Could not find endpoint \\"nope\\"."}'
    writer.write(
        response_bytes(
            400,
            "Bad Request",
            body,
            {"Content-Type": "application/json", api.H_ERROR_TYPE: "ValidationError"},
        )
    )
    return True


@pytest.mark.usefixtures("fake_aws")
@pytest.mark.parametrize(("transport", "workers"), [("fast", 2), ("botocore", 1)])
async def test_an_endpoint_that_is_not_there_stops_the_run(
    transport: str, workers: int, tmp_path: Path
) -> None:
    """ValidationError on every call, through the workers' messages too: stopped, exit 3."""
    async with raw_server(endpoint_not_found) as server:
        run = scenario(server.url, transport, rate=100, duration="30s").model_copy(
            update={"workers": workers}
        )
        result = await run_scenario(run, RunOptions(out=tmp_path, quiet=True))
    summary = result.summary
    assert result.exit_code == EXIT_CANNOT_RUN
    assert summary.stop_reason is StopReason.REFUSED and summary.duration_s < 5
    assert summary.stop_detail is not None
    assert summary.stop_detail.startswith("ValidationError on all ")
    assert "check the endpoint name and the region (us-east-1)" in summary.stop_detail
    assert summary.verdict.headline.startswith("FAILED: the endpoint refused every call")
