"""Every scenario error of capacity-search, arrival processes, trace-replay and the mock's
capacity: one line naming the field, and exit 2, before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from loadgen import cli

CAPACITY = {
    "executor": "capacity-search",
    "start_rate": 100,
    "max_rate": 1000,
    "step_duration": "10s",
    "slo": {"latency_ms": {"p99": 100}},
}
OPEN = {"executor": "constant-arrival-rate", "rate": 100, "duration": "10s"}
RAMP = {"executor": "ramping-arrival-rate", "stages": [{"duration": "10s", "target": 100}]}
TRACE = {"executor": "trace-replay", "file": "trace.csv"}


def scenario(load: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "name": "errors",
        "endpoint_url": "mock",
        "endpoints": [{"name": "ep"}],
        "request": {"body": "{}"},
        "load": load,
    } | top


# a table, one case a line
# fmt: off
CASES: list[tuple[str, dict[str, Any], str]] = [
    # arrival processes, in every open loop that has them
    ("gamma-without-shape", scenario(OPEN | {"arrival": "gamma"}), "load.burstiness: required with arrival: gamma"),
    ("shape-without-gamma", scenario(RAMP | {"arrival": "poisson", "burstiness": 2}), "load.burstiness: applies to arrival: gamma, not poisson"),
    ("shape-not-positive", scenario(OPEN | {"arrival": "gamma", "burstiness": 0}), "load.burstiness: must be > 0"),
    ("seed-of-constant", scenario(OPEN | {"seed": 3}), "load.seed: applies to arrival: poisson or gamma"),
    ("negative-seed", scenario(CAPACITY | {"arrival": "poisson", "seed": -1}), "load.seed: must be >= 0"),
    ("unknown-arrival", scenario(OPEN | {"arrival": "bursty"}), "load.arrival: must be one of 'constant', 'poisson' or 'gamma'"),
    # capacity-search
    ("no-slo", scenario({k: v for k, v in CAPACITY.items() if k != "slo"}), "load.slo: field required"),
    ("slo-without-latency", scenario(CAPACITY | {"slo": {"error_rate": 0.01}}), "load.slo: give latency_ms (or ttft_ms for streams)"),
    ("slo-percentile", scenario(CAPACITY | {"slo": {"latency_ms": {"p98": 1}}}), "load.slo.latency_ms.p98"),
    ("slo-error-rate", scenario(CAPACITY | {"slo": {"latency_ms": {"p99": 1}, "error_rate": 2}}), "load.slo.error_rate: must be <= 1"),
    ("slo-unknown-key", scenario(CAPACITY | {"slo": {"latency_ms": {"p99": 1}, "p99": 5}}), "load.slo.p99: unknown key"),
    ("ttft-without-streams", scenario(CAPACITY | {"slo": {"ttft_ms": {"p99": 100}}}), "load.slo.ttft_ms: applies to streaming calls (request.stream: true)"),
    ("max-below-start", scenario(CAPACITY | {"max_rate": 50}), "load.max_rate: must be >= start_rate (100)"),
    ("no-max-rate", scenario({k: v for k, v in CAPACITY.items() if k != "max_rate"}), "load.max_rate: field required"),
    ("start-rate-zero", scenario(CAPACITY | {"start_rate": 0}), "load.start_rate: must be > 0"),
    ("short-steps", scenario(CAPACITY | {"step_duration": "50ms"}), "load.step_duration: a step at start_rate 100 req/s sends 5 requests"),
    ("precision-zero", scenario(CAPACITY | {"precision": "0%"}), "load.precision: must be > 0"),
    ("precision-text", scenario(CAPACITY | {"precision": "tight%"}), "load.precision: must be a percentage such as 5%"),
    ("precision-whole", scenario(CAPACITY | {"precision": 1}), "load.precision: must be < 1"),
    ("capacity-duration", scenario(CAPACITY | {"duration": "1m"}), "load.duration: unknown key (did you mean 'step_duration'?)"),
    ("capacity-workers", scenario(CAPACITY, workers=2), "workers: capacity-search runs its steps in one process"),
    ("capacity-abort", scenario(CAPACITY, thresholds={"abort_on_fail": {"error_rate": 0.5}}), "thresholds.abort_on_fail: not with capacity-search"),
    ("min-capacity-elsewhere", scenario(OPEN, thresholds={"min_capacity_rps": 100}), "thresholds.min_capacity_rps: applies to the capacity-search executor, not constant-arrival-rate"),
    ("min-capacity-zero", scenario(CAPACITY, thresholds={"min_capacity_rps": 0}), "thresholds.min_capacity_rps: must be > 0"),
    ("min-capacity-per-endpoint", scenario(CAPACITY, thresholds={"endpoints": {"ep": {"min_capacity_rps": 5}}}), "thresholds.endpoints.ep.min_capacity_rps: unknown key"),
    # the mock's capacity
    ("no-copies", scenario(OPEN, mock={"capacity": {"copies": 0}}), "mock.capacity.copies: must be >= 1"),
    ("copies-missing", scenario(OPEN, mock={"capacity": {}}), "mock.capacity.copies: field required"),
    # trace-replay
    ("trace-missing", scenario(TRACE | {"file": "nope.csv"}), "load.file: file not found: "),
    ("trace-suffix", scenario(TRACE | {"file": "trace.txt"}), "load.format: give csv or jsonl: the suffix of load.file (.txt) says neither"),
    ("trace-speedup", scenario(TRACE | {"speedup": 0}), "load.speedup: must be > 0"),
    ("trace-requests", scenario(TRACE | {"requests": 5}), "load.requests: unknown key"),
]
# fmt: on

TRACES = {
    "trace.csv": "offset_s,endpoint\n0,ep\n0.5,\n",
    "trace.txt": "offset_s\n0\n",
}


def validate(
    tmp_path: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    for name, text in TRACES.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code = cli.main(["validate", str(path)])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("data", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_each_error_is_one_line_naming_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any], expected: str
) -> None:
    code, lines = validate(tmp_path, data, capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {expected}"), lines


BAD_TRACES = [
    ("offset_s,endpoint\n0,ep\nsoon,ep\n", "line 3: offset_s: not a number ('soon')"),
    (
        "offset_s\n0.5\n0.1\n",
        "line 3: offset_s 0.1 is before the previous row's 0.5 (rows must be in time order)",
    ),
    ("offset_s\n-1\n", "line 2: offset_s: must be a finite number >= 0 ('-1')"),
    ("offset_s\nnan\n", "line 2: offset_s: must be a finite number >= 0 ('nan')"),
    ("when,endpoint\n0,ep\n", "line 1: no offset_s column"),
    (
        "offset_s,endpoint\n0,ep\n0.1,other\n",
        "row 2: no endpoint 'other' in this scenario (have ep)",
    ),
    ("offset_s\n", ": no rows"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_TRACES)
def test_a_bad_trace_row_is_one_line_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    TRACES["bad.csv"] = text
    try:
        code, lines = validate(tmp_path, scenario(TRACE | {"file": "bad.csv"}), capsys)
    finally:
        del TRACES["bad.csv"]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: load.file: {tmp_path / 'bad.csv'}"), lines
    assert lines[0].endswith(expected), lines


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"offset_s": 0}\n[1, 2]\n', "line 2: not a JSON object"),
        (
            '{"offset_s": 0}\n{"offset_s": }\n',
            "line 2: Expecting value: line 1 column 14 (char 13)",
        ),
        ('{"offset_s": true}\n', "line 1: offset_s: must be a finite number >= 0 (True)"),
        ('{"offset_s": 0, "endpoint": 7}\n', "line 1: endpoint: must be text (7)"),
        ('{"body": "x"}\n', "line 1: offset_s: field required"),
    ],
)
def test_a_bad_jsonl_row_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (tmp_path / "bad.jsonl").write_text(text)
    code, lines = validate(tmp_path, scenario(TRACE | {"file": "bad.jsonl"}), capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == f"error: load.file: {tmp_path / 'bad.jsonl'} {expected}", lines


def test_run_flags_that_do_not_apply_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario(CAPACITY)))
    assert cli.main(["run", str(path), "--duration", "5s", "--out", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error: --duration/--requests: capacity-search runs as many steps of "
        "load.step_duration as its search needs"
    ]
    assert not (tmp_path / "o").exists()
