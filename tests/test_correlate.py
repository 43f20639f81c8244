"""The correlator's three modes, on echoes that match, differ or are missing."""

from __future__ import annotations

import pytest

from loadgen.correlate import Correlator, Echo

TRACE = "0badcafe-000-000000000010"
SENT = f"trace={TRACE}"


@pytest.mark.parametrize(
    ("mode", "echoed", "expected"),
    [
        ("exact", SENT, Echo.MATCHED),
        ("exact", SENT + " ", Echo.MISMATCHED),
        ("exact", None, Echo.MISSING),
        ("exact", "", Echo.MISSING),
        ("contains", f"a,{SENT},b", Echo.MATCHED),
        ("contains", "trace=0badcafe-000-000000000001", Echo.MISMATCHED),  # 1 is not 10
        ("contains", None, Echo.MISSING),
        (r"regex:trace=(\S+)", f"x trace={TRACE} y", Echo.MATCHED),
        (r"regex:trace=(\S+)", f"x trace={TRACE}0", Echo.MISMATCHED),
        (r"regex:trace=(\S+)", "no trace here", Echo.MISMATCHED),
        (r"regex:trace=(\S+)", "", Echo.MISSING),
    ],
)
def test_each_mode_classifies_the_echo(mode: str, echoed: str | None, expected: Echo) -> None:
    assert Correlator(mode).check(TRACE, SENT, echoed) is expected


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown correlation mode"):
        Correlator("fuzzy")
