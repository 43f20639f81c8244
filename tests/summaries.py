"""Run folders made from given latencies by the run's own parts (Recorder, ResultsWriter,
the summary builder), without an engine: for the commands that read runs back."""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.correlate import Echo
from loadgen.engine.summarize import endpoint_summaries
from loadgen.histograms import RunHistograms, histogram_summary, new_histogram
from loadgen.metrics import NS_PER_S, Recorder
from loadgen.results.writer import ResultsWriter, Timeseries
from loadgen.scenario import ConstantArrivalRate
from loadgen.stream_metrics import Goodput
from loadgen.summary import LatencyStats, RunSummary, StopReason
from loadgen.transport.base import Outcome, StreamResult

STARTED = datetime(2026, 11, 28, 21, 0, 18, 982519, tzinfo=UTC)
LOAD = ConstantArrivalRate(executor="constant-arrival-rate", rate=200, duration=10)

# label -> latencies in µs, or label -> variant -> latencies
Samples = Mapping[str, Sequence[int] | Mapping[str, Sequence[int]]]


@dataclass(frozen=True)
class StreamShape:
    """Each successful request of a label (or "label/variant") as a stream of `tokens` token
    events: the first at `ttft_share` of its latency, the rest evenly spaced to its end."""

    tokens: int = 8
    ttft_share: float = 0.25

    def result(self, intended_ns: int, latency_us: int) -> StreamResult:
        """The stream of one request that ended `latency_us` after `intended_ns`."""
        ttft_us = int(latency_us * self.ttft_share)
        gap_us = (latency_us - ttft_us) // max(1, self.tokens - 1)
        gaps = array("q", [gap_us] * (self.tokens - 1))
        first_ns = intended_ns + ttft_us * 1000
        return StreamResult(
            head_ns=intended_ns + ttft_us * 500,
            first_token_ns=first_ns,
            last_token_ns=first_ns + sum(gaps) * 1000,
            tokens=self.tokens,
            gaps_us=gaps,
            parts=self.tokens,
        )


class Run:
    """One run folder, written; its summary, histograms and per-second rows in memory."""

    def __init__(
        self, folder: Path, summary: RunSummary, histograms: RunHistograms, timeseries: Timeseries
    ):
        self.folder = folder
        self.summary = summary
        self.histograms = histograms
        self.timeseries = timeseries


def write_run(
    folder: Path,
    samples: Samples,
    *,
    errors: Mapping[str, int] | None = None,
    seconds: int = 2,
    trace_id: str | None = None,
    streams: Mapping[str, StreamShape] | None = None,
    goodput: Goodput | None = None,
    **fields: Any,
) -> Run:
    """Record `samples` spread evenly over `seconds` (the first `errors[label]` of each
    label as ModelErrors), and write the folder as `loadgen run` does; `fields` override
    the summary's own (stop_reason, thresholds, comparisons, ...). With `streams`, each
    successful request of a label or "label/variant" named there is a stream of that shape,
    counted good within `goodput`'s limits."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = list(samples)
    writer = ResultsWriter(folder, labels, STARTED.timestamp())
    recorder = Recorder(labels, start_ns=0, sink=writer.interval, goodput=goodput)
    timeline = []
    for label, given in samples.items():
        by_variant = given if isinstance(given, Mapping) else {None: given}
        for variant, values in by_variant.items():
            for index, value in enumerate(values):
                timeline.append((index / len(values), label, variant, index, value))
    failing = dict(errors or {})
    for position, label, variant, index, value in sorted(timeline, key=lambda item: item[0]):
        now_ns = int(position * seconds * NS_PER_S)
        if failing.get(label, 0) > 0:
            failing[label] -= 1
            outcome, echo = Outcome(424, "ModelError", variant, None, 500), None
        else:
            outcome, echo = Outcome(200, None, variant, "x"), Echo.MATCHED
        trace = trace_id or f"run1-{labels.index(label):03d}-{index:012x}"
        service = value * 95 // 100
        recorder.record(label, outcome, echo, value, service, index % 7 == 0, trace, now_ns)
        shape = (streams or {}).get(f"{label}/{variant}") or (streams or {}).get(label)
        if shape is not None and outcome.error is None:
            intended_ns = now_ns - value * 1000
            result = shape.result(intended_ns, value)
            sent_ns = now_ns - service * 1000
            recorder.record_stream(label, variant, result, intended_ns, sent_ns, now_ns)
    recorder.tick(seconds * NS_PER_S)
    summary = summary_of(recorder, float(seconds), **fields)
    histograms = recorder.histograms()
    writer.write_histograms(histograms)
    writer.write_summary(summary)
    writer.close()
    return Run(folder, summary, histograms, writer.timeseries)


def summary_of(recorder: Recorder, elapsed_s: float, **fields: Any) -> RunSummary:
    values: dict[str, Any] = {
        "run_id": "run1",
        "scenario": "quickstart",
        "started_at": STARTED,
        "duration_s": elapsed_s + 0.02,
        "stop_reason": StopReason.COMPLETED,
        "transport": "fast",
        "region": "us-east-1",
        "load_config": LOAD,
        "correlation_mode": "contains",
        "workers": 1,
        "target_rate_rps": 200.0,
        "achieved_rate_rps": 200.1,
        "start_delay_ms": LatencyStats(**histogram_summary(new_histogram())),
        "max_in_flight_full_s": 0.0,
        "tester_cpu": 0.2,
        "interrupted_requests": 0,
        "client_failure": None,
        "endpoints": endpoint_summaries(recorder, elapsed_s),
        "total": recorder.totals().summary(elapsed_s),
    }
    return RunSummary(**(values | fields))
