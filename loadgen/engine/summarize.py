"""A finished run's RunSummary, built once from what its engines recorded, and judged."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from loadgen import api
from loadgen.engine.capacity import CapacityFound
from loadgen.engine.context import RunContext
from loadgen.engine.core import TesterStats
from loadgen.engine.schedule import ramp_requests
from loadgen.gates import judge
from loadgen.histograms import EndpointHistograms, RunHistograms, histogram_summary
from loadgen.metrics import NS_PER_S, Recorder
from loadgen.scenario import ConstantArrivalRate, LoadConfig, RampingArrivalRate, TraceReplay
from loadgen.summary import (
    ClusterInfo,
    EndpointSummary,
    LatencyStats,
    LogsQuery,
    RunSummary,
    SlowRequest,
    StopReason,
)
from loadgen.trace import trace_shape


@dataclass(frozen=True)
class Finished:
    """What a run leaves once its engines have stopped: the runner's hand-off."""

    recorder: Recorder
    tester: TesterStats
    elapsed_s: float
    stop_reason: StopReason
    stop_detail: str | None = None
    cluster: ClusterInfo | None = None  # where the workers ran, when on a cluster
    capacity: CapacityFound | None = None  # a capacity-search's finding


def endpoint_summaries(recorder: Recorder, elapsed_s: float) -> dict[str, EndpointSummary]:
    summaries = {}
    for label, record in recorder.endpoints.items():
        slowest = recorder.slowest(label)
        query = api.logs_insights_query(label.split("/", 1)[0], [slow.trace_id for slow in slowest])
        summaries[label] = EndpointSummary(
            **dict(record.stats.summary(elapsed_s)),
            variants={
                variant: stats.summary(elapsed_s)
                for variant, stats in sorted(record.variants.items())
            },
            slowest=tuple(
                SlowRequest(
                    trace_id=slow.trace_id,
                    latency_ms=slow.latency_us / 1000.0,
                    variant=slow.variant,
                )
                for slow in slowest
            ),
            slowest_query=LogsQuery(**query),
        )
    return summaries


def target_rate(load: LoadConfig) -> float | None:
    """The open loop's mean scheduled rate (requests/s); None for a closed loop."""
    if isinstance(load, ConstantArrivalRate):
        return load.rate
    if isinstance(load, RampingArrivalRate):
        stages = [(stage.duration, stage.target) for stage in load.stages]
        return ramp_requests(load.start_rate, stages) / load.duration
    if isinstance(load, TraceReplay):
        return trace_shape(load.file, load.trace_format).rate(load.speedup)
    return None  # a closed loop, or a capacity search's steps (each has its own)


def with_steps(histograms: RunHistograms, capacity: CapacityFound | None) -> RunHistograms:
    """A capacity search's step histograms beside the endpoints', under the steps' labels
    (step-01@200rps): one step can be inspected, or compared, as an endpoint can."""
    if capacity is None:
        return histograms
    steps = {
        label: EndpointHistograms(pair.latency, pair.service_time, {})
        for label, pair in capacity.histograms.items()
    }
    return replace(histograms, endpoints=histograms.endpoints | steps)


def summarize(
    ctx: RunContext, started: datetime, finished: Finished
) -> tuple[RunSummary, RunHistograms]:
    """The run's summary, its thresholds and comparisons judged on the in-memory
    histograms, and those histograms (for histograms.json and the report)."""
    scenario = ctx.scenario
    assert scenario.region is not None, "the runner resolves the region first"
    elapsed_s = finished.elapsed_s
    endpoints = endpoint_summaries(finished.recorder, elapsed_s)
    histograms = finished.recorder.histograms()
    capacity = None if finished.capacity is None else finished.capacity.summary
    judgement = judge(scenario, endpoints, histograms, capacity)
    tester = finished.tester
    summary = RunSummary(
        run_id=ctx.run_id,
        scenario=scenario.name,
        started_at=started,
        duration_s=round(elapsed_s, 3),
        stop_reason=finished.stop_reason,
        stop_detail=finished.stop_detail,
        transport=scenario.transport,
        region=scenario.region,
        load_config=scenario.load,
        correlation_mode=scenario.correlation,
        workers=ctx.shares,
        busy_poll=scenario.busy_poll,
        target_rate_rps=target_rate(scenario.load),
        achieved_rate_rps=round(tester.achieved_rate(), 3),
        start_delay_ms=LatencyStats(**histogram_summary(tester.start_delay)),
        max_in_flight_full_s=round(tester.max_in_flight_full_ns / NS_PER_S, 3),
        tester_cpu=round(tester.cpu_busy, 3),
        interrupted_requests=tester.interrupted,
        client_failure=tester.client_failure,
        endpoints=endpoints,
        total=finished.recorder.totals().summary(elapsed_s),
        thresholds=judgement.thresholds,
        comparisons=judgement.comparisons,
        cluster=finished.cluster,
        capacity=capacity,
    )
    return summary, with_steps(histograms, finished.capacity)
