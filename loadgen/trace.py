"""Trace files for the trace-replay executor: when each request starts, and optionally where
it goes and what it carries.

CSV (a header row naming the columns) or JSON lines, one request a row, in time order:
`offset_s` (seconds from the run's start, required), `endpoint` (an endpoint label of the
scenario; else the scenario's endpoints in turn) and `body` (text, or in JSON lines any JSON
value, sent as compact JSON; else the scenario's request body). Other columns are ignored:
a trace exported from elsewhere need not be trimmed.

Rows are read lazily, twice (the schedule and the requests walk the file side by side), so
a trace of millions of rows costs no memory; `trace_problems` reads it through once before
the run, so a bad row is a scenario error before anything is sent.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any, NamedTuple

from loadgen import api

PROBLEMS_SHOWN = 5  # bad rows listed; a trace with more has the count said


class TraceRow(NamedTuple):
    offset_s: float
    endpoint: str | None  # None: the scenario's endpoints in turn
    body: bytes | None  # None: the scenario's request body


class TraceError(ValueError):
    """A row that cannot be replayed; says where."""


def read_trace(path: Path, fmt: str) -> Iterator[TraceRow]:
    """The rows of a trace, lazily; TraceError (naming the line) at the first bad one."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = _csv_rows(handle) if fmt == "csv" else _jsonl_rows(handle)
        previous = 0.0
        for line, fields in rows:
            try:
                row = _row(fields)
                if row.offset_s < previous:
                    raise ValueError(
                        f"offset_s {row.offset_s:g} is before the previous row's "
                        f"{previous:g} (rows must be in time order)"
                    )
            except ValueError as exc:
                raise TraceError(f"{path} line {line}: {exc}") from None
            previous = row.offset_s
            yield row


def trace_problems(path: Path, fmt: str, labels: Sequence[str]) -> list[str]:
    """Why this trace cannot be replayed against these endpoint labels; empty if it can."""
    problems: list[str] = []
    rows = 0
    try:
        for rows, row in enumerate(read_trace(path, fmt), 1):  # noqa: B007 (rows counted)
            if row.endpoint is not None and row.endpoint not in labels:
                problems.append(
                    f"{path} row {rows}: no endpoint {row.endpoint!r} in this scenario "
                    f"(have {', '.join(labels)})"
                )
            if len(problems) >= PROBLEMS_SHOWN:
                return problems
    except TraceError as exc:
        return [*problems, str(exc)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [*problems, f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"]
    if not rows and not problems:
        problems.append(f"{path}: no rows")
    return problems


class TraceShape(NamedTuple):
    rows: int
    first_s: float
    last_s: float

    def rate(self, speedup: float) -> float | None:
        """The trace's mean rate as replayed, counted as an open loop's achieved rate is:
        (rows - 1) over the time from the first start to the last; None if that is zero."""
        span = (self.last_s - self.first_s) / speedup
        return (self.rows - 1) / span if self.rows > 1 and span > 0 else None


def trace_shape(path: Path, fmt: str) -> TraceShape:
    rows, first, last = 0, 0.0, 0.0
    for row in read_trace(path, fmt):
        if not rows:
            first = row.offset_s
        rows += 1
        last = row.offset_s
    return TraceShape(rows, first, last)


def take_rows(rows: Iterator[TraceRow], share: int, shares: int) -> Iterator[TraceRow]:
    """Every `shares`-th row from `share`: as schedule.take_share splits the offsets."""
    return islice(rows, share, None, shares)


# --- parsing --------------------------------------------------------------------------------


def _csv_rows(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(handle)
    if "offset_s" not in (reader.fieldnames or ()):
        raise TraceError(f"{getattr(handle, 'name', 'trace')} line 1: no offset_s column")
    for record in reader:
        yield reader.line_num, {key: value for key, value in record.items() if value != ""}


def _jsonl_rows(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, text in enumerate(handle, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{getattr(handle, 'name', 'trace')} line {line}: {exc}") from None
        if not isinstance(record, dict):
            raise TraceError(f"{getattr(handle, 'name', 'trace')} line {line}: not a JSON object")
        yield line, record


def _row(fields: dict[str, Any]) -> TraceRow:
    offset = fields.get("offset_s")
    if offset is None:
        raise ValueError("offset_s: field required")
    try:
        offset_s = float(offset)
    except (TypeError, ValueError):
        raise ValueError(f"offset_s: not a number ({offset!r})") from None
    if isinstance(offset, bool) or not math.isfinite(offset_s) or offset_s < 0:
        raise ValueError(f"offset_s: must be a finite number >= 0 ({offset!r})")
    endpoint = fields.get("endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        raise ValueError(f"endpoint: must be text ({endpoint!r})")
    body = fields.get("body")
    data = None
    if body is not None:
        if isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        if len(data) > api.MAX_BODY_BYTES:
            raise ValueError(
                f"body: {len(data)} bytes, the API allows at most {api.MAX_BODY_BYTES}"
            )
    return TraceRow(offset_s, endpoint or None, data)
