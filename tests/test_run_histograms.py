"""histograms.json: a run's full histograms, its streams' token times included, written and
read back the same; a file from before stream histograms were kept still loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadgen.errors import UsageError
from loadgen.histograms import STREAM_HISTOGRAMS, RunHistograms
from loadgen.metrics import NS_PER_S, Recorder
from loadgen.transport.base import Outcome
from tests.summaries import StreamShape, write_run

# 100 requests of 40 ms; 8 tokens: TTFT 10 ms, then 7 gaps of 30/7 ms (4285 µs)
LATENCIES = [40_000] * 100
SHAPE = StreamShape(tokens=8, ttft_share=0.25)


def counts(histograms: RunHistograms, label: str, variant: str | None = None) -> dict[str, int]:
    entry = histograms.endpoints[label]
    pair = entry if variant is None else entry.variants[variant]
    assert pair.stream is not None
    return {name: getattr(pair.stream, name).get_total_count() for name in STREAM_HISTOGRAMS}


def test_recorder_histograms_hold_each_endpoints_and_variants_streams(tmp_path: Path) -> None:
    """Two variants stream, a third endpoint does not: its stream histograms are None."""
    run = write_run(
        tmp_path,
        {"llm": {"a": LATENCIES, "b": LATENCIES[:30]}, "plain": LATENCIES},
        errors={"llm": 4},  # failed calls stream nothing: 126 streams, not 130
        streams={"llm": SHAPE},
    )
    histograms = run.histograms
    assert counts(histograms, "llm") == {"ttft": 126, "itl": 126 * 7, "tpot": 126}
    assert sum(counts(histograms, "llm", v)["ttft"] for v in ("a", "b")) == 126
    assert histograms.endpoints["plain"].stream is None
    assert histograms.endpoints["plain"].variants == {}
    stream = histograms.endpoints["llm"].stream
    assert stream is not None
    assert stream.ttft.get_value_at_percentile(50) == pytest.approx(10_000, rel=0.001)
    assert stream.itl.get_max_value() == pytest.approx(30_000 // 7, rel=0.001)
    # the same numbers as the summary's, which the recorder's StreamStats made
    ttft = run.summary.endpoints["llm"].ttft_ms
    assert ttft is not None and ttft.p50 == stream.ttft.get_value_at_percentile(50) / 1000
    assert histograms.streamed


def test_histograms_json_round_trips_the_streams(tmp_path: Path) -> None:
    run = write_run(
        tmp_path, {"llm": {"a": LATENCIES, "b": LATENCIES[:30]}}, streams={"llm/b": SHAPE}
    )
    raw = json.loads((tmp_path / "histograms.json").read_text())
    llm = raw["endpoints"]["llm"]
    assert set(llm["stream"]) == {"ttft", "itl", "tpot"}
    assert "stream" not in llm["variants"]["a"]  # omitted when None, not null
    assert set(llm["variants"]["b"]["stream"]) == {"ttft", "itl", "tpot"}
    loaded = RunHistograms.load(tmp_path / "histograms.json")
    assert loaded.to_json() == run.histograms.to_json()
    assert counts(loaded, "llm", "b") == {"ttft": 30, "itl": 30 * 7, "tpot": 30}
    assert loaded.endpoints["llm"].variants["a"].stream is None


def test_a_run_without_streams_writes_no_stream_key(tmp_path: Path) -> None:
    run = write_run(tmp_path, {"ep": LATENCIES})
    assert '"stream"' not in (tmp_path / "histograms.json").read_text()
    assert not run.histograms.streamed
    assert not RunHistograms.load(tmp_path / "histograms.json").streamed


def test_an_older_histograms_json_without_streams_still_loads(tmp_path: Path) -> None:
    """As the loadgen before stream histograms wrote it: latency and service time only."""
    write_run(tmp_path, {"llm": LATENCIES}, streams={"llm": SHAPE})
    raw = json.loads((tmp_path / "histograms.json").read_text())
    for entry in raw["endpoints"].values():
        del entry["stream"]
        for variant in entry["variants"].values():
            del variant["stream"]
    (tmp_path / "histograms.json").write_text(json.dumps(raw))
    loaded = RunHistograms.load(tmp_path / "histograms.json")
    assert loaded.endpoints["llm"].latency.get_total_count() == 100
    assert loaded.endpoints["llm"].stream is None and not loaded.streamed


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("nope", "llm: 'stream' is not an object"),
        ({"ttft": "x", "itl": "x", "tpot": "x"}, "llm stream ttft: not a valid HdrHistogram"),
        ({"ttft": None}, "llm stream ttft: not a valid HdrHistogram"),
    ],
)
def test_a_damaged_stream_entry_is_one_line_naming_it(
    tmp_path: Path, stream: object, message: str
) -> None:
    write_run(tmp_path, {"llm": LATENCIES}, streams={"llm": SHAPE})
    raw = json.loads((tmp_path / "histograms.json").read_text())
    raw["endpoints"]["llm"]["stream"] = stream
    (tmp_path / "histograms.json").write_text(json.dumps(raw))
    with pytest.raises(UsageError) as caught:
        RunHistograms.load(tmp_path / "histograms.json")
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'histograms.json'}: ") and message in problem


def test_each_second_holds_its_streams_gaps_as_itl() -> None:
    """Second 0: two streams of gaps 2 and 3 ms; second 1: one of 5 ms; second 2 none."""
    closed = []
    recorder = Recorder(["llm"], start_ns=0, sink=closed.append)
    for now_s, latency_us in ((0.2, 14_000), (0.7, 21_000), (1.5, 35_000)):
        now_ns = int(now_s * NS_PER_S)
        recorder.record("llm", Outcome(200), None, latency_us, latency_us, False, "t", now_ns)
        intended_ns = now_ns - latency_us * 1000
        result = StreamShape(tokens=8, ttft_share=0).result(intended_ns, latency_us)
        recorder.record_stream("llm", None, result, intended_ns, intended_ns, now_ns)
    recorder.tick(3 * NS_PER_S)
    itl = [interval.itl for interval in closed]
    assert [h.get_total_count() for h in itl] == [14, 7, 0]
    assert itl[0].get_count_at_value(2000) == itl[0].get_count_at_value(3000) == 7
    assert itl[1].get_count_at_value(5000) == 7
    assert [interval.ttft.get_total_count() for interval in closed] == [2, 1, 0]
