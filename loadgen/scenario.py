"""Scenario files: YAML -> typed, validated models. Every problem is reported with its field path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loadgen import api
from loadgen.correlate import TRACE_ID_PLACEHOLDER, sample_trace_id
from loadgen.durations import parse_duration
from loadgen.errors import ScenarioError
from loadgen.mock.config import MockConfig
from loadgen.suggest import did_you_mean, keys_at

Seconds = Annotated[float, BeforeValidator(parse_duration)]
PositiveSeconds = Annotated[Seconds, Field(gt=0)]
PercentileKey = Literal["p50", "p90", "p95", "p99", "p999", "max", "mean"]
PositiveMs = Annotated[float, Field(gt=0)]
Ratio = Annotated[float, Field(ge=0, le=1)]


def _name(pattern: re.Pattern[str]) -> Any:
    def check(value: str) -> str:
        problem = api.name_problem(value, pattern)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


EndpointName = Annotated[str, _name(api.ENDPOINT_NAME_RE)]
ComponentName = Annotated[str, _name(api.INFERENCE_COMPONENT_RE)]


class Strict(BaseModel):
    # no inf/nan anywhere: a rate of inf would start requests without end
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EndpointConfig(Strict):
    name: EndpointName
    target_variant: EndpointName | None = None
    target_model: (
        Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^\S[ -~]*$")] | None
    ) = None
    target_container_hostname: EndpointName | None = None
    inference_component: ComponentName | None = None

    @property
    def label(self) -> str:
        """Results key: the endpoint name, or name/variant when a variant is targeted."""
        suffix = self.target_variant or self.inference_component
        return f"{self.name}/{suffix}" if suffix else self.name


class RequestConfig(Strict):
    content_type: str = "application/json"
    accept: str | None = "application/json"
    body: str | None = None
    body_file: Path | None = None
    dataset: Path | None = None
    custom_attributes: str = TRACE_ID_PLACEHOLDER
    # InvokeEndpointWithResponseStream, its PayloadParts read as tokens in this format
    stream: bool = False
    stream_format: Literal["sse", "jsonl", "raw"] = "sse"

    @model_validator(mode="after")
    def _one_body_source(self) -> RequestConfig:
        given = [k for k in ("body", "body_file", "dataset") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of body, body_file, dataset (got {len(given)})")
        return self

    @field_validator("custom_attributes")
    @classmethod
    def _renders_within_limits(cls, value: str) -> str:
        if TRACE_ID_PLACEHOLDER not in value:
            raise ValueError(f"must contain {TRACE_ID_PLACEHOLDER}")
        problem = api.custom_attributes_problem(
            value.replace(TRACE_ID_PLACEHOLDER, sample_trace_id())
        )
        if problem:
            raise ValueError(f"rendered value {problem}")
        return value


def _check_percent(value: str) -> str:
    """A regression limit such as "10%" (or 0.1)."""
    text = str(value).strip()
    try:
        number = float(text.removesuffix("%"))
    except ValueError:
        number = -1.0
    if not text.endswith("%") or not 0 <= number < 10000:
        raise ValueError(f"must be a percentage such as 10% (got {text!r})")
    return text


def _check_correlation(value: str) -> str:
    if value in ("exact", "contains"):
        return value
    if value.startswith("regex:"):
        try:
            groups = re.compile(value[6:]).groups
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        if groups != 1:
            raise ValueError(
                f"regex must have exactly one group capturing the trace ID (has {groups})"
            )
        return value
    raise ValueError("must be exact, contains or regex:<pattern>")


class LoadBase(Strict):
    timeout: PositiveSeconds = 10.0
    connect_timeout: PositiveSeconds = 5.0
    stream_idle_timeout: PositiveSeconds | None = None  # streams: longest silence; else timeout

    @property
    def idle_timeout(self) -> float:
        """How long a stream may be silent before it is a Timeout."""
        return self.timeout if self.stream_idle_timeout is None else self.stream_idle_timeout


class FixedLength(LoadBase):
    duration: PositiveSeconds | None = None
    requests: Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _duration_or_requests(self) -> FixedLength:
        if self.duration is None and self.requests is None:
            raise ValueError("give duration or requests")
        return self


class ConstantConcurrency(FixedLength):
    """Closed loop: N callers, each starts its next request when the last one ends."""

    executor: Literal["constant-concurrency"]
    concurrency: Annotated[int, Field(gt=0)]

    @property
    def max_connections(self) -> int:
        return self.concurrency


class ArrivalProcess(Strict):
    """How an open loop's requests arrive around their mean rate, as vLLM's benchmark_serving
    draws them: evenly, as a Poisson process, or with gamma-distributed gaps whose shape is
    `burstiness` (1 is Poisson, below 1 burstier, above 1 more even). Latency still counts
    from each request's intended time."""

    arrival: Literal["constant", "poisson", "gamma"] = "constant"
    burstiness: Annotated[Annotated[float, Field(gt=0)] | None, Field(validate_default=True)] = (
        None  # gamma only, and required there
    )
    seed: Annotated[int, Field(ge=0)] | None = None  # poisson, gamma: same seed, same times

    @field_validator("burstiness")
    @classmethod
    def _shape_of_gamma(cls, value: float | None, info: ValidationInfo) -> float | None:
        arrival = info.data.get("arrival")
        if arrival == "gamma" and value is None:
            raise ValueError("required with arrival: gamma (its shape: 1 is Poisson, < 1 burstier)")
        if value is not None and arrival not in (None, "gamma"):
            raise ValueError(f"applies to arrival: gamma, not {arrival}")
        return value

    @field_validator("seed")
    @classmethod
    def _drawn_arrivals(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("arrival") == "constant":
            raise ValueError(
                "applies to arrival: poisson or gamma (constant arrivals draw nothing)"
            )
        return value


class ConstantArrivalRate(ArrivalProcess, FixedLength):
    """Open loop: requests start at a fixed rate whatever the endpoint does."""

    executor: Literal["constant-arrival-rate"]
    rate: Annotated[float, Field(gt=0)]
    max_in_flight: Annotated[int, Field(gt=0)] = 256

    @property
    def max_connections(self) -> int:
        return self.max_in_flight


class Stage(Strict):
    duration: PositiveSeconds
    target: Annotated[float, Field(ge=0)]


class RampingArrivalRate(ArrivalProcess, LoadBase):
    """Open loop: the rate moves linearly from stage to stage."""

    executor: Literal["ramping-arrival-rate"]
    start_rate: Annotated[float, Field(ge=0)] = 0.0
    stages: Annotated[list[Stage], Field(min_length=1)]
    max_in_flight: Annotated[int, Field(gt=0)] = 256

    @property
    def duration(self) -> float:
        return sum(stage.duration for stage in self.stages)

    @property
    def requests(self) -> None:
        return None

    @property
    def max_connections(self) -> int:
        return self.max_in_flight

    @model_validator(mode="after")
    def _some_traffic(self) -> RampingArrivalRate:
        if self.start_rate == 0 and all(stage.target == 0 for stage in self.stages):
            raise ValueError("every stage has target 0: nothing would be sent")
        return self


def _fraction(value: object) -> object:
    """A share given as 5% or as 0.05."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"must be a percentage such as 5% (got {value!r})") from None
    return value


MIN_STEP_REQUESTS = 10  # a capacity step with fewer has no percentiles worth judging


class Slo(Strict):
    """What a good capacity-search step meets over all its requests: latency percentiles
    from intended starts (TTFT's too, for streams) and the error rate."""

    latency_ms: dict[PercentileKey, PositiveMs] = {}
    ttft_ms: dict[PercentileKey, PositiveMs] = {}  # streams (request.stream) only
    error_rate: Ratio = 0.01

    @model_validator(mode="after")
    def _some_latency(self) -> Slo:
        if not self.latency_ms and not self.ttft_ms:
            raise ValueError(
                "give latency_ms (or ttft_ms for streams), e.g. latency_ms: {p99: 250}"
            )
        return self

    def limits(self) -> ThresholdSet:
        """The SLO as limits the gates check (gates.check_endpoint)."""
        return ThresholdSet(
            latency_ms=self.latency_ms,
            ttft_ms=self.ttft_ms,
            error_rate=self.error_rate,
        )


class CapacitySearch(ArrivalProcess, LoadBase):
    """Steps of open-loop load, the rate doubled while they meet the SLO and then bisected,
    to find the highest rate an endpoint serves within it (engine/capacity.py)."""

    executor: Literal["capacity-search"]
    start_rate: Annotated[float, Field(gt=0)]
    max_rate: Annotated[float, Field(gt=0)]
    step_duration: Annotated[PositiveSeconds, Field(validate_default=True)] = 30.0
    max_in_flight: Annotated[int, Field(gt=0)] = 256
    slo: Slo
    # the search ends when the last good and the first bad rate are this close (of the good)
    precision: Annotated[float, BeforeValidator(_fraction), Field(gt=0, lt=1)] = 0.05

    @field_validator("max_rate")
    @classmethod
    def _above_start(cls, value: float, info: ValidationInfo) -> float:
        start = info.data.get("start_rate")
        if start is not None and value < start:
            raise ValueError(f"must be >= start_rate ({start:g})")
        return value

    @field_validator("step_duration")
    @classmethod
    def _enough_requests(cls, value: float, info: ValidationInfo) -> float:
        start = info.data.get("start_rate")
        if start is not None and start * value < MIN_STEP_REQUESTS:
            raise ValueError(
                f"a step at start_rate {start:g} req/s sends {start * value:g} requests: give "
                f"at least {MIN_STEP_REQUESTS} (a longer step_duration or a higher start_rate)"
            )
        return value

    @property
    def duration(self) -> None:
        return None  # as many steps as the search needs

    @property
    def requests(self) -> None:
        return None

    @property
    def max_connections(self) -> int:
        return self.max_in_flight


TRACE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class TraceReplay(LoadBase):
    """Open loop: requests start at the offsets a CSV or JSONL file gives (loadgen/trace.py),
    each to its row's endpoint with its row's body when the row names them."""

    executor: Literal["trace-replay"]
    file: Path
    format: Annotated[Literal["csv", "jsonl"] | None, Field(validate_default=True)] = None
    speedup: Annotated[float, Field(gt=0)] = 1.0  # 2: the offsets halved
    max_in_flight: Annotated[int, Field(gt=0)] = 256

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None, info: ValidationInfo) -> str | None:
        path = info.data.get("file")
        if value is None and path is not None and path.suffix.lower() not in TRACE_SUFFIXES:
            raise ValueError(
                f"give csv or jsonl: the suffix of load.file ({path.suffix or 'none'}) says neither"
            )
        return value

    @property
    def trace_format(self) -> str:
        return self.format or TRACE_SUFFIXES[self.file.suffix.lower()]

    @property
    def duration(self) -> None:
        return None  # the trace's

    @property
    def requests(self) -> None:
        return None

    @property
    def max_connections(self) -> int:
        return self.max_in_flight


LoadConfig = Annotated[
    ConstantConcurrency | ConstantArrivalRate | RampingArrivalRate | CapacitySearch | TraceReplay,
    Field(discriminator="executor"),
]
EXECUTORS = (
    "constant-concurrency",
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "capacity-search",
    "trace-replay",
)


class ThresholdSet(Strict):
    """Limits a run must meet; each one becomes a pass/fail line, a junit testcase and exit code 1."""

    latency_ms: dict[PercentileKey, PositiveMs] = {}
    service_time_ms: dict[PercentileKey, PositiveMs] = {}
    error_rate: Ratio | None = None
    error_rates: dict[Annotated[str, Field(min_length=1)], Ratio] = {}  # per error code
    min_throughput_rps: Annotated[float, Field(gt=0)] | None = None
    late_start_rate: Ratio | None = None
    mismatch_rate: Ratio | None = (
        None  # None here means: inherit (0 at the top: any mismatch fails)
    )
    missing_rate: Ratio | None = None
    # streams (request.stream): over the streams that ended well
    ttft_ms: dict[PercentileKey, PositiveMs] = {}
    itl_ms: dict[PercentileKey, PositiveMs] = {}
    tpot_ms: dict[PercentileKey, PositiveMs] = {}
    min_output_tokens_per_s: Annotated[float, Field(gt=0)] | None = None
    min_goodput: Ratio | None = None  # share of requests within `goodput`'s limits

    def stream_limits(self) -> list[str]:
        """The keys set here that only a streaming run can meet."""
        keys = [key for key in ("ttft_ms", "itl_ms", "tpot_ms") if getattr(self, key)]
        singles = ("min_output_tokens_per_s", "min_goodput")
        return keys + [key for key in singles if getattr(self, key) is not None]


class GoodputLimits(Strict):
    """What one good streaming request meets, every limit at once (vLLM's goodput)."""

    ttft_ms: PositiveMs | None = None
    tpot_ms: PositiveMs | None = None
    latency_ms: PositiveMs | None = None  # end to end

    @model_validator(mode="after")
    def _some_limit(self) -> GoodputLimits:
        if self.ttft_ms is None and self.tpot_ms is None and self.latency_ms is None:
            raise ValueError("give ttft_ms, tpot_ms or latency_ms")
        return self


class AbortOnFail(Strict):
    """End the run early when a one-second window breaks these limits for `grace` in a row."""

    error_rate: Ratio | None = None
    latency_ms: dict[Literal["p50", "p90", "p99", "max"], PositiveMs] = {}
    grace: Seconds = 10.0

    @model_validator(mode="after")
    def _some_condition(self) -> AbortOnFail:
        if self.error_rate is None and not self.latency_ms:
            raise ValueError("give error_rate or latency_ms")
        return self


class Thresholds(ThresholdSet):
    mismatch_rate: Ratio | None = 0.0
    min_capacity_rps: Annotated[float, Field(gt=0)] | None = None  # capacity-search's result
    endpoints: dict[str, ThresholdSet] = {}  # per endpoint label, over the limits above
    abort_on_fail: AbortOnFail | None = None


class CompareMetric(StrEnum):
    """What a comparison compares: end-to-end latency, or a streaming run's token times."""

    LATENCY = "latency"
    TTFT = "ttft"  # time to first token, from the intended start
    ITL = "itl"  # each gap between token events
    TPOT = "tpot"  # per stream, time per output token after the first

    @property
    def label(self) -> str:
        """As the views name it: latency, TTFT, ITL, TPOT."""
        return self.value if self is CompareMetric.LATENCY else self.value.upper()

    @property
    def streams(self) -> bool:
        """Only a streaming run has it."""
        return self is not CompareMetric.LATENCY


class Comparison(Strict):
    """Two endpoints or variants of this run compared; slower beyond the limits (not noise) fails."""

    base: Annotated[str, Field(min_length=1)]
    new: Annotated[str, Field(min_length=1)]
    metric: CompareMetric = CompareMetric.LATENCY
    max_regression: dict[
        Literal["p50", "p90", "p99", "p999", "mean"], Annotated[str, AfterValidator(_check_percent)]
    ] = {}


RAY_ADDRESS_PATTERN = re.compile(
    r"^(auto|local|(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5}))$"
)


def _check_ray_address(value: str) -> str:
    match = RAY_ADDRESS_PATTERN.match(value)
    if match is None or (match[4] is not None and not 0 < int(match[4]) < 65536):
        raise ValueError("must be auto, local, HOST:PORT (the GCS) or ray://HOST:PORT")
    return value


class ClusterConfig(Strict):
    """Run the workers on a cluster: `workers: N` becomes N Ray actors (README: Running on a
    cluster)."""

    engine: Literal["ray"] = "ray"
    address: Annotated[str, AfterValidator(_check_ray_address)] = "auto"
    # driver: the driver resolves AWS credentials once and hands them to the actors in
    # memory; node: each actor uses its own host's chain (instance role, ...)
    credentials: Literal["driver", "node"] = "driver"


class TLSConfig(Strict):
    verify: bool = True  # off only when asked: real SageMaker is HTTPS
    ca_file: Path | None = None


def _check_workers(value: object) -> int | str:
    """A whole number of processes (1..256) or "auto"; one message, not one per union member."""
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('must be a whole number from 1 to 256, or "auto"')
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 256:
        raise ValueError('must be a whole number from 1 to 256, or "auto"')
    return number


Workers = Annotated[int | str, BeforeValidator(_check_workers)]


REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d+$"


class Scenario(Strict):
    name: Annotated[
        str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ]
    region: Annotated[str | None, Field(pattern=REGION_PATTERN)] = None  # see region.py
    endpoint_url: str | None = None
    transport: Literal["fast", "botocore"] = "fast"
    workers: Workers = 1
    busy_poll: bool = False  # engine/busypoll.py: each engine's loop never sleeps while it runs
    cluster: ClusterConfig | None = None  # None: the workers are local processes
    tls: TLSConfig = TLSConfig()
    endpoints: Annotated[list[EndpointConfig], Field(min_length=1)]
    request: RequestConfig
    correlation: Annotated[str, AfterValidator(_check_correlation)] = "contains"
    load: LoadConfig
    thresholds: Thresholds = Thresholds()
    goodput: GoodputLimits | None = None  # streams only
    compare: list[Comparison] = []
    mock: MockConfig = MockConfig()

    @field_validator("endpoint_url")
    @classmethod
    def _mock_or_http_url(cls, value: str | None) -> str | None:
        if value is None or value == "mock" or re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            return value
        raise ValueError('must be "mock" or an http(s):// URL')

    @field_validator("endpoints")
    @classmethod
    def _unique_labels(cls, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        labels = [endpoint.label for endpoint in endpoints]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"duplicate endpoint {', '.join(duplicates)}")
        return endpoints

    @property
    def uses_mock(self) -> bool:
        return self.endpoint_url == "mock"


# --- loading --------------------------------------------------------------------------------

# Command-line overrides: flag -> path in the scenario.
OVERRIDE_PATHS: dict[str, tuple[str, ...]] = {
    "--endpoint-url": ("endpoint_url",),
    "--transport": ("transport",),
    "--workers": ("workers",),
    "--busy-poll": ("busy_poll",),
    "--ray": ("cluster", "address"),
    "--duration": ("load", "duration"),
    "--requests": ("load", "requests"),
    "--rate": ("load", "rate"),
    "--concurrency": ("load", "concurrency"),
}

_MESSAGES = {
    "missing": "field required",
    "extra_forbidden": "unknown key",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "too_short": "must have at least {min_length} item(s)",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "literal_error": "must be one of {expected}",
    "union_tag_invalid": "must be one of {expected_tags}",
    "union_tag_not_found": "field required (one of " + ", ".join(EXECUTORS) + ")",
    "string_pattern_mismatch": "does not match {pattern}",
    "finite_number": "must be a finite number",
    "invalid_key": "keys must be text",
}


def load_scenario(
    path: str | os.PathLike[str], overrides: Mapping[str, object] | None = None
) -> Scenario:
    """Read, override and validate a scenario file; ScenarioError lists every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None
    raw = parse_yaml(text, str(path))
    return scenario_from_dict(raw, overrides, base_dir=path.parent, source=str(path))


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = _one_line(exc.problem or exc)
        raise ScenarioError(f"{source}: YAML syntax error at {where}: {problem}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: YAML nested too deeply") from None
    except Exception as exc:  # ReaderError; PyYAML constructors' ValueError on bad !!int, dates...
        raise ScenarioError(f"{source}: YAML error: {_one_line(exc)}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(
            f"{source}: must be a mapping of scenario fields, got {type(raw).__name__}"
        )
    return raw


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def scenario_from_dict(
    raw: dict[str, Any],
    overrides: Mapping[str, object] | None = None,
    base_dir: Path = Path("."),
    source: str = "scenario",
) -> Scenario:
    data = _apply_overrides(raw, overrides or {})
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(exc, overrides or {})) from None
    problems = _unknown_names(scenario) + _stream_problems(scenario) + _load_problems(scenario)
    if problems:
        raise ScenarioError(problems)
    scenario = _resolve_files(scenario, base_dir)
    _check_trace(scenario)
    return scenario


def _load_problems(scenario: Scenario) -> list[str]:
    """What the executor chosen rules out elsewhere in the scenario."""
    load = scenario.load
    problems = []
    if not isinstance(load, CapacitySearch):
        if scenario.thresholds.min_capacity_rps is not None:
            problems.append(
                f"thresholds.min_capacity_rps: applies to the capacity-search executor, "
                f"not {load.executor}"
            )
        return problems
    if scenario.workers != 1:
        problems.append("workers: capacity-search runs its steps in one process (workers: 1)")
    if scenario.cluster is not None:
        problems.append(
            "cluster: capacity-search runs its steps in one local process, not as Ray actors "
            "(no cluster, no --ray)"
        )
    if scenario.thresholds.abort_on_fail is not None:
        problems.append(
            "thresholds.abort_on_fail: not with capacity-search, whose steps overload the "
            "endpoint on purpose (the SLO judges each step)"
        )
    if load.slo.ttft_ms and not scenario.request.stream:
        problems.append("load.slo.ttft_ms: applies to streaming calls (request.stream: true)")
    return problems


def _check_trace(scenario: Scenario) -> None:
    """A trace is read through before anything is sent: every bad row is a problem."""
    load = scenario.load
    if isinstance(load, TraceReplay):
        from loadgen.trace import trace_problems

        labels = [endpoint.label for endpoint in scenario.endpoints]
        problems = trace_problems(load.file, load.trace_format, labels)
        if problems:
            raise ScenarioError([f"load.file: {problem}" for problem in problems])


def _stream_problems(scenario: Scenario) -> list[str]:
    """What InvokeEndpointWithResponseStream cannot do, and limits only it can meet."""
    thresholds = scenario.thresholds
    if not scenario.request.stream:
        sets = [("thresholds", thresholds)] + [
            (f"thresholds.endpoints.{label}", limits)
            for label, limits in thresholds.endpoints.items()
        ]
        problems = [
            f"{where}.{key}: applies to streaming calls (request.stream: true)"
            for where, limits in sets
            for key in limits.stream_limits()
        ]
        if scenario.goodput is not None:
            problems.append("goodput: applies to streaming calls (request.stream: true)")
        problems += [
            f"compare[{index}].metric: {pair.metric} applies to streaming calls "
            "(request.stream: true)"
            for index, pair in enumerate(scenario.compare)
            if pair.metric.streams
        ]
        return problems
    problems = [
        f"endpoints[{index}].target_model: InvokeEndpointWithResponseStream has no TargetModel"
        for index, endpoint in enumerate(scenario.endpoints)
        if endpoint.target_model is not None
    ]
    wants_goodput = [thresholds.min_goodput] + [
        limits.min_goodput for limits in thresholds.endpoints.values()
    ]
    if scenario.goodput is None and any(limit is not None for limit in wants_goodput):
        problems.append("thresholds.min_goodput: needs goodput: {ttft_ms: ..., tpot_ms: ...}")
    return problems


def _unknown_names(scenario: Scenario) -> list[str]:
    """Thresholds and comparisons may only name endpoints (or their variants) of this scenario."""
    labels = {endpoint.label for endpoint in scenario.endpoints}
    names = {endpoint.name for endpoint in scenario.endpoints}
    problems = [
        f"thresholds.endpoints.{label}: no such endpoint (have {', '.join(sorted(labels))})"
        for label in scenario.thresholds.endpoints
        if label not in labels
    ]
    for index, pair in enumerate(scenario.compare):
        for side in ("base", "new"):
            name = getattr(pair, side)
            if name not in labels and name.split("/", 1)[0] not in names | labels:
                problems.append(
                    f"compare[{index}].{side}: no endpoint {name!r} (have {', '.join(sorted(labels))})"
                )
    return problems


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, object]) -> dict[str, Any]:
    data = dict(raw)
    for flag, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = OVERRIDE_PATHS[flag]
        node = data
        for key in parents:
            child = node.get(key)
            node[key] = dict(child) if isinstance(child, dict) else {}
            node = node[key]
        node[leaf] = value
        if leaf in ("duration", "requests"):  # one length replaces the other
            node.pop("requests" if leaf == "duration" else "duration", None)
    return data


def _format_errors(exc: ValidationError, overrides: Mapping[str, object]) -> list[str]:
    flags = {OVERRIDE_PATHS[f]: f for f, v in overrides.items() if v is not None}
    problems = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part not in EXECUTORS)
        if error["type"] == "invalid_key" and loc:  # a key that is not text: shown as [key]
            loc = (*loc[:-1], int(loc[-1]) if str(loc[-1]).lstrip("-").isdigit() else loc[-1])
        if error["type"].startswith("union_tag"):
            loc += (str(error["ctx"]["discriminator"]).strip("'"),)
        path = _format_loc(loc)
        ctx = {k: _plain(v) for k, v in (error.get("ctx") or {}).items()}
        try:
            message = _MESSAGES[error["type"]].format(**ctx)
        except KeyError:  # no template, or pydantic gave other context: its own words
            message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            *parents, key = error["loc"]
            message += did_you_mean(str(key), keys_at(Scenario, parents))
        flag = flags.get(tuple(str(p) for p in loc))
        where = f"{flag} ({path})" if flag else (path or "scenario")
        problems.append(f"{where}: {message}")
    return sorted(dict.fromkeys(problems), key=problems.index)


def _plain(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            part = str(part)
            if not part.isprintable():  # a key with a line break must not split the problem line
                part = repr(part)
            text += f".{part}" if text else part
    return text


def _resolve_files(scenario: Scenario, base_dir: Path) -> Scenario:
    """Body files are relative to the scenario file; a missing one is an error before any request."""
    problems: list[str] = []

    def resolve(section: str, model: BaseModel, keys: tuple[str, ...]) -> BaseModel:
        updates = {}
        for key in keys:
            given: Path | None = getattr(model, key)
            if given is None:
                continue
            resolved = given if given.is_absolute() else base_dir / given
            if not resolved.is_file():
                problems.append(f"{section}.{key}: file not found: {resolved}")
            updates[key] = resolved
        return model.model_copy(update=updates) if updates else model

    request = resolve("request", scenario.request, ("body_file", "dataset"))
    tls = resolve("tls", scenario.tls, ("ca_file",))
    load: BaseModel = scenario.load
    if isinstance(load, TraceReplay):
        load = resolve("load", load, ("file",))
    if problems:
        raise ScenarioError(problems)
    return scenario.model_copy(update={"request": request, "tls": tls, "load": load})
