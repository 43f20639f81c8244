"""A scenario resolved into what a run would do: the plan `loadgen validate` prints.

Counts come from the schedule's own arithmetic and connections from the same split the
workers use, so the plan says what the run will do, not a second estimate of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml
from pydantic import BaseModel, BeforeValidator

from loadgen.durations import format_duration, parse_duration
from loadgen.engine.context import share_of
from loadgen.engine.schedule import ramp_starts, starts_within
from loadgen.engine.transports import regional_url
from loadgen.region import ResolvedRegion
from loadgen.scenario import (
    CapacitySearch,
    ConstantArrivalRate,
    ConstantConcurrency,
    LoadConfig,
    RampingArrivalRate,
    Scenario,
    TraceReplay,
)


@dataclass(frozen=True)
class AppliedDefault:
    """A key the file did not set, and the value the run uses for it."""

    key: str  # dotted, as in error messages: load.max_in_flight
    value: str  # as a scenario would write it


@dataclass(frozen=True)
class Plan:
    """What a run of the scenario would do, every default and "auto" resolved."""

    endpoint_url: str  # where requests go: a URL, or "built-in mock"
    region: ResolvedRegion  # what every call is signed for, and where that came from
    endpoints: tuple[str, ...]  # labels
    executor: str
    shape: str  # the executor's own numbers: "at 100/s", "with 8 callers", the stages
    requests: int | None  # None: as many as the endpoint answers within `duration_s`
    duration_s: float | None  # None: as long as the endpoint takes for `requests`
    exact_duration: bool  # False: the schedule's length; the last requests end after it
    transport: str
    workers: int
    workers_auto: bool  # workers: "auto", resolved to the CPU count
    connections: tuple[int, ...]  # per worker process
    connections_key: str  # the key that sets them: concurrency or max_in_flight
    timeout_s: float
    connect_timeout_s: float
    correlation: str
    defaults: tuple[AppliedDefault, ...]
    cluster: str | None = None  # "Ray at ADDRESS": the workers are actors there
    busy_poll: bool = False  # each worker's loop polls without sleeping: a core each
    search_steps: int | None = None  # capacity-search: at most this many steps of duration_s

    def lines(self) -> list[str]:
        """The plan as `validate` prints it, one fact a line."""
        total = sum(self.connections)
        low, high = min(self.connections), max(self.connections)
        per_worker = f"{low}" if low == high else f"{low}-{high}"
        connections = (
            f"{total} ({self.connections_key})"
            if self.workers == 1
            else f"{total} ({self.connections_key}; {per_worker} per worker)"
        )
        timeout = (
            f"{format_duration(self.timeout_s)} (connect {format_duration(self.connect_timeout_s)})"
        )
        workers = (
            f"{self.workers} (auto: the CPU count)" if self.workers_auto else str(self.workers)
        )
        if self.busy_poll:
            workers += ", busy-polling (a core each)"
        rows = [
            ("endpoint URL", self.endpoint_url),
            ("region", str(self.region)),
            ("endpoints", ", ".join(self.endpoints)),
            ("executor", f"{self.executor} {self.shape}"),
            ("expected", self.expected()),
            ("transport", self.transport),
            ("workers", workers),
            *([("cluster", self.cluster)] if self.cluster else []),
            ("connections", connections),
            ("timeout", timeout),
            ("correlation", self.correlation),
        ]
        lines = [f"  {name:<13} {value}" for name, value in rows]
        if self.defaults:
            lines.append("  defaults applied (keys the file does not set):")
            lines.extend(f"    {default.key}: {default.value}" for default in self.defaults)
        return lines

    def expected(self) -> str:
        """3,000 requests in 30s; a closed loop's unknown half is said in words."""
        if self.search_steps is not None:
            assert self.duration_s is not None
            step = format_duration(self.duration_s)
            return f"steps of {step} until the search ends (at most {self.search_steps})"
        if self.requests is None:
            assert self.duration_s is not None
            return f"{format_duration(self.duration_s)}, as many requests as the endpoint answers"
        count = f"{self.requests:,} request{'s' * (self.requests != 1)}"
        if self.duration_s is None:
            return f"{count}, for as long as the endpoint takes"
        duration = format_duration(self.duration_s)
        return f"{count} in {duration}" if self.exact_duration else f"{count} in ~{duration}"


def plan_of(scenario: Scenario, region: ResolvedRegion) -> Plan:
    """The plan of `scenario` run with `region` (region.py resolved it)."""
    load = scenario.load
    requests, duration, exact = _length(load)
    workers = _workers(scenario)
    if scenario.uses_mock:
        url = "built-in mock"
    elif scenario.endpoint_url is not None:
        url = scenario.endpoint_url
    else:
        url = regional_url(region.name)
    return Plan(
        endpoint_url=url,
        region=region,
        endpoints=tuple(endpoint.label for endpoint in scenario.endpoints),
        executor=load.executor,
        shape=_shape(load),
        requests=requests,
        duration_s=duration,
        exact_duration=exact,
        transport=scenario.transport,
        workers=workers,
        workers_auto=scenario.workers == "auto",
        connections=tuple(share_of(load.max_connections, i, workers) for i in range(workers)),
        connections_key="concurrency" if isinstance(load, ConstantConcurrency) else "max_in_flight",
        timeout_s=load.timeout,
        connect_timeout_s=load.connect_timeout,
        correlation=scenario.correlation,
        defaults=tuple(defaults_applied(scenario)),
        cluster=_cluster(scenario),
        busy_poll=scenario.busy_poll,
        search_steps=_search_steps(load) if isinstance(load, CapacitySearch) else None,
    )


def _cluster(scenario: Scenario) -> str | None:
    cluster = scenario.cluster
    if cluster is None:
        return None
    auto = " (workers: auto is the cluster's CPUs)" if scenario.workers == "auto" else ""
    return f"Ray at {cluster.address}, one CPU per worker, credentials from the {cluster.credentials}{auto}"


def _search_steps(load: CapacitySearch) -> int:
    from loadgen.engine.search import Search  # arithmetic only: light to import

    return Search(load.start_rate, load.max_rate, load.precision).most_steps(load.start_rate)


def _length(load: LoadConfig) -> tuple[int | None, float | None, bool]:
    """(requests, duration, whether the duration is exact) that the schedule sets."""
    if isinstance(load, RampingArrivalRate):
        stages = [(stage.duration, stage.target) for stage in load.stages]
        return ramp_starts(load.start_rate, stages), load.duration, True
    if isinstance(load, ConstantConcurrency):  # a closed loop: the endpoint sets the rest
        return load.requests, load.duration, True
    if isinstance(load, CapacitySearch):  # steps: the search decides how many
        return None, load.step_duration, False
    if isinstance(load, TraceReplay):
        from loadgen.trace import trace_shape

        shape = trace_shape(load.file, load.trace_format)
        return shape.rows, shape.last_s / load.speedup, True
    if load.duration is not None:
        within = starts_within(load.rate, load.duration)
        if load.requests is None or load.requests >= within:
            return within, load.duration, True
    assert load.requests is not None
    return load.requests, load.requests / load.rate, False


def _shape(load: LoadConfig) -> str:
    if isinstance(load, ConstantArrivalRate):
        return f"at {load.rate:g}/s"
    if isinstance(load, ConstantConcurrency):
        return f"with {load.concurrency} caller{'s' * (load.concurrency != 1)}"
    if isinstance(load, CapacitySearch):
        return (
            f"from {load.start_rate:g}/s up to {load.max_rate:g}/s, "
            f"to within {load.precision * 100:g}%"
        )
    if isinstance(load, TraceReplay):
        return f"at the offsets in {load.file.name}" + (
            f", {load.speedup:g}x as fast" if load.speedup != 1 else ""
        )
    steps = [f"{load.start_rate:g}/s"]
    steps += [f"{stage.target:g}/s over {format_duration(stage.duration)}" for stage in load.stages]
    return "from " + " -> ".join(steps)


def _workers(scenario: Scenario) -> int:
    if isinstance(scenario.workers, int):
        return scenario.workers
    # "auto", resolved by the run's own rule; imported only here, since the runner costs
    # half a second to import and every other validate does without it
    from loadgen.engine.runner import worker_count

    return worker_count(scenario)


def defaults_applied(scenario: Scenario) -> Iterator[AppliedDefault]:
    """Every key the file did not set whose default does something (None, {} and [] do
    nothing), in sections it set or not; the mock's only when the mock serves the run."""
    for default in _unset(scenario, ""):
        if default.key.startswith("mock.") and not scenario.uses_mock:
            continue
        yield default


def _unset(model: BaseModel, prefix: str) -> Iterator[AppliedDefault]:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = prefix + name
        if isinstance(value, BaseModel):
            yield from _unset(value, key + ".")
        elif name not in model.model_fields_set and value not in (None, {}, []):
            is_duration = any(
                isinstance(meta, BeforeValidator) and meta.func is parse_duration
                for meta in field.metadata
            )
            yield AppliedDefault(key, format_duration(value) if is_duration else _show(value))


def _show(value: object) -> str:
    """A value as YAML would write it, on one line."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    elif isinstance(value, list):
        value = [
            item.model_dump(mode="json", exclude_none=True) if isinstance(item, BaseModel) else item
            for item in value
        ]
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1_000_000)
    return text.strip().removesuffix("...").strip()
