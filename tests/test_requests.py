"""RequestFactory: which target, body, trace ID and CustomAttributes each request gets."""

from __future__ import annotations

import pytest

from loadgen.correlate import TraceIds
from loadgen.engine.requests import RequestFactory
from loadgen.transport.base import Target

A, B = Target("a", "a"), Target("b", "b")


def test_every_body_goes_to_every_target_in_turn() -> None:
    factory = RequestFactory([A, B], [b"1", b"2", b"3"], "t={trace_id}", TraceIds("00000000"))
    sent = [(r.target.label, r.body) for r in (factory.next() for _ in range(8))]
    assert sent == [
        ("a", b"1"), ("b", b"1"), ("a", b"2"), ("b", b"2"),
        ("a", b"3"), ("b", b"3"), ("a", b"1"), ("b", b"1"),
    ]  # fmt: skip


def test_one_target_and_one_body() -> None:
    factory = RequestFactory([A], [b"x"], "t={trace_id}", TraceIds("0badcafe", 5))
    first, second = factory.next(), factory.next()
    assert (first.target, first.body) == (second.target, second.body) == (A, b"x")
    assert first.trace_id == "0badcafe-005-000000000001"
    assert second.custom_attributes == "t=0badcafe-005-000000000002"


def test_the_trace_id_fills_every_placeholder_or_none() -> None:
    twice = RequestFactory([A], [b"x"], "{trace_id},{trace_id}", TraceIds("00000000"))
    assert twice.next().custom_attributes == "00000000-000-000000000001,00000000-000-000000000001"
    fixed = RequestFactory([A], [b"x"], "static=1", TraceIds("00000000"))
    assert fixed.next().custom_attributes == "static=1"


def test_trace_ids_count_in_twelve_hex_digits() -> None:
    ids = TraceIds("00000000", 0xFFF, first=0xFFFF_FFFF_FFFF)  # the last 12-digit counter
    assert ids.next() == "00000000-fff-ffffffffffff"


@pytest.mark.parametrize("first", [1, 0xFFE, 0x1FFF, 0xABC_DEF_FFF_F00, 0xFFFF_FFFF_F000])
def test_trace_ids_are_the_counter_in_hex_across_its_digit_blocks(first: int) -> None:
    ids = TraceIds("0badcafe", 0x2A, first=first)
    got = [ids.next() for _ in range(0x1100 if first < 0xFFFF_FFFF_F000 else 0x1000)]
    assert got == [f"0badcafe-02a-{n:012x}" for n in range(first, first + len(got))]
