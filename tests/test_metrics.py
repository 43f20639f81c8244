"""The Recorder and histogram summaries, against hdrh's own (slow) answers."""

from __future__ import annotations

import random

from loadgen.correlate import Echo, MismatchSample
from loadgen.metrics import Interval, Recorder, Stats, histogram_summary, new_histogram
from loadgen.transport.base import Outcome

NS = 1_000_000_000


def test_summary_matches_hdrh_percentiles_and_mean() -> None:
    histogram = new_histogram()
    rng = random.Random(7)
    for _ in range(5000):
        histogram.record_value(int(rng.lognormvariate(9, 1.2)))
    summary = histogram_summary(histogram)
    for key, percentile in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        assert summary[key] == histogram.get_value_at_percentile(percentile) / 1000.0
    assert summary["mean"] == round(histogram.get_mean_value() / 1000.0, 3)
    assert summary["max"] == histogram.get_max_value() / 1000.0


def test_out_of_range_values_are_counted_not_lost() -> None:
    stats = Stats()
    stats.record(Outcome(), Echo.MATCHED, 5_000_000_000, 10, False)  # 83 minutes
    assert stats.requests == 1 and stats.out_of_range == 1


def test_state_round_trip_merges_like_one_recorder() -> None:
    one, two, merged = Stats(), Stats(), Stats()
    for index in range(100):
        target = one if index % 2 else two
        outcome = Outcome(error="ModelError", original_status=500) if index % 10 == 0 else Outcome()
        target.record(
            outcome, None if outcome.error else Echo.MATCHED, 1000 + index, 900, index % 3 == 0
        )
    one.add_sample(MismatchSample("t1", "a", "b"))
    merged.merge_state(one.to_state())
    merged.merge_state(two.to_state())
    assert merged.requests == 100
    assert merged.errors == {"ModelError": 10}
    assert merged.model_error_status == {"500": 10}
    assert merged.correlation["matched"] == 90
    assert merged.late_starts == 34
    assert merged.latency.get_total_count() == 100
    assert merged.samples == [MismatchSample("t1", "a", "b")]


def test_recorder_closes_seconds_in_order_including_empty_ones() -> None:
    closed: list[Interval] = []
    recorder = Recorder(["a", "b"], start_ns=0, sink=closed.append)
    recorder.record("a", Outcome(variant="v1"), Echo.MATCHED, 1000, 900, False, "t1", 100)
    recorder.record("a", Outcome(error="Timeout"), None, 2000, 1900, False, "t2", NS + 5)
    recorder.tick(4 * NS)
    recorder.flush()
    assert [(i.index, i.label, i.requests, i.errors) for i in closed] == [
        (0, "a", 1, 0),
        (0, "b", 0, 0),
        (1, "a", 1, 1),
        (1, "b", 0, 0),
        (2, "a", 0, 0),
        (2, "b", 0, 0),
        (3, "a", 0, 0),
        (3, "b", 0, 0),
        (4, "a", 0, 0),
        (4, "b", 0, 0),
    ]
    assert recorder.endpoints["a"].variants["v1"].requests == 1
    assert recorder.totals().requests == 2


def test_slowest_keeps_the_k_largest() -> None:
    recorder = Recorder(["a"], start_ns=0)
    for index in range(1000):
        recorder.record("a", Outcome(), Echo.MATCHED, index, index, False, f"t{index}", 0)
    slowest = recorder.slowest("a")
    assert [s.latency_us for s in slowest] == list(range(999, 979, -1))
    assert slowest[0].trace_id == "t999"
