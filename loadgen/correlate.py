"""Trace IDs and the check that the endpoint echoed the right one back."""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

TRACE_ID_PLACEHOLDER = "{trace_id}"
# run (8 hex) - worker (3 hex) - counter (12 hex): fixed width, so no ID is a prefix of another
# and "contains" can never match trace 1 inside trace 10.
TRACE_ID_LENGTH = 8 + 1 + 3 + 1 + 12
MAX_SAMPLES = 10


def new_run_id() -> str:
    """Eight random hex digits: trace IDs of different runs never collide."""
    return os.urandom(4).hex()


# The counter's last three hex digits, made once: formatting all twelve per ID costs ~130 ns.
_LOW_DIGITS = [f"{low:03x}" for low in range(0x1000)]


class TraceIds:
    """Unique trace IDs from a counter: unique across runs (run id) and processes (worker)."""

    __slots__ = ("_prefix", "_counter", "_high")

    def __init__(self, run_id: str, worker: int = 0, first: int = 1) -> None:
        if len(run_id) != 8 or not 0 <= worker < 0x1000 or not 1 <= first < 1 << 48:
            raise ValueError("run_id must be 8 characters, worker < 4096 and 1 <= first < 2**48")
        self._prefix = f"{run_id}-{worker:03x}-"
        self._counter = first - 1
        # all but the counter's last three digits
        self._high = f"{self._prefix}{first >> 12:09x}"

    def next(self) -> str:
        counter = self._counter = self._counter + 1
        low = counter & 0xFFF
        if not low:  # every 4096th ID: the higher digits move on
            self._high = f"{self._prefix}{counter >> 12:09x}"
        return self._high + _LOW_DIGITS[low]


def sample_trace_id() -> str:
    return "00000000-000-000000000000"


class Echo(enum.Enum):
    MATCHED = "matched"
    MISMATCHED = "mismatched"
    MISSING = "missing"


# Enum member look-ups cost ~0.1 µs each in Python 3.11; `check` runs once per request.
_MATCHED = Echo.MATCHED
_MISMATCHED = Echo.MISMATCHED
_MISSING = Echo.MISSING


@dataclass(frozen=True, slots=True)
class MismatchSample:
    trace_id: str
    sent: str
    received: str


class Correlator:
    """Classifies one echoed CustomAttributes value against what was sent.

    exact: the echo equals the sent CustomAttributes; contains: the echo contains the trace ID;
    regex:<p>: group 1 of the first match equals the trace ID. `check` is the mode's own
    method, bound once: it runs once per request.
    """

    __slots__ = ("mode", "_regex", "check")

    def __init__(self, mode: str) -> None:
        self.mode = "regex" if mode.startswith("regex:") else mode
        self._regex = re.compile(mode[6:]) if self.mode == "regex" else None
        checks = {"exact": self._exact, "contains": self._contains, "regex": self._search}
        if self.mode not in checks:
            raise ValueError(f"unknown correlation mode {mode!r}")
        self.check: Callable[[str, str, str | None], Echo] = checks[self.mode]

    @staticmethod
    def _exact(trace_id: str, sent: str, echoed: str | None) -> Echo:
        if not echoed:
            return _MISSING
        return _MATCHED if echoed == sent else _MISMATCHED

    @staticmethod
    def _contains(trace_id: str, sent: str, echoed: str | None) -> Echo:
        if not echoed:
            return _MISSING
        return _MATCHED if trace_id in echoed else _MISMATCHED

    def _search(self, trace_id: str, sent: str, echoed: str | None) -> Echo:
        if not echoed:
            return _MISSING
        assert self._regex is not None
        match = self._regex.search(echoed)
        return _MATCHED if match is not None and match.group(1) == trace_id else _MISMATCHED
