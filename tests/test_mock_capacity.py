"""The mock as a queue (mock.capacity): K model copies, each serving one request at a time
in arrival order, kept in virtual time so that the capacity is exactly K / service time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.mock.capacity import Copies
from loadgen.scenario import scenario_from_dict


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_copies_serve_in_arrival_order_in_virtual_time() -> None:
    """Two copies, 10 ms each: three requests at once end at 10, 10 and 20 ms; one at 25 ms
    finds a copy free; at 200 req/s (one every 5 ms) nobody waits; at 400 the wait grows by
    5 ms every two requests: the queue of a 200 req/s endpoint."""
    clock = Clock()
    copies = Copies(2, clock)
    assert [round(copies.admit(0.010), 9) for _ in range(3)] == [0.010, 0.010, 0.020]
    clock.now += 0.025
    assert round(copies.admit(0.010), 9) == 0.010
    clock.now += 1.0
    waits = []
    for _ in range(20):
        waits.append(copies.admit(0.010) - 0.010)
        clock.now += 0.005
    assert max(waits) < 1e-9
    clock.now += 1.0
    waits = []
    for _ in range(20):
        waits.append(copies.admit(0.010) - 0.010)
        clock.now += 0.0025
    # each copy takes every other request: 5 ms more wait every two requests
    assert [round(wait * 1000, 6) for wait in waits[:6]] == [0.0, 0.0, 5.0, 5.0, 10.0, 10.0]
    assert round(waits[-1] * 1000, 6) == 45.0


def stream_scenario(
    load: dict[str, Any], copies: int | None = None, ttft_ms: float = 20, itl_ms: float = 5
) -> dict[str, Any]:
    """Streams of 2 tokens, `ttft_ms` to the first and `itl_ms` to the next: held a copy for
    ttft_ms + itl_ms."""
    mock: dict[str, Any] = {
        "stream": {
            "tokens": 2,
            "ttft_ms": {"median": ttft_ms, "p99": ttft_ms},
            "itl_ms": {"median": itl_ms, "p99": itl_ms},
        }
    }
    if copies is not None:
        mock["capacity"] = {"copies": copies}
    return {
        "name": "streams",
        "region": "us-east-1",
        "endpoint_url": "mock",
        "endpoints": [{"name": "llm"}],
        "request": {"body": "{}", "stream": True},
        "load": load,
        "mock": mock,
    }


@pytest.mark.usefixtures("fake_aws")
async def test_a_stream_holds_its_copy_for_all_its_tokens(tmp_path: Path) -> None:
    """Two callers, one copy: each stream waits for the rest of the other's 50 ms (20 to
    the first token, 30 to the second), so TTFT is about 70 ms less the caller's turn-around
    (under 1 ms idle, up to 5 beside busy loops); a copy held only to the first token makes
    it 40 ms or less; with no capacity set it is 20 ms. A second token 5 ms after the first
    left 5 ms between right and wrong, which a loaded machine's turn-around took."""
    load = {"executor": "constant-concurrency", "concurrency": 2, "requests": 12}
    ttft = {}
    for copies in (1, None):
        result = await run_scenario(
            scenario_from_dict(stream_scenario(load, copies, itl_ms=30)),
            RunOptions(out=tmp_path, quiet=True),
        )
        stats = result.summary.total.ttft_ms
        assert stats is not None and result.summary.total.ok == 12
        ttft[copies] = stats.p50
    assert ttft[1] >= 55 and ttft[None] < 35, ttft
