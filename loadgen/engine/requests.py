"""RequestFactory: the next request's target, body, trace ID and CustomAttributes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from loadgen import api
from loadgen.correlate import TRACE_ID_PLACEHOLDER, TraceIds
from loadgen.errors import ScenarioError
from loadgen.scenario import Scenario
from loadgen.trace import TraceRow
from loadgen.transport.base import Request, Target


def targets_of(scenario: Scenario) -> list[Target]:
    request = scenario.request
    return [
        Target(
            label=endpoint.label,
            endpoint_name=endpoint.name,
            content_type=request.content_type,
            accept=request.accept,
            target_variant=endpoint.target_variant,
            target_model=endpoint.target_model,
            target_container_hostname=endpoint.target_container_hostname,
            inference_component=endpoint.inference_component,
            stream=request.stream,
            stream_format=request.stream_format,
        )
        for endpoint in scenario.endpoints
    ]


def load_bodies(scenario: Scenario) -> list[bytes]:
    """All bodies the run sends, read before it starts; each checked against the 6 MiB limit."""
    request = scenario.request
    if request.body is not None:
        bodies = [request.body.encode("utf-8")]
        source = "request.body"
    elif request.body_file is not None:
        bodies = [_read(request.body_file, "request.body_file")]
        source = "request.body_file"
    else:
        assert request.dataset is not None
        lines = _read(request.dataset, "request.dataset").splitlines()
        bodies = [line for line in lines if line.strip()]
        source = "request.dataset"
        if not bodies:
            raise ScenarioError(f"{source}: {request.dataset} has no non-empty lines")
    for number, body in enumerate(bodies, 1):
        if len(body) > api.MAX_BODY_BYTES:
            where = f" line {number}" if request.dataset is not None else ""
            raise ScenarioError(
                f"{source}{where}: body is {len(body)} bytes, the API allows at most {api.MAX_BODY_BYTES}"
            )
    return bodies


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None


class RequestFactory:
    """Round-robins targets and bodies, so several endpoints see the same interleaved traffic."""

    __slots__ = ("targets", "_bodies", "_trace_ids", "_parts", "_count", "_single")

    def __init__(
        self, targets: list[Target], bodies: list[bytes], template: str, trace_ids: TraceIds
    ) -> None:
        self.targets = targets
        self._bodies = bodies
        self._trace_ids = trace_ids
        self._parts = template.split(TRACE_ID_PLACEHOLDER)  # joined by each trace ID
        self._count = 0
        # one target and one body, the usual case: no arithmetic per request
        self._single = (targets[0], bodies[0]) if len(targets) == len(bodies) == 1 else None

    def next(self) -> Request:
        trace_id = self._trace_ids.next()
        attributes = trace_id.join(self._parts)
        single = self._single
        if single is not None:
            target, body = single
            return Request(target, body, trace_id, attributes)
        count = self._count
        self._count = count + 1
        rounds, target_index = divmod(count, len(self.targets))
        # each body goes to every target in turn
        body = self._bodies[rounds % len(self._bodies)]
        return Request(self.targets[target_index], body, trace_id, attributes)


class RequestSource(Protocol):
    """What the Engine's callers take each next request from."""

    targets: list[Target]

    def next(self) -> Request: ...


class TraceRequests:
    """A trace's requests: each from `base` (its trace ID, and its target and body unless its
    row names them), taken in the trace's order as the schedule hands out the rows' times."""

    __slots__ = ("targets", "_base", "_rows", "_by_label")

    def __init__(self, base: RequestSource, rows: Iterator[TraceRow]) -> None:
        self.targets = base.targets
        self._base = base
        self._rows = rows
        self._by_label = {target.label: target for target in base.targets}

    def next(self) -> Request:
        request = self._base.next()
        row = next(self._rows, None)  # one row per start: never short while starts remain
        if row is not None:
            if row.endpoint is not None:
                request.target = self._by_label[row.endpoint]  # checked when loaded
            if row.body is not None:
                request.body = row.body
        return request
