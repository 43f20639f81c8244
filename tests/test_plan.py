"""The plan `loadgen validate` prints: counts from the schedule, defaults from the file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadgen.engine.schedule import constant_offsets, ramp_starts, ramping_offsets, starts_within
from loadgen.plan import Plan, plan_of
from loadgen.region import resolve_region
from loadgen.scenario import scenario_from_dict

QUICKSTART = Path(__file__).parent.parent / "scenarios" / "quickstart.yaml"
BASE: dict[str, Any] = yaml.safe_load(QUICKSTART.read_text())


def plan_for(data: dict[str, Any]) -> Plan:
    scenario = scenario_from_dict(data)
    return plan_of(scenario, resolve_region(scenario))


def with_load(load: dict[str, Any], **top: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["load"] = load
    data.update(top)
    return data


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        # 100/s for 30 s: starts at 0, 0.01, ... 29.99 s
        ({"executor": "constant-arrival-rate", "rate": 100, "duration": "30s"},
         "3,000 requests in 30s"),
        # the schedule is 5 s long; the last request ends after it
        ({"executor": "constant-arrival-rate", "rate": 100, "requests": 500},
         "500 requests in ~5s"),
        # both: whichever ends first (30 s would be 3,000)
        ({"executor": "constant-arrival-rate", "rate": 100, "duration": "30s", "requests": 10_000},
         "3,000 requests in 30s"),
        ({"executor": "constant-arrival-rate", "rate": 100, "duration": "30s", "requests": 20},
         "20 requests in ~200ms"),
        ({"executor": "constant-concurrency", "concurrency": 8, "duration": "1m30s"},
         "1m30s, as many requests as the endpoint answers"),
        ({"executor": "constant-concurrency", "concurrency": 8, "requests": 1},
         "1 request, for as long as the endpoint takes"),
        # 0 -> 100/s over 10 s (500), then 100/s for 20 s (2,000)
        ({"executor": "ramping-arrival-rate",
          "stages": [{"duration": "10s", "target": 100}, {"duration": "20s", "target": 100}]},
         "2,500 requests in 30s"),
    ],
)  # fmt: skip
def test_expected_requests_and_duration(load: dict[str, Any], expected: str) -> None:
    assert plan_for(with_load(load)).expected() == expected


@pytest.mark.parametrize(
    ("rate", "duration"), [(100.0, 30.0), (3.0, 1.0), (7.0, 0.3), (0.1, 25.0), (1e-3, 1e-3)]
)
def test_starts_within_counts_what_the_offsets_yield(rate: float, duration: float) -> None:
    assert starts_within(rate, duration) == len(list(constant_offsets(rate, duration, None)))


@pytest.mark.parametrize(
    ("start_rate", "stages"),
    [
        (0.0, [(30.0, 100.0)]),  # 0 -> 100/s over 30 s: 1,500
        (10.0, [(1.0, 10.0), (2.0, 0.0), (0.5, 7.0)]),
        (3.0, [(0.7, 11.0), (1.3, 2.5)]),
        (0.0, [(1.0, 0.0), (1.0, 1.0)]),
    ],
)
def test_ramp_starts_counts_what_the_offsets_yield(
    start_rate: float, stages: list[tuple[float, float]]
) -> None:
    assert ramp_starts(start_rate, stages) == len(list(ramping_offsets(start_rate, stages)))


def test_a_ramp_expects_what_its_schedule_starts() -> None:
    stages = [{"duration": 0.7, "target": 11}, {"duration": 1.3, "target": 2.5}]
    plan = plan_for(with_load({"executor": "ramping-arrival-rate",
                                                 "start_rate": 3, "stages": stages}))  # fmt: skip
    assert plan.requests == ramp_starts(3.0, [(0.7, 11.0), (1.3, 2.5)])
    assert plan.shape == "from 3/s -> 11/s over 700ms -> 2.5/s over 1.3s"


def test_busy_polling_is_said_beside_the_workers() -> None:
    load = {"executor": "constant-arrival-rate", "rate": 10, "duration": 1}
    assert "  workers       1" in plan_for(with_load(load)).lines()
    polled = plan_for(with_load(load, workers=2, busy_poll=True))
    assert "  workers       2, busy-polling (a core each)" in polled.lines()


def test_connections_are_split_as_the_workers_split_them() -> None:
    load = {"executor": "constant-arrival-rate", "rate": 10, "duration": 1, "max_in_flight": 10}
    plan = plan_for(with_load(load, workers=4))
    assert plan.connections == (3, 3, 2, 2)
    assert "  connections   10 (max_in_flight; 2-3 per worker)" in plan.lines()
    # fewer callers than workers: each worker still holds one connection
    load = {"executor": "constant-concurrency", "concurrency": 2, "duration": 1}
    plan = plan_for(with_load(load, workers=4))
    assert "  connections   4 (concurrency; 1 per worker)" in plan.lines()


def test_endpoint_url_is_the_regional_one_when_the_file_gives_none() -> None:
    data = copy.deepcopy(BASE)
    del data["endpoint_url"]
    data["region"] = "eu-west-1"
    plan = plan_for(data)
    assert plan.endpoint_url == "https://runtime.sagemaker.eu-west-1.amazonaws.com"
    assert not [d for d in plan.defaults if d.key.startswith("mock.")]  # the mock is not used
    data["endpoint_url"] = "http://127.0.0.1:9000"
    assert plan_for(data).endpoint_url == "http://127.0.0.1:9000"


def keys_set(node: dict[Any, Any], prefix: str = "") -> set[str]:
    """Every dotted key a scenario file sets (a list counts as one value)."""
    found = set()
    for key, value in node.items():
        found.add(prefix + str(key))
        if isinstance(value, dict):
            found |= keys_set(value, f"{prefix}{key}.")
    return found


def test_defaults_are_the_keys_the_file_did_not_set() -> None:
    data = copy.deepcopy(BASE)
    data["thresholds"]["abort_on_fail"] = {"error_rate": 0.5}
    defaults = {d.key: d.value for d in plan_for(data).defaults}
    # a subset: other branches add keys with defaults of their own
    assert (
        defaults.items()
        >= {
            "workers": "1",
            "tls.verify": "true",
            "load.connect_timeout": "5s",
            "thresholds.mismatch_rate": "0",
            "thresholds.abort_on_fail.grace": "10s",  # in a section the file set
            "mock.variants": "[{name: AllTraffic, weight: 1.0}]",
            "mock.region": "us-east-1",
        }.items()
    )
    assert not set(defaults) & keys_set(data)
    # defaults that do nothing are not "applied": no CA file, no mock seed, no limits
    assert not {"tls.ca_file", "mock.seed", "thresholds.error_rates"} & set(defaults)


def test_the_plan_of_a_capacity_search_bounds_its_steps() -> None:
    """50 -> 3200 req/s: the first step and six doublings, then a gap as wide as the good
    rate halved five times to within 5% (3.1%), one step more when the start is bad: at
    most 1 + 6 + 5 + 1 = 13 steps."""
    plan = plan_for(
        with_load(
            {
                "executor": "capacity-search",
                "start_rate": 50,
                "max_rate": 3200,
                "step_duration": "30s",
                "slo": {"latency_ms": {"p99": 250}},
            }
        )
    )
    assert plan.executor == "capacity-search"
    assert plan.shape == "from 50/s up to 3200/s, to within 5%"
    assert plan.expected() == "steps of 30s until the search ends (at most 13)"


def test_the_plan_of_a_trace_replay_counts_its_rows(tmp_path: Path) -> None:
    trace = tmp_path / "traffic.csv"
    trace.write_text("offset_s\n0\n1\n2.5\n4\n")
    load = {"executor": "trace-replay", "file": str(trace), "speedup": 2}
    plan = plan_for(with_load(load))
    assert plan.shape == "at the offsets in traffic.csv, 2x as fast"
    assert plan.expected() == "4 requests in 2s"  # the last offset, 4 s, replayed twice as fast
