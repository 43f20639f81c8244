"""RequestFactory: the next request's target, body, trace ID and CustomAttributes."""

from __future__ import annotations

import json
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


# Media types whose every dataset line must be one JSON value.
JSON_MEDIA_TYPES = frozenset(
    {"application/json", "application/jsonlines", "application/x-jsonlines", "application/x-ndjson"}
)
MAX_LINES_SHOWN = 5  # a dataset with a million bad lines is not a million error lines


def load_bodies(scenario: Scenario) -> list[bytes]:
    """All bodies the run sends, read before it starts; each checked against the 6 MiB limit."""
    request = scenario.request
    if request.dataset is not None:
        return _dataset(request.dataset, is_json(request.content_type))
    if request.body is not None:
        body, source = request.body.encode("utf-8"), "request.body"
    else:
        assert request.body_file is not None
        body, source = _read(request.body_file, "request.body_file"), "request.body_file"
    if len(body) > api.MAX_BODY_BYTES:
        raise ScenarioError(f"{source}: {_too_big(body)}")
    return [body]


def is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in JSON_MEDIA_TYPES or media_type.endswith("+json")


def _dataset(path: Path, json_lines: bool) -> list[bytes]:
    """One body per non-empty line. With a JSON content type each line must parse: a bad
    line is a usage error now, not a stream of 400s from the endpoint. Problems name the
    line of the file."""
    numbered = [
        (number, line)
        for number, line in enumerate(_read(path, "request.dataset").splitlines(), 1)
        if line.strip()
    ]
    if not numbered:
        raise ScenarioError(f"request.dataset: {path} has no non-empty lines")
    problems = []
    for number, line in numbered:
        problem = _too_big(line) if len(line) > api.MAX_BODY_BYTES else None
        if problem is None and json_lines:
            problem = _json_problem(line)
        if problem:
            problems.append(f"request.dataset: {path} line {number}: {problem}")
    if len(problems) > MAX_LINES_SHOWN:
        hidden = len(problems) - MAX_LINES_SHOWN
        problems[MAX_LINES_SHOWN:] = [f"request.dataset: {path}: {hidden} more bad line(s)"]
    if problems:
        raise ScenarioError(problems)
    return [line for _, line in numbered]


def _too_big(body: bytes) -> str:
    return f"body is {len(body)} bytes, the API allows at most {api.MAX_BODY_BYTES}"


def _json_problem(line: bytes) -> str | None:
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    except UnicodeDecodeError:
        return "not JSON (not UTF-8 text)"
    except RecursionError:
        return "not JSON (nested too deeply)"
    return None


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
