"""Schedule arithmetic, without sockets or clocks."""

from __future__ import annotations

import itertools

import pytest

from loadgen.engine.schedule import Ramp, constant_offsets, ramping_offsets, take_share


def test_constant_offsets_are_index_over_rate() -> None:
    offsets = list(constant_offsets(4.0, duration=1.0, requests=None))
    assert offsets == [0.0, 0.25, 0.5, 0.75]
    assert len(list(constant_offsets(500.0, duration=5.0, requests=None))) == 2500
    assert list(constant_offsets(10.0, duration=None, requests=3)) == [0.0, 0.1, 0.2]
    assert len(list(constant_offsets(10.0, duration=100.0, requests=5))) == 5


def test_constant_offsets_do_not_drift_over_a_long_run() -> None:
    last = list(constant_offsets(3.0, duration=3600.0, requests=None))[-1]
    assert last == pytest.approx(3600.0 - 1 / 3.0, abs=1e-9)


def test_ramp_from_zero_counts_the_area_under_the_rate() -> None:
    offsets = list(ramping_offsets(0.0, [(10.0, 100.0)]))
    assert len(offsets) == 500  # (0 + 100) / 2 * 10
    assert offsets == sorted(offsets)
    # the first half of the requests are due after ~70.7% of the ramp (t^2 grows)
    assert offsets[250] == pytest.approx(10 * (0.5**0.5), abs=0.02)


def test_ramp_stages_chain_and_flat_stage_is_constant() -> None:
    offsets = list(ramping_offsets(10.0, [(2.0, 10.0), (2.0, 30.0), (1.0, 0.0)]))
    flat = [o for o in offsets if o < 2.0]
    assert flat == pytest.approx([i / 10 for i in range(20)])
    assert len(offsets) == round(20 + 40 + 15)
    assert max(offsets) < 5.0


def test_ramp_time_of_inverts_count() -> None:
    ramp = Ramp(start=5.0, end=50.0, duration=4.0)
    for n in (0.0, 1.0, 10.0, ramp.count):
        t = ramp.time_of(n)
        assert 5.0 * t + (45.0 / 4.0) / 2 * t * t == pytest.approx(n)


def test_shares_partition_the_schedule_exactly() -> None:
    whole = list(constant_offsets(100.0, duration=1.0, requests=None))
    parts = [list(take_share(iter(whole), share, 3)) for share in range(3)]
    assert sorted(itertools.chain(*parts)) == whole
    assert [len(p) for p in parts] == [34, 33, 33]
