"""The region a run signs for: the scenario's, else --region, else the environment or the
profile, else the endpoint URL's; contradictions are usage errors before anything is sent."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadgen.console import print_summary
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.errors import EXIT_USAGE, UsageError
from loadgen.mock.config import MockConfig
from loadgen.mock.server import start_mock
from loadgen.region import RegionSource, ResolvedRegion, resolve_region, url_region
from loadgen.scenario import Scenario, scenario_from_dict
from tests.test_cli import fake_env, loadgen

EU_URL = "https://runtime.sagemaker.eu-west-1.amazonaws.com"


def scenario(**fields: Any) -> Scenario:
    raw: dict[str, Any] = {
        "name": "region",
        "endpoints": [{"name": "ep"}],
        "request": {"body": "{}"},
        "load": {"executor": "constant-arrival-rate", "rate": 50, "requests": 20},
    }
    return scenario_from_dict(raw | fields)


@pytest.fixture
def no_region(fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


def test_url_region_reads_only_sagemaker_runtime_hosts() -> None:
    assert url_region(EU_URL) == "eu-west-1"
    assert url_region("https://runtime-fips.sagemaker.us-gov-west-1.amazonaws.com/x") == (
        "us-gov-west-1"
    )
    assert url_region("https://runtime.sagemaker.cn-north-1.amazonaws.com.cn") == "cn-north-1"
    assert url_region("http://127.0.0.1:8080") is None
    assert url_region("mock") is None and url_region(None) is None


@pytest.mark.usefixtures("no_region")
def test_each_source_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local = scenario(endpoint_url="http://127.0.0.1:9")
    assert resolve_region(local) == ResolvedRegion("us-east-1", RegionSource.DEFAULT)
    config = tmp_path / "config"
    config.write_text("[profile lab]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "lab")
    assert resolve_region(local) == ResolvedRegion("ap-south-1", RegionSource.CONFIG)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert resolve_region(local) == ResolvedRegion("eu-north-1", RegionSource.CONFIG)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert resolve_region(local) == ResolvedRegion("eu-central-1", RegionSource.AWS_REGION)
    assert resolve_region(local, "us-west-2") == ResolvedRegion("us-west-2", RegionSource.FLAG)
    pinned = scenario(endpoint_url="http://127.0.0.1:9", region="sa-east-1")
    assert resolve_region(pinned) == ResolvedRegion("sa-east-1", RegionSource.SCENARIO)
    assert resolve_region(pinned, "sa-east-1").name == "sa-east-1"


@pytest.mark.usefixtures("no_region")
def test_the_url_gives_the_region_when_nothing_else_does() -> None:
    assert resolve_region(scenario(endpoint_url=EU_URL)) == ResolvedRegion(
        "eu-west-1", RegionSource.URL
    )
    assert resolve_region(scenario(endpoint_url=EU_URL), "eu-west-1").source is RegionSource.FLAG


@pytest.mark.usefixtures("no_region")
@pytest.mark.parametrize(
    ("fields", "flag", "env", "message"),
    [
        (
            {"endpoint_url": EU_URL},
            "us-east-1",
            {},
            "region: us-east-1 (from --region) contradicts",
        ),
        ({"endpoint_url": EU_URL}, None, {"AWS_REGION": "us-east-1"}, "(from AWS_REGION)"),
        ({"region": "eu-west-1"}, "us-east-1", {}, "--region: us-east-1 contradicts the scenario"),
        ({}, None, {}, "region: none found for the SageMaker endpoint"),
        ({}, "Frankfurt", {}, "--region: 'Frankfurt' is not a region name"),
        ({}, None, {"AWS_REGION": "moon"}, "region: 'moon' from AWS_REGION is not a region"),
    ],
)
def test_contradictions_and_gaps_are_one_line_usage_errors(
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, Any],
    flag: str | None,
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as caught:
        resolve_region(scenario(**fields), flag)
    (problem,) = caught.value.problems
    assert message in problem and "\n" not in problem


@pytest.mark.usefixtures("no_region")
@pytest.mark.parametrize("transport", ["fast", "botocore"])
async def test_a_region_from_the_environment_is_signed_for_on_both_transports(
    transport: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The mock verifies SigV4 for eu-west-1 only: a run that names no region, with
    AWS_REGION=eu-west-1, passes with no error; with AWS_DEFAULT_REGION=us-east-1 instead,
    every call is refused as the real service refuses it."""
    mock = await start_mock(
        MockConfig(access_key="AKIDTEST", secret_key="test-secret", region="eu-west-1")
    )
    try:
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        run = scenario(endpoint_url=mock.url, transport=transport)
        result = await run_scenario(run, RunOptions(out=tmp_path, quiet=True))
        summary = result.summary
        assert summary.region == "eu-west-1"
        header = io.StringIO()
        print_summary(summary, Console(file=header, width=80))
        assert "region eu-west-1" in header.getvalue().splitlines()[0]
        assert summary.total.requests == 20 and summary.total.errors == {}
        monkeypatch.delenv("AWS_REGION")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        refused = await run_scenario(run, RunOptions(out=tmp_path / "wrong", quiet=True))
        assert refused.summary.region == "us-east-1"
        assert refused.summary.total.errors == {"InvalidSignatureException": 20}
    finally:
        await mock.close()


def test_the_cli_names_the_contradiction_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "eu.yaml"
    path.write_text(
        "name: eu\nendpoint_url: " + EU_URL + "\nendpoints: [{name: ep}]\nrequest: {body: '{}'}\n"
        "load: {executor: constant-arrival-rate, rate: 1, requests: 1}\n"
    )
    result = loadgen("run", str(path), "--region", "us-east-1", "--out", str(tmp_path / "out"))
    assert result.returncode == EXIT_USAGE
    assert result.stderr.count("\n") == 1 and "contradicts" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    env = fake_env() | {"AWS_REGION": "us-east-1"}
    result = loadgen("run", str(path), "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == EXIT_USAGE and "(from AWS_REGION)" in result.stderr


def test_validate_shows_the_region_and_where_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "eu.yaml"
    path.write_text(
        "name: eu\nendpoint_url: " + EU_URL + "\nendpoints: [{name: ep}]\nrequest: {body: '{}'}\n"
        "load: {executor: constant-arrival-rate, rate: 1, requests: 1}\n"
    )
    result = loadgen("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "  region        eu-west-1 (from the endpoint URL)" in result.stdout.splitlines()
    result = loadgen("validate", str(path), "--region", "us-east-1")
    assert result.returncode == EXIT_USAGE and "contradicts" in result.stderr
