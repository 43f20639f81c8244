"""Duration strings such as "30s", "1m30s", "500ms", "2h" (a bare number is seconds)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: object) -> float:
    """Seconds in `value`; ValueError with a user-facing reason otherwise."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30s, 5m or 500ms")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond a float's range
            raise ValueError("must be a finite duration >= 0") from None
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_units(text)
    else:
        raise ValueError("must be a duration such as 30s, 5m or 500ms")
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError("must be a finite duration >= 0")
    return seconds


def _parse_units(text: str) -> float:
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 1m30s, 500ms, 2h")
    return total


def format_duration(seconds: float) -> str:
    """`seconds` as a scenario would write it, readable back by parse_duration: "1m30s", "500ms"."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600.0)
    minutes, rest = divmod(rest, 60.0)
    text = (f"{hours:.0f}h" if hours else "") + (f"{minutes:.0f}m" if minutes else "")
    return text + (f"{rest:g}s" if rest or not text else "")
