"""The live status line: what a person watching a run sees each second."""

from __future__ import annotations

import io

from rich.console import Console

from loadgen.console import LiveStatus
from loadgen.histograms import new_histogram
from loadgen.metrics import Interval
from tests.servers import scenario


def interval(
    index: int, label: str, values: list[int], late: int = 0, delay_us: int = 0
) -> Interval:
    histogram = new_histogram()
    for value in values:
        histogram.record_value(value)
    return Interval(index, label, histogram, len(values), 0, 0, late, delay_us)


def test_the_line_shows_the_last_seconds_rate_percentiles_and_late_starts() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    status = LiveStatus(
        scenario("http://127.0.0.1:9", duration="10s"), ["a", "b"], console=terminal
    )
    with status:
        status.observe(interval(0, "a", [1000] * 90, late=9, delay_us=2500))
        status.observe(interval(0, "b", [3000] * 10, late=1, delay_us=12_000))
        status.observe(interval(1, "a", [1000]))  # the next second closes the first
        line = status.line(1.5)
    assert "100 req/s" in line and "p50 1.0 ms" in line and "p99 3.0 ms" in line
    assert "late 10% (start delay up to 12.0 ms)" in line
    assert "requests 101" in line and line.startswith("  1.5s / 10s")


def test_without_a_terminal_it_counts_and_computes_nothing() -> None:
    status = LiveStatus(scenario("http://127.0.0.1:9"), ["a"], console=Console(file=io.StringIO()))
    status.observe(interval(0, "a", [1000] * 5))
    status.observe(interval(1, "a", [1000] * 5))
    assert status.requests == 10
    assert "late" not in status.line(2.0) and "0 req/s" in status.line(2.0)
