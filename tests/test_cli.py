"""The command line as a user meets it: exit codes, one line per problem, never a traceback."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from loadgen import cli
from loadgen.cli import package_version
from loadgen.results.writer import run_folder
from loadgen.summary import RunSummary, StopReason
from tests.servers import wait_until_running

QUICKSTART = Path(__file__).parent.parent / "scenarios" / "quickstart.yaml"


def loadgen(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or fake_env(),
    )


def fake_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="AKIDCLITEST",
        AWS_SECRET_ACCESS_KEY="cli-secret",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def write(tmp_path: Path, data: object, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def quickstart() -> dict:
    return yaml.safe_load(QUICKSTART.read_text())


def test_validate_accepts_every_shipped_scenario() -> None:
    for path in sorted((QUICKSTART.parent).glob("*.yaml")):
        result = loadgen("validate", str(path))
        assert result.returncode == 0, (path, result.stderr)
        assert "ok" in result.stdout


def test_invalid_scenario_names_every_field_and_exits_2(tmp_path: Path) -> None:
    data = quickstart()
    data["endpoints"][1] = {"target_variant": "canary"}
    data["load"]["rate"] = 0
    data["load"]["rat"] = 5
    data["request"]["custom_attributes"] = "no placeholder"
    data["endpoints"].append({"name": "bad_name!"})
    result = loadgen("validate", str(write(tmp_path, data)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "error: endpoints[1].name: field required" in lines
    assert "error: load.rate: must be > 0" in lines
    assert "error: load.rat: unknown key (did you mean 'rate'?)" in lines
    assert any(
        line.startswith("error: request.custom_attributes: must contain {trace_id}")
        for line in lines
    )
    assert any(line.startswith("error: endpoints[2].name: must be letters") for line in lines)
    assert "Traceback" not in result.stderr


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    result = loadgen(
        "validate", str(write(tmp_path, "name: x\nendpoints: [\n  {name: a\nload: 3\n"))
    )
    assert result.returncode == 2
    assert "line 4" in result.stderr and "Traceback" not in result.stderr


def test_too_long_custom_attributes_rejected_before_sending(tmp_path: Path) -> None:
    data = quickstart()
    data["request"]["custom_attributes"] = "x" * 1000 + "{trace_id}"
    result = loadgen("run", str(write(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert (
        "request.custom_attributes: rendered value must be at most 1024 characters" in result.stderr
    )
    assert not (tmp_path / "out").exists()


def test_missing_body_file_and_wrong_flags_exit_2(tmp_path: Path) -> None:
    data = quickstart()
    del data["request"]["body"]
    data["request"]["body_file"] = "nope.json"
    result = loadgen("validate", str(write(tmp_path, data)))
    assert result.returncode == 2 and "request.body_file: file not found" in result.stderr
    result = loadgen("run", str(QUICKSTART), "--concurrency", "4")
    assert result.returncode == 2
    assert "--concurrency: applies to the constant-concurrency executor" in result.stderr
    result = loadgen("run", str(QUICKSTART), "--duration", "soon")
    assert (
        result.returncode == 2 and "--duration (load.duration): invalid duration" in result.stderr
    )
    result = loadgen("run", str(QUICKSTART), "--rate", "-3")
    assert result.returncode == 2 and "--rate" in result.stderr


def test_unreachable_endpoint_exits_3_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = loadgen(
        "run", str(QUICKSTART), "--endpoint-url", f"http://127.0.0.1:{port}", "--out", str(tmp_path)
    )
    assert result.returncode == 3
    assert (
        result.stderr.strip()
        == f"error: cannot reach endpoint 127.0.0.1:{port}: Connection refused"
    )


def test_quickstart_runs_against_the_mock(tmp_path: Path) -> None:
    result = loadgen("run", str(QUICKSTART), "--duration", "2s", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (folder,) = tmp_path.iterdir()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.complete is True and summary.passed is True
    assert summary.total.requests == 400
    assert summary.total.correlation.mismatched == 0
    assert "churn-v2/canary" in result.stdout and "mismatched" in result.stdout
    assert result.stdout.splitlines()[-1] == f"PASSED  results: {folder}"
    assert {p.name for p in folder.iterdir()} >= {"summary.json", "timeseries.csv", "churn-v1.hlog"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_writes_results_and_exits_130(
    tmp_path: Path, signum: signal.Signals
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadgen",
            "run",
            str(QUICKSTART),
            "--duration",
            "60s",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fake_env(),
    )
    wait_until_running(tmp_path)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    (folder,) = tmp_path.iterdir()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.complete is False and summary.passed is False
    assert summary.stop_reason is StopReason(signum.name.lower())
    assert stdout.startswith(f"FAILED: interrupted by {signum.name}")  # --quiet: only this
    assert {p.name for p in folder.iterdir()} >= {
        "histograms.json",
        "junit.xml",
        "summary.md",
        "report.html",
    }
    assert not list(folder.glob(".*.tmp"))  # atomic writes leave no temporary files
    assert 0 < summary.total.requests < 60 * 200
    assert summary.duration_s < 20


def test_a_results_folder_is_never_overwritten(tmp_path: Path) -> None:
    started = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    first = run_folder(tmp_path, "same", started)
    (first / "summary.json").write_text("{}")
    second = run_folder(tmp_path, "same", started)
    third = run_folder(tmp_path, "same", started)
    assert first.name == "same-20261128T120000Z"
    assert [second.name, third.name] == ["same-20261128T120000Z-2", "same-20261128T120000Z-3"]
    assert (first / "summary.json").read_text() == "{}"


def test_turning_tls_verification_off_warns(tmp_path: Path) -> None:
    data = quickstart()
    data["tls"] = {"verify": False}
    result = loadgen(
        "run",
        str(write(tmp_path, data)),
        "--duration",
        "1s",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "warning: TLS certificate verification is off" in result.stderr


def pyproject_version() -> str:
    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["project"]["version"]


def test_version_is_the_package_version() -> None:
    result = loadgen("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"loadgen {metadata.version('loadgen')}\n"
    assert metadata.version("loadgen") == pyproject_version()


def test_version_of_a_checkout_never_installed_is_pyprojects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert package_version() == pyproject_version()


HELP_EXAMPLES = {
    "": cli.MAIN_EXAMPLES,
    "run": cli.RUN_EXAMPLES,
    "validate": cli.VALIDATE_EXAMPLES,
    "compare": cli.COMPARE_EXAMPLES,
    "mock": cli.MOCK_EXAMPLES,
}


@pytest.mark.parametrize("command", list(HELP_EXAMPLES))
def test_help_shows_examples_that_parse(command: str) -> None:
    result = loadgen(*[command] * bool(command), "--help")
    assert result.returncode == 0, result.stderr
    examples = [
        line.strip()
        for line in HELP_EXAMPLES[command].splitlines()
        if line.startswith("  loadgen ")
    ]
    assert len(examples) >= 2
    for example in examples:
        assert f"  {example}\n" in result.stdout  # shown as written, not rewrapped
        words = shlex.split(example.partition(" > ")[0])[1:]
        cli.build_parser().parse_args(words)  # a usage error would raise


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run", "s.yaml", "--rate", "0"], "--rate: must be > 0"),
        (["run", "s.yaml", "--rate=abc"], "--rate: must be a number > 0 (got 'abc')"),
        (
            ["run", "s.yaml", "--requests", "2.5"],
            "--requests: must be a whole number > 0 (got '2.5')",
        ),
        (["run", "s.yaml", "--rate"], "--rate: needs a value"),
        (["run", "s.yaml", "--rte", "5"], "--rte: unknown option (did you mean --rate?)"),
        (["validate", "s.yaml", "--quiet"], "--quiet: unknown option"),
        (["run", "s.yaml", "--quiet=yes"], "--quiet: takes no value (got 'yes')"),
        (["mock", "--co"], "--co: ambiguous, could be --container, --config"),
        (
            ["run", "s.yaml", "--transport", "fsat"],
            "--transport: must be one of fast, botocore, not 'fsat' (did you mean 'fast'?)",
        ),
        (["run"], "scenario: required"),
        (["compare", "a"], "new: required"),
        (["run", "a.yaml", "b.yaml"], "b.yaml: unexpected argument"),
        ([], "COMMAND: required (one of run, validate, compare, report, mock)"),
        (["rnu", "s.yaml"], "COMMAND: unknown command 'rnu' (did you mean 'run'?)"),
        (["mock", "--port", "99999"], "--port: must be a port from 0 to 65535 (got '99999')"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_flag_exit_2(args: list[str], line: str) -> None:
    result = loadgen(*args)
    assert (result.returncode, result.stderr, result.stdout) == (2, f"error: {line}\n", "")


def test_out_must_not_be_a_file(tmp_path: Path) -> None:
    existing = write(tmp_path, "keep me", "notes.txt")
    for out, line in [
        (existing, f"--out: {existing} is a file, not a folder"),
        (existing / "runs", f"--out: {existing} is a file, not a folder (in {existing}/runs)"),
    ]:
        result = loadgen("run", str(QUICKSTART), "--duration", "1s", "--out", str(out))
        assert (result.returncode, result.stderr) == (2, f"error: {line}\n")
    assert existing.read_text() == "keep me"


def test_duration_and_requests_together_is_a_usage_error(tmp_path: Path) -> None:
    result = loadgen(
        "run", str(QUICKSTART), "--duration", "1s", "--requests", "10", "--out", str(tmp_path)
    )
    assert (result.returncode, result.stderr) == (
        2,
        "error: --duration, --requests: give one or the other, not both\n",
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("where", "key", "line"),
    [
        ((), "endpont_url", "endpont_url: unknown key (did you mean 'endpoint_url'?)"),
        (("load",), "rte", "load.rte: unknown key (did you mean 'rate'?)"),
        (("request",), "bdy", "request.bdy: unknown key (did you mean 'body'?)"),
        (
            ("endpoints", 1),
            "target_varient",
            "endpoints[1].target_varient: unknown key (did you mean 'target_variant'?)",
        ),
        (
            ("thresholds",),
            "eror_rate",
            "thresholds.eror_rate: unknown key (did you mean 'error_rate'?)",
        ),
        (
            ("mock", "latency_ms"),
            "medain",
            "mock.latency_ms.medain: unknown key (did you mean 'median'?)",
        ),
        (("mock",), "zzzz", "mock.zzzz: unknown key"),  # nothing close: no guess
    ],
)
def test_unknown_scenario_key_suggests_the_closest_of_its_model(
    tmp_path: Path, where: tuple[str | int, ...], key: str, line: str
) -> None:
    data = quickstart()
    node = data
    for part in where:
        node = node[part]
    node[key] = 1
    result = loadgen("validate", str(write(tmp_path, data)))
    assert (result.returncode, result.stderr) == (2, f"error: {line}\n")


def test_unknown_key_in_a_ramp_stage_and_a_mock_config(tmp_path: Path) -> None:
    data = quickstart()
    data["load"] = {"executor": "ramping-arrival-rate", "stages": [{"duration": "1s", "taget": 5}]}
    result = loadgen("validate", str(write(tmp_path, data)))
    assert result.returncode == 2
    assert "error: load.stages[0].taget: unknown key (did you mean 'target'?)" in result.stderr
    config = write(tmp_path, {"latency_ms": {"median": 1, "p9": 2}}, "mock.yaml")
    result = loadgen("mock", "--config", str(config))
    assert (result.returncode, result.stderr) == (
        2,
        "error: mock.latency_ms.p9: unknown key (did you mean 'p99'?)\n",
    )
    config = write(tmp_path, {"endpoints": [], "mock": 3}, "mock.yaml")
    result = loadgen("mock", "--config", str(config))
    assert (result.returncode, result.stderr) == (
        2,
        f"error: --config: {config}: mock must be a mapping of mock settings\n",
    )


def dataset_scenario(tmp_path: Path, lines: list[str], content_type: str) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.jsonl").write_text("\n".join(lines) + "\n")
    data = quickstart()
    del data["request"]["body"]
    data["request"].update(dataset="data/x.jsonl", content_type=content_type)
    return write(tmp_path, data)


def test_a_dataset_line_that_is_not_json_is_named_by_file_and_line(tmp_path: Path) -> None:
    # line 3 is blank (skipped, still counted); line 7 is not JSON
    lines = ['{"a": 1}', "[1, 2]", "", '"text"', "3", "null", "{oops}", '{"b": 2}']
    scenario = dataset_scenario(tmp_path, lines, "application/json; charset=utf-8")
    expected = (
        f"error: request.dataset: {tmp_path}/data/x.jsonl line 7: "
        "not JSON (Expecting property name enclosed in double quotes at column 2)\n"
    )
    for command in (["validate"], ["run", "--out", str(tmp_path / "out")]):
        result = loadgen(command[0], str(scenario), *command[1:])
        assert (result.returncode, result.stderr) == (2, expected)
    assert not (tmp_path / "out").exists()


def test_a_dataset_of_many_bad_lines_shows_five(tmp_path: Path) -> None:
    scenario = dataset_scenario(tmp_path, ["x"] * 8 + ['{"ok": 1}'], "application/x-ndjson")
    result = loadgen("validate", str(scenario))
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 6
    assert lines[0].endswith("x.jsonl line 1: not JSON (Expecting value at column 1)")
    assert lines[4].endswith("x.jsonl line 5: not JSON (Expecting value at column 1)")
    assert lines[5] == f"error: request.dataset: {tmp_path}/data/x.jsonl: 3 more bad line(s)"


def test_a_dataset_that_is_not_json_is_fine_for_other_content_types(tmp_path: Path) -> None:
    scenario = dataset_scenario(tmp_path, ["1,2,3", "4,5,6"], "text/csv")
    result = loadgen("validate", str(scenario))
    assert result.returncode == 0, result.stderr


def test_a_dataset_line_over_the_body_limit_is_named_by_line(tmp_path: Path) -> None:
    too_big = '"' + "x" * (6 * 1024 * 1024 - 1) + '"'  # 6 MiB + 1 byte
    scenario = dataset_scenario(tmp_path, ["1", "", too_big], "application/json")
    result = loadgen("validate", str(scenario))
    assert (result.returncode, result.stderr) == (
        2,
        f"error: request.dataset: {tmp_path}/data/x.jsonl line 3: "
        f"body is {6 * 1024 * 1024 + 1} bytes, the API allows at most {6 * 1024 * 1024}\n",
    )


def test_validate_prints_the_resolved_plan(tmp_path: Path) -> None:
    data = quickstart()
    data["load"] = {"executor": "constant-arrival-rate", "rate": 100, "duration": "30s"}
    del data["mock"], data["thresholds"], data["request"]["accept"]
    path = write(tmp_path, data)
    result = loadgen("validate", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:12] == [
        f"{path}: ok (2 endpoint(s), constant-arrival-rate)",
        "  endpoint URL  built-in mock",
        "  region        us-east-1 (from the scenario's region)",
        "  endpoints     churn-v1, churn-v2/canary",
        "  executor      constant-arrival-rate at 100/s",
        "  expected      3,000 requests in 30s",
        "  transport     fast",
        "  workers       1",
        "  connections   256 (max_in_flight)",
        "  timeout       10s (connect 5s)",
        "  correlation   contains",
        "  defaults applied (keys the file does not set):",
    ]
    defaults = lines[12:]
    assert set(defaults) >= {  # a subset: other branches add keys with defaults of their own
        "    workers: 1",
        "    tls.verify: true",
        "    request.accept: application/json",
        "    load.timeout: 10s",
        "    load.connect_timeout: 5s",
        "    load.max_in_flight: 256",
        "    thresholds.mismatch_rate: 0",
        "    mock.latency_ms.median: 20",
        "    mock.echo: '{custom_attributes}'",
        "    mock.variants: [{name: AllTraffic, weight: 1.0}]",
    }
    assert all(line.startswith("    ") for line in defaults)
    set_here = ("name", "region", "endpoint_url", "transport", "request.body", "load.rate")
    assert not [line for line in defaults if line.strip().startswith(set_here)]
