"""Whatever a user types, loadgen answers with a valid Scenario or one line per problem.

Hypothesis mutates the quickstart scenario, feeds text that may not be YAML, and probes the
CustomAttributes, duration and rate rules. Inputs that once crashed the loader are pinned by
their own tests beside the properties.
"""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from loadgen import api
from loadgen.correlate import TRACE_ID_PLACEHOLDER, sample_trace_id
from loadgen.durations import format_duration, parse_duration
from loadgen.errors import ScenarioError
from loadgen.mock.config import MockConfig
from loadgen.mock.server import start_mock
from loadgen.scenario import Scenario, parse_yaml, scenario_from_dict

QUICKSTART = Path(__file__).parent.parent / "scenarios" / "quickstart.yaml"
BASE: dict[str, Any] = yaml.safe_load(QUICKSTART.read_text())
NOWHERE = Path("/nonexistent-loadgen-fuzz")  # relative body files never exist
SOURCE = "fuzz.yaml"

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the scenario loader --------------------------------------------------------------------

keys = st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: n * 10**300)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["30s", "1m30s", "0", "-1", "250ms", "abc", "mock", "http://x", "{trace_id}"])
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(keys | st.integers(), children, max_size=3)
    ),
    max_leaves=8,
)


def slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside `node` (dict keys and list indices)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        found.append((*path, key))
        if isinstance(child, dict | list) and child:
            found.extend(slots(child, (*path, key)))
    return found


def containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if isinstance(node, dict) else []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        if isinstance(child, dict | list):
            found.extend(containers(child, (*path, key)))
    return found


def at(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


@st.composite
def mutated_quickstart(draw: st.DrawFn) -> dict[str, Any]:
    """The quickstart with 1-4 keys deleted, values replaced, or unknown keys added."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["delete", "replace", "replace", "add"]))
        if action == "add":
            where = at(data, draw(st.sampled_from(containers(data))))
            where[draw(keys | st.integers())] = draw(values)
            continue
        paths = slots(data)
        if not paths:
            break
        *parent, key = draw(st.sampled_from(paths))
        if action == "delete":
            del at(data, tuple(parent))[key]
        else:
            at(data, tuple(parent))[key] = draw(values)
    return data


def heads(raw: Any) -> set[str]:
    """How a problem line may begin: the source, "scenario", a field, or a top-level key."""
    allowed = {SOURCE, "scenario", *Scenario.model_fields}
    if isinstance(raw, dict):
        for key in raw:
            if isinstance(key, int) and not isinstance(key, bool):
                allowed.add(f"[{key}]")
            else:  # keys that are not printable are shown with repr()
                allowed.add(str(key) if str(key).isprintable() else repr(str(key)))
    return allowed


def assert_loads_or_explains(raw: Any) -> Scenario | None:
    """A Scenario, or a ScenarioError of `<path or file>: <message>` lines; nothing else."""
    try:
        return scenario_from_dict(raw, base_dir=NOWHERE, source=SOURCE)
    except ScenarioError as exc:
        assert exc.problems
        allowed = heads(raw)
        for problem in exc.problems:
            assert "\n" not in problem, problem
            where, separator, message = problem.partition(": ")
            assert separator and message.strip(), problem
            assert any(problem.startswith(head) for head in allowed), (problem, allowed)
        return None


@FUZZ
@given(mutated_quickstart())
def test_mutated_scenario_loads_or_names_each_problem(data: dict[str, Any]) -> None:
    assert_loads_or_explains(data)
    # The same through YAML text, as a file would arrive.
    text = yaml.safe_dump(data, allow_unicode=True)
    assert_loads_or_explains(parse_yaml(text, SOURCE))


YAMLISH = st.text(
    alphabet=st.sampled_from(list("abcnulrtey:-,[]{}'\"#&*|>?% \n\t0123456789.")) | st.characters(),
    max_size=80,
)


@FUZZ
@given(st.one_of(YAMLISH, st.text(max_size=200)))
def test_any_text_parses_or_names_the_file(text: str) -> None:
    try:
        raw = parse_yaml(text, SOURCE)
    except ScenarioError as exc:
        (problem,) = exc.problems
        assert problem.startswith(f"{SOURCE}: ") and "\n" not in problem, problem
        return
    assert_loads_or_explains(raw)


@pytest.mark.parametrize(
    "text",
    ["load: !!float x", "load: !!int x", "load: !!timestamp x", "when: 2001-02-30", "[" * 5000],
)
def test_yaml_constructor_errors_are_scenario_errors(text: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_yaml(text, SOURCE)
    assert raised.value.problems[0].startswith(f"{SOURCE}: ")


def test_unreadable_character_is_one_problem_line() -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_yaml("name: \x1f", SOURCE)
    (problem,) = raised.value.problems
    assert problem.startswith(f"{SOURCE}: ") and "\n" not in problem, problem


def test_huge_integer_duration_is_a_field_error() -> None:
    """An int too large for a float (OverflowError) used to escape the loader."""
    data = copy.deepcopy(BASE)
    data["load"]["duration"] = 10**400
    with pytest.raises(ScenarioError) as raised:
        scenario_from_dict(data)
    assert raised.value.problems == ["load.duration: must be a finite duration >= 0"]


def test_unknown_key_with_a_line_break_stays_on_one_line() -> None:
    data = copy.deepcopy(BASE)
    data["load"]["rate\nlimit"] = 5
    assert_loads_or_explains(data)


def test_union_field_problems_name_the_field_only() -> None:
    data = copy.deepcopy(BASE)
    data["workers"] = 0
    with pytest.raises(ScenarioError) as raised:
        scenario_from_dict(data)
    assert all(problem.startswith("workers: ") for problem in raised.value.problems), (
        raised.value.problems
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "text",
    [
        "name: [unclosed\n",
        yaml.safe_dump(BASE | {"load": {"executor": "warp-speed", "rate": "fast"}, "extra": 1}),
    ],
    ids=["not-yaml", "bad-fields"],
)
def test_cli_rejects_bad_scenarios_with_exit_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for command in ("validate", "run"):
        extra = ["--out", str(tmp_path / "out")] if command == "run" else []
        result = cli(command, str(path), *extra)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), lines
    assert not (tmp_path / "out").exists()


# --- CustomAttributes: what the loader accepts, the mock accepts --------------------------

VISIBLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=1100)
ANY_TEXT = st.text(max_size=1100) | VISIBLE
# What the API refuses by construction: a character past "~" (or a tab) in visible text, or
# too much visible text. ANY_TEXT alone is mostly filtered out there: Hypothesis's
# filter_too_much health check failed that test 6 times in 300, and a run of the suite.
REFUSED = st.tuples(
    VISIBLE, st.characters(min_codepoint=0x80, exclude_categories=["Cs"]) | st.just("\t"), VISIBLE
).map("".join) | st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1025, max_size=1100
)


def loader_accepts(template: str) -> bool:
    data = copy.deepcopy(BASE)
    data["request"]["custom_attributes"] = template
    try:
        scenario_from_dict(data)
    except ScenarioError:
        return False
    return True


async def mock_answer(value: str) -> tuple[int, str | None]:
    """Send `value` as CustomAttributes to a fresh mock; its status and x-amzn-ErrorType."""
    async with await start_mock(MockConfig(latency_ms={"median": 0, "p99": 0})) as mock:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{mock.url}{api.invocation_path('ep')}",
                data=b"{}",
                headers={"Content-Type": "application/json", api.H_CUSTOM_ATTRIBUTES: value},
            ) as response:
                await response.read()
                error_type = response.headers.get(api.H_ERROR_TYPE)
                return response.status, error_type and error_type.split(":", 1)[0]


@FUZZ
@given(
    st.tuples(VISIBLE, VISIBLE).map(lambda parts: parts[0] + TRACE_ID_PLACEHOLDER + parts[1])
    | ANY_TEXT
)
async def test_custom_attributes_the_loader_accepts_the_mock_accepts(template: str) -> None:
    accepted = loader_accepts(template)
    assume(accepted)
    status, error_type = await mock_answer(
        template.replace(TRACE_ID_PLACEHOLDER, sample_trace_id())
    )
    assert (status, error_type) == (200, None)


@FUZZ
@given((REFUSED | ANY_TEXT).filter(lambda value: api.custom_attributes_problem(value) is not None))
async def test_custom_attributes_the_api_rejects_the_mock_rejects(value: str) -> None:
    # What HTTP itself cannot carry never reaches the mock: control characters are refused by
    # the client, and leading/trailing whitespace is not part of a header value.
    assume(not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value) and value == value.strip(" \t"))
    status, error_type = await mock_answer(value)
    assert (status, error_type) == (400, "ValidationError")


# --- durations ------------------------------------------------------------------------------


@FUZZ
@given(
    st.text(max_size=20)
    | st.text(alphabet="0123456789.msh +-eE_", max_size=12)
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.booleans()
    | st.none()
)
def test_parse_duration_is_a_finite_number_or_a_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 0


UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(UNITS)), st.integers(0, 10_000) | st.decimals(0, 100, places=3)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_generated_durations_round_trip(parts: list[tuple[str, Any]]) -> None:
    text = "".join(f"{amount}{unit}" for unit, amount in parts)
    expected = sum(float(amount) * UNITS[unit] for unit, amount in parts)
    assert math.isclose(parse_duration(text), expected, rel_tol=1e-12, abs_tol=1e-12), text


@pytest.mark.parametrize(
    ("text", "seconds"), [("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), ("1.5s", 1.5)]
)
def test_duration_examples(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@FUZZ
@given(st.floats(min_value=0.001, max_value=1e7))
def test_formatted_durations_read_back(seconds: float) -> None:
    text = format_duration(seconds)
    assert math.isclose(parse_duration(text), seconds, rel_tol=1e-5), text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.5, "500ms"), (30.0, "30s"), (90.0, "1m30s"), (5400.0, "1h30m")]
)
def test_duration_formats(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- rates -----------------------------------------------------------------------------------


def with_rate(rate: object) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["load"]["rate"] = rate
    return data


@FUZZ
@given(st.floats(allow_infinity=False) | st.integers(-(10**6), 10**6))
def test_rate_is_accepted_exactly_when_positive_and_finite(rate: float) -> None:
    if rate > 0:
        assert scenario_from_dict(with_rate(rate)).load.rate == rate  # type: ignore[union-attr]
        return
    with pytest.raises(ScenarioError) as raised:
        scenario_from_dict(with_rate(rate))
    expected = (
        "load.rate: must be a finite number" if math.isnan(rate) else "load.rate: must be > 0"
    )
    assert raised.value.problems == [expected]


@FUZZ
@given(st.text(max_size=12) | st.lists(st.integers(), max_size=2) | st.none())
def test_rate_that_is_not_a_number_is_a_field_error(rate: object) -> None:
    if isinstance(rate, str):
        try:
            float(rate)
            assume(False)  # numeric text: pydantic's lax mode reads "100" as 100.0
        except ValueError:
            pass
    with pytest.raises(ScenarioError) as raised:
        scenario_from_dict(with_rate(rate))
    (problem,) = raised.value.problems
    assert problem.startswith("load.rate: "), problem


@pytest.mark.parametrize("rate", [math.inf, ".inf"])
def test_infinite_rate_is_rejected(rate: object) -> None:
    data = (
        with_rate(rate)
        if rate is math.inf
        else parse_yaml(QUICKSTART.read_text().replace("rate: 200", f"rate: {rate}"), SOURCE)
    )
    with pytest.raises(ScenarioError) as raised:
        scenario_from_dict(data)
    assert raised.value.problems[0].startswith("load.rate: ")
