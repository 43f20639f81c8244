"""The Recorder and histogram summaries, against hdrh's own (slow) answers."""

from __future__ import annotations

import random
from array import array

import pytest
from hdrh.histogram import HdrHistogram

from loadgen import histograms
from loadgen.correlate import Echo, MismatchSample
from loadgen.engine import core
from loadgen.histograms import (
    HIGHEST_US,
    counts_index,
    histogram_summary,
    new_histogram,
    percentiles_ms,
    record_all,
    record_value,
)
from loadgen.metrics import SLOW_CANDIDATES, Interval, Recorder, Stats
from loadgen.transport.base import Outcome

NS = 1_000_000_000


@pytest.fixture(params=["c", "python"])
def counters_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The list counters, late starts' values and pending histograms folded by _hdrc (C, the
    used range only), or by the Python fallback: the same histograms either way."""
    if request.param == "python":
        monkeypatch.setattr(histograms, "_move_list", None)
        monkeypatch.setattr(histograms, "_add_range", None)
        monkeypatch.setattr(histograms, "_record_counts", None)
    else:
        assert histograms._move_list is not None and histograms._add_range is not None
        assert histograms._record_counts is not None
    return str(request.param)


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


@pytest.mark.usefixtures("counters_in")
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


# --- the inlined recording, state for state against hdrh's own record_value ------------

EDGE_VALUES = [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 10**6, HIGHEST_US]
EDGE_VALUES += [2**k for k in range(40)] + [2**k - 1 for k in range(1, 40)]
EDGE_VALUES += [HIGHEST_US + 1, 4_294_967_295, 4_294_967_296, 5_000_000_000, 10**15, -1, -5000]


def same_histograms(ours: HdrHistogram, theirs: HdrHistogram) -> bool:
    return (
        ours.counts[:] == theirs.counts[:]
        and ours.total_count == theirs.total_count
        and ours.min_value == theirs.min_value
        and ours.max_value == theirs.max_value
        and ours.get_max_value() == theirs.get_max_value()
        and ours.encode() == theirs.encode()
    )


def test_record_value_matches_hdrh_state_for_state() -> None:
    rng = random.Random(3)
    values = EDGE_VALUES + [rng.randrange(0, 2**33) for _ in range(3000)]
    values += [int(rng.lognormvariate(8, 2)) for _ in range(3000)]
    rng.shuffle(values)
    ours, theirs = new_histogram(), new_histogram()
    for value in values:
        assert record_value(ours, value) == theirs.record_value(value), value
        if value >= 0:
            assert counts_index(value) == theirs.get_counts_array_index(value), value
    assert same_histograms(ours, theirs)
    assert not record_value(ours, 5_000_000_000)  # out of range: refused, never raises


@pytest.mark.parametrize("in_c", [True, False])
def test_record_all_is_record_value_of_each(in_c: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream's gaps, recorded in one call (C, or the loop without it), state for state."""
    if not in_c:
        monkeypatch.setattr(histograms, "_record_counts", None)
    else:
        assert histograms._record_counts is not None  # test_build.py: built here
    rng = random.Random(8)
    ours, theirs = new_histogram(), new_histogram()
    for values in [[], [-1, 2**40], EDGE_VALUES, [rng.randrange(0, 2**33) for _ in range(500)]]:
        values = [*values, int(rng.lognormvariate(8, 2)), 0]
        record_all(ours, array("q", values))
        for value in values:
            theirs.record_value(value)
        assert same_histograms(ours, theirs)
    empty = new_histogram()
    record_all(empty, array("q", [-5, HIGHEST_US * 4]))  # nothing in range: nothing changes
    assert same_histograms(empty, new_histogram())


@pytest.mark.usefixtures("counters_in")
def test_the_testers_start_delays_equal_recording_each_value() -> None:
    """The open loop's start delays, kept as an on-time count and the late ones' values, and
    folded whenever (a caller's LATE_FOLD_AT, or a read), are hdrh's record_value of each."""
    rng = random.Random(4)
    tester, theirs = core.TesterStats(), new_histogram()
    for rounds in range(3):
        for value in [0] * 50 + [rng.randrange(1, 10**6) for _ in range(500)] + [2**31, 2**45]:
            if value:
                tester.late_start_delays.append(value)
            else:
                tester.on_time_starts += 1
            theirs.record_value(value)
            if value % 97 == 0:
                tester.fold_late_starts()
        assert same_histograms(tester.start_delay, theirs), rounds
        assert not tester.on_time_starts and not tester.late_start_delays
    assert same_histograms(tester.start_delay, theirs)  # nothing since: nothing changes


@pytest.mark.usefixtures("counters_in")
def test_recorder_equals_recording_every_request_into_hdrh() -> None:
    """Per-second pending histograms folded with C-level adds give exactly the histograms
    that recording each request five times with hdrh's record_value gave."""
    rng = random.Random(5)
    labels = ["a", "b"]
    closed: list[Interval] = []
    recorder = Recorder(labels, start_ns=0, sink=closed.append)
    reference = {
        label: {"latency": new_histogram(), "service": new_histogram(), "variants": {}}
        for label in labels
    }
    intervals: dict[tuple[int, str], HdrHistogram] = {}
    out_of_range = {label: 0 for label in labels}
    now = 0
    for index in range(5000):
        now += rng.randrange(0, 1_500_000)
        label = rng.choice(labels)
        variant = rng.choice([None, "v1", "v2"])
        latency = rng.choice(EDGE_VALUES + [rng.randrange(0, 10**5)] * 20)
        service = rng.choice([latency, max(latency // 2, 0), 5_000_000_000])
        error = rng.choice([None] * 8 + ["ModelError"])
        recorder.record(
            label,
            Outcome(200, error, variant),
            Echo.MATCHED,
            latency,
            service,
            False,
            f"t{index}",
            now,
        )
        ref = reference[label]
        if not ref["latency"].record_value(latency):
            out_of_range[label] += 1
        ref["service"].record_value(service)
        if variant is not None:
            pair = ref["variants"].setdefault(variant, (new_histogram(), new_histogram()))
            pair[0].record_value(latency)
            pair[1].record_value(service)
        second = now // NS  # the interval the request's finish falls in
        intervals.setdefault((second, label), new_histogram()).record_value(latency)
        if index == 2500:
            recorder.tick(now + 3 * NS)  # empty seconds in between
            now += 3 * NS
    recorder.flush()
    for label in labels:
        record = recorder.endpoints[label]
        ref = reference[label]
        assert same_histograms(record.stats.latency, ref["latency"])
        assert same_histograms(record.stats.service, ref["service"])
        assert record.stats.out_of_range == out_of_range[label]
        assert sorted(record.variants) == sorted(ref["variants"])
        for variant, (latency, service) in ref["variants"].items():
            assert same_histograms(record.variants[variant].latency, latency)
            assert same_histograms(record.variants[variant].service, service)
    for interval in closed:
        expected = intervals.get((interval.index, interval.label), new_histogram())
        assert same_histograms(interval.latency, expected), (interval.index, interval.label)
        assert percentiles_ms(interval.latency, (50.0, 99.0)) == [
            histogram_summary(expected)[key] for key in ("p50", "p99")
        ]


@pytest.mark.usefixtures("counters_in")
def test_record_ok_equals_record_of_a_successful_closed_loop_request() -> None:
    """The closed loop's shortcut (one index for both histograms) leaves the same state."""
    rng = random.Random(6)
    closed: dict[str, list[Interval]] = {"ok": [], "general": []}
    shortcut = Recorder(["a"], start_ns=0, sink=closed["ok"].append)
    general = Recorder(["a"], start_ns=0, sink=closed["general"].append)
    now = 0
    for index in range(4000):
        now += rng.randrange(0, 900_000)
        variant = rng.choice([None, "v1"])
        echo = rng.choice([Echo.MATCHED] * 5 + [Echo.MISSING])
        value = rng.choice(EDGE_VALUES + [rng.randrange(0, 10**5)] * 30)
        if index % 7 == 0:  # errors take the general path in both (mid-range: min/max tell)
            for recorder in (shortcut, general):
                recorder.record("a", Outcome(0, "Timeout"), None, 5000, 5000, False, "e", now)
            continue
        shortcut.record_ok("a", variant, echo, value, f"t{index}", now)
        general.record(
            "a", Outcome(200, None, variant), echo, value, value, False, f"t{index}", now
        )
        if index in (1500, 1501, 3000):  # as a worker hands its state on each tick
            assert shortcut.take_state() == general.take_state()
    shortcut.flush()
    general.flush()
    ours, theirs = shortcut.endpoints["a"], general.endpoints["a"]
    assert ours.stats.summary(1.0) == theirs.stats.summary(1.0)
    assert same_histograms(ours.stats.latency, theirs.stats.latency)
    assert same_histograms(ours.stats.service, theirs.stats.service)
    assert sorted(ours.variants) == sorted(theirs.variants) == ["v1"]
    assert ours.variants["v1"].summary(1.0) == theirs.variants["v1"].summary(1.0)
    assert sorted(ours.slowest) == sorted(theirs.slowest)
    assert [(i.index, i.requests, i.errors) for i in closed["ok"]] == [
        (i.index, i.requests, i.errors) for i in closed["general"]
    ]
    assert all(
        same_histograms(mine.latency, other.latency)
        for mine, other in zip(closed["ok"], closed["general"], strict=True)
    )


@pytest.mark.usefixtures("counters_in")
def test_record_open_ok_equals_record_of_a_successful_open_loop_request() -> None:
    """The open loop's shortcut (its values appended, counted when they settle), mixed with
    the closed loop's and with errors in one recorder, leaves the state that the general
    path leaves."""
    rng = random.Random(7)
    closed: dict[str, list[Interval]] = {"ok": [], "general": []}
    shortcut = Recorder(["a"], start_ns=0, sink=closed["ok"].append)
    general = Recorder(["a"], start_ns=0, sink=closed["general"].append)
    now = 0
    for index in range(6000):
        now += rng.randrange(0, 700_000)
        variant = rng.choice([None, "v1"])
        echo = rng.choice([Echo.MATCHED] * 5 + [Echo.MISSING])
        service = rng.choice(EDGE_VALUES + [rng.randrange(0, 10**5)] * 30)
        latency = service + rng.choice([0, 0, rng.randrange(0, 10**6), 5_000_000_000])
        late = rng.random() < 0.2
        trace = f"t{index}"
        if index % 7 == 0:  # errors take the general path in both
            for recorder in (shortcut, general):
                recorder.record("a", Outcome(0, "Timeout"), None, 5000, 4000, late, "e", now)
            continue
        if index % 5 == 0:  # a closed loop's success on the same endpoint
            shortcut.record_ok("a", variant, echo, service, trace, now)
            latency, late = service, False
        else:
            shortcut.record_open_ok("a", variant, echo, latency, service, late, trace, now)
        general.record("a", Outcome(200, None, variant), echo, latency, service, late, trace, now)
        if index in (2000, 2001, 4500):  # as a worker hands its state on each tick
            assert shortcut.take_state() == general.take_state()
    shortcut.flush()
    general.flush()
    ours, theirs = shortcut.endpoints["a"], general.endpoints["a"]
    assert ours.stats.summary(1.0) == theirs.stats.summary(1.0)
    assert ours.stats.late_starts == theirs.stats.late_starts > 0
    assert ours.stats.out_of_range == theirs.stats.out_of_range > 0
    assert same_histograms(ours.stats.latency, theirs.stats.latency)
    assert same_histograms(ours.stats.service, theirs.stats.service)
    assert ours.variants["v1"].summary(1.0) == theirs.variants["v1"].summary(1.0)
    assert same_histograms(ours.variants["v1"].latency, theirs.variants["v1"].latency)
    assert sorted(ours.slowest) == sorted(theirs.slowest)
    assert [(i.index, i.requests, i.errors) for i in closed["ok"]] == [
        (i.index, i.requests, i.errors) for i in closed["general"]
    ]
    assert all(
        same_histograms(mine.latency, other.latency)
        for mine, other in zip(closed["ok"], closed["general"], strict=True)
    )


def test_the_slowest_requests_are_kept_whichever_way_they_were_recorded() -> None:
    """The slowest 20 of an endpoint, across its variants, the three record paths and a
    take_state."""
    rng = random.Random(8)
    recorder = Recorder(["a", "b"], start_ns=0)
    values = rng.sample(range(10**7), 3000)  # distinct: which of equal values stays is moot
    seen: dict[str, list[tuple[int, str, str | None]]] = {"a": [], "b": []}
    for index, value in enumerate(values):
        label, variant = rng.choice(["a", "b"]), rng.choice([None, "v1", "v2"])
        trace_id = f"t{index}"
        if index == 1000:
            recorder.take_state()
            seen = {"a": [], "b": []}
        if index % 3 == 1:
            recorder.record_ok(label, variant, Echo.MATCHED, value, trace_id, index)
        elif index % 3 == 2:
            service = value // 2
            recorder.record_open_ok(
                label, variant, Echo.MATCHED, value, service, True, trace_id, index
            )
        else:
            outcome = Outcome(500, "ModelError", variant)
            recorder.record(label, outcome, None, value, value, False, trace_id, index)
        seen[label].append((value, trace_id, variant))
    for label in ("a", "b"):
        expected = sorted(seen[label], reverse=True)[:20]
        assert [(s.latency_us, s.trace_id, s.variant) for s in recorder.slowest(label)] == expected


@pytest.mark.parametrize("values", ["rising", "falling", "tied"])
def test_the_slowest_are_kept_while_the_tester_falls_behind(values: str) -> None:
    """Behind, latency rises and each late request is the slowest yet: they are gathered and
    put on the heap in batches. The 20 kept are the 20 slowest however the reads (a second's
    close, a take_state) fall between batches (which of equal ones stays is moot)."""
    count = SLOW_CANDIDATES * 3 + 17
    latencies = {
        "rising": range(1000, 1000 + count),
        "falling": range(1000 + count, 1000, -1),
        "tied": [5000] * count,
    }[values]
    recorder = Recorder(["a"], start_ns=0)
    kept: list[tuple[int, str, str | None]] = []
    for index, latency in enumerate(latencies):
        trace_id = f"t{index:05}"
        recorder.record_open_ok("a", None, Echo.MATCHED, latency, 100, True, trace_id, index)
        kept.append((latency, trace_id, None))
        if index in (5, SLOW_CANDIDATES + 3, count - 1):
            slowest = recorder.slowest("a")
            expected = sorted(kept, reverse=True)[:20]
            if values == "tied":
                assert [s.latency_us for s in slowest] == [5000] * len(expected)
                assert {s.trace_id for s in slowest} <= {trace_id for _, trace_id, _ in kept}
            else:
                assert slowest == expected


def test_percentiles_ms_match_hdrh() -> None:
    rng = random.Random(9)
    for values in ([], [0], [1], [HIGHEST_US], [rng.randrange(0, 10**7) for _ in range(2000)]):
        histogram = new_histogram()
        for value in values:
            histogram.record_value(value)
        percentiles = (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0)
        expected = [
            histogram.get_value_at_percentile(p) / 1000.0 if values else 0.0 for p in percentiles
        ]
        # hdrh reports the lowest equivalent value at 0%; everywhere else the highest
        assert percentiles_ms(histogram, percentiles)[1:] == expected[1:]
