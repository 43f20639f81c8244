"""The run summary: one typed object, built once at the end of a run, that every output reads.

summary.json is its serialization, read back through the same model (`RunSummary.load`),
so a key that one side writes and another reads cannot drift. Whatever follows from other
fields (`complete`, `passed`, the verdict, a comparison's outcome) is computed: written
into the JSON for its readers, and recomputed, never trusted, when a file is loaded.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    computed_field,
    model_serializer,
    model_validator,
)

from loadgen.errors import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError
from loadgen.results.files import read_json_object
from loadgen.scenario import CompareMetric, LoadConfig, Slo

SCHEMA: Final = "loadgen-summary/1"
REASONS_SHOWN = 3  # in a one-line verdict; summary.md and junit list every one


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        """Computed fields are in the JSON for its readers; on load they are recomputed."""
        derived = cls.model_computed_fields
        if derived and isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in derived}
        return data


# --- what was measured ----------------------------------------------------------------------


class LatencyStats(Model):
    """Percentiles, max and mean in milliseconds, as HdrHistogram computes them."""

    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float
    mean: float


class MismatchSample(Model):
    trace_id: str
    sent: str
    received: str


class Correlation(Model):
    """Echo checks of successful calls."""

    matched: int
    mismatched: int
    missing: int
    samples: tuple[MismatchSample, ...] = ()


class TrafficSummary(Model):
    """Everything counted for one endpoint, one variant, or the whole run."""

    requests: int
    ok: int
    errors: dict[str, int]  # error code -> count
    model_error_status: dict[str, int]  # ModelError's OriginalStatusCode -> count
    throughput_rps: float
    latency_ms: LatencyStats  # from the intended start
    service_time_ms: LatencyStats  # from the actual send
    late_starts: int
    out_of_range: int  # latencies HdrHistogram could not hold (above one hour)
    correlation: Correlation
    # streaming calls (request.stream), successful streams only; null for other runs
    stream_error_codes: dict[str, int] = {}  # ModelStreamError's ErrorCode -> count
    ttfb_ms: LatencyStats | None = None  # to the response head, from the intended start
    ttfb_service_time_ms: LatencyStats | None = None  # ... from the send
    ttft_ms: LatencyStats | None = None  # to the first token event, from the intended start
    ttft_service_time_ms: LatencyStats | None = None  # ... from the send
    itl_ms: LatencyStats | None = None  # each gap between consecutive token events
    tpot_ms: LatencyStats | None = None  # per stream: (end - first token) / (tokens - 1)
    output_tokens: int | None = None
    output_tokens_per_s: float | None = None  # over the run's duration
    goodput: float | None = None  # share of all requests: streams within the scenario's goodput

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error_count(self) -> int:
        return self.requests - self.ok


class SlowRequest(Model):
    trace_id: str
    latency_ms: float
    variant: str | None


class LogsQuery(Model):
    """A CloudWatch Logs Insights query that finds trace IDs in the endpoint's own logs."""

    log_group: str
    query: str


class EndpointSummary(TrafficSummary):
    """One endpoint label (`name` or `name/variant`), with each production variant that answered."""

    variants: dict[str, TrafficSummary]
    slowest: tuple[SlowRequest, ...]
    slowest_query: LogsQuery


# --- what was judged --------------------------------------------------------------------------


class ThresholdResult(Model):
    endpoint: str
    metric: str  # e.g. "latency_ms.p99", "error_rate", "error_rates.ThrottlingException"
    comparator: Literal["<=", ">="]
    limit: float
    observed: float
    passed: bool

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        return f"{self.endpoint}: {self.metric} {self.comparator} {self.limit:g}"

    def failure(self) -> str:
        return f"{self.metric} observed {self.observed:g}, limit {self.comparator} {self.limit:g}"


class Direction(StrEnum):
    """What the data says, noise accounted for: the rank test and the CIs agree."""

    SAME = "no significant change"
    FASTER = "faster"
    SLOWER = "slower"


class ComparisonOutcome(StrEnum):
    """A comparison's result: its direction judged against its limits."""

    SAME = "no significant change"
    FASTER = "faster"
    SLOWER_NO_LIMIT = "slower, no limit set"
    SLOWER_WITHIN_LIMIT = "slower, within limit"
    SLOWER_OVER_LIMIT = "slower, over limit"
    NO_DATA = "no values to compare"  # a side recorded none: its calls all failed, or none came


class MetricChange(Model):
    """One metric of both versions; `ci_low`/`ci_high` bound `change` (None for max: no CI)."""

    base_ms: float
    new_ms: float
    change: float  # new/base - 1
    ci_low: float | None
    ci_high: float | None


class LimitResult(Model):
    metric: str
    max_increase: float  # 0.10 for 10%
    change_low: float | None  # the CI's low end: the least increase the data supports
    failed: bool

    def failure(self) -> str:
        if self.change_low is None:  # nothing to compare: a limit unchecked is not met
            return f"{self.metric} not measured, limit +{self.max_increase:.0%}"
        return (
            f"{self.metric} at least {self.change_low:+.1%} (95% CI low end), "
            f"limit +{self.max_increase:.0%}"
        )


class RankTest(Model):
    """Mann-Whitney U of new against base."""

    u: float
    z: float  # > 0: new tends to be slower
    p_value: float  # two-sided
    effect: float  # P(new > base) + 0.5 P(tie); 0.5 is no difference
    n_base: int
    n_new: int


class Pair(Model):
    base: int
    new: int


class ThroughputChange(Model):
    """Requests per second of both versions, shown beside the latencies; it decides nothing.
    None for a side without a run summary (a bare .hlog holds latencies, not a duration)."""

    base_rps: float | None = None
    new_rps: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change(self) -> float | None:
        """new/base - 1, as the latency changes are."""
        if self.base_rps is None or self.new_rps is None or not self.base_rps:
            return None
        return self.new_rps / self.base_rps - 1.0


class ErrorRateChange(Model):
    """Share of requests that failed (0.01 is 1%) in both versions; it decides nothing.
    None for a side without a run summary: a bare .hlog does not count errors."""

    base: float | None = None
    new: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def difference(self) -> float | None:
        """new - base (0.01 is one percentage point): a ratio of rates near zero says little."""
        if self.base is None or self.new is None:
            return None
        return self.new - self.base


class ComparisonResult(Model):
    base: str
    new: str
    # what was compared; the default: a summary.json from before stream metrics still loads
    metric: CompareMetric = CompareMetric.LATENCY
    requests: Pair
    errors: Pair
    direction: Direction
    alpha: float
    confidence: float
    mann_whitney: RankTest
    metrics: dict[str, MetricChange]  # p50, p90, p99, p999, max, mean of `metric`, in ms
    limits: tuple[LimitResult, ...]
    # defaults: a summary.json written before they were kept still loads
    throughput: ThroughputChange = ThroughputChange()
    error_rate: ErrorRateChange = ErrorRateChange()
    # the sides that recorded no values of `metric` (then `metrics` is empty): in a run, a
    # comparison that cannot be made is said so, and fails if it has limits
    missing: tuple[str, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def outcome(self) -> ComparisonOutcome:
        if self.missing:
            return ComparisonOutcome.NO_DATA
        if self.direction is Direction.SAME:
            return ComparisonOutcome.SAME
        if self.direction is Direction.FASTER:
            return ComparisonOutcome.FASTER
        if any(limit.failed for limit in self.limits):
            return ComparisonOutcome.SLOWER_OVER_LIMIT
        return (
            ComparisonOutcome.SLOWER_WITHIN_LIMIT
            if self.limits
            else ComparisonOutcome.SLOWER_NO_LIMIT
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return self.outcome is not ComparisonOutcome.SLOWER_OVER_LIMIT and not any(
            limit.failed for limit in self.limits
        )

    @property
    def name(self) -> str:
        """`new vs base`, and the metric unless it is latency (as junit's testcase names and
        the verdict's reasons have always said it)."""
        name = f"{self.new} vs {self.base}"
        return name if self.metric is CompareMetric.LATENCY else f"{name} ({self.metric})"

    def failure(self) -> str:
        failed = "; ".join(limit.failure() for limit in self.limits if limit.failed)
        return f"{self.outcome}{self.why_missing()}: {failed}"

    def why_missing(self) -> str:
        """` (no TTFT values recorded for 'old')`, or "" when both sides have values."""
        if not self.missing:
            return ""
        names = " and ".join(repr(name) for name in self.missing)
        return f" (no {self.metric.label} values recorded for {names})"


class CapacityChange(Model):
    """Two capacity-search runs' capacities (null: no step met the SLO, taken as 0); with
    `--max-regression capacity=PCT`, a drop of more than that fails."""

    base_rps: float | None
    new_rps: float | None
    max_drop: float | None = None  # 0.05 for capacity=5%; None: no limit

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change(self) -> float | None:
        """new/base - 1, as the latency changes are."""
        if not self.base_rps:
            return None
        return (self.new_rps or 0.0) / self.base_rps - 1.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> bool:
        if self.max_drop is None:
            return False
        return (self.new_rps or 0.0) < (self.base_rps or 0.0) * (1.0 - self.max_drop)

    def failure(self) -> str:
        change = "" if self.change is None else f" ({self.change:+.1%})"
        return (
            f"capacity {self.new_rps or 0:g} req/s, base {self.base_rps or 0:g}{change}: "
            f"a drop of more than {self.max_drop:.0%}"
        )


class RunRef(Model):
    """One argument of `loadgen compare`: the path given, and its run's id when a summary.json
    says it (a bare .hlog has none)."""

    path: str
    run_id: str | None

    @property
    def shown(self) -> str:
        return self.path if self.run_id is None else f"{self.run_id} ({self.path})"


class CompareReport(Model):
    """What `loadgen compare` prints: the two runs, what differs in how they were loaded
    (warnings: they fail nothing), and a comparison per pair of versions."""

    base: RunRef
    new: RunRef
    warnings: tuple[str, ...]  # e.g. "load profiles differ: load.rate 100 (base) vs 200 (new)"
    comparisons: tuple[ComparisonResult, ...]
    capacity: CapacityChange | None = None  # both runs searched for capacity

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        capacity_failed = self.capacity is not None and self.capacity.failed
        return not capacity_failed and all(comparison.passed for comparison in self.comparisons)

    @property
    def title(self) -> str:
        return f"compare base {self.base.shown} vs new {self.new.shown}"

    @model_serializer(mode="wrap")
    def _passed_first(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`passed` at the top, where a person reading the JSON looks."""
        data: dict[str, Any] = handler(self)
        return {"passed": data.pop("passed")} | data


# --- how the run ended, and the verdict -------------------------------------------------------


class StopReason(StrEnum):
    """How the run ended; anything but `completed` fails the run."""

    COMPLETED = "completed"
    SIGINT = "sigint"
    SIGTERM = "sigterm"
    ABORTED = "aborted"  # by thresholds.abort_on_fail
    WORKER_CRASHED = "worker_crashed"
    WORKERS_LATE = "workers_late"  # did not report by the graceful-stop deadline
    REFUSED = "refused"  # the first calls all failed in a way no load test can fix

    @property
    def text(self) -> str:
        return _STOP_TEXT[self]

    @property
    def exit_code(self) -> int | None:
        """The exit code this ending decides by itself; None: the gates decide."""
        return _STOP_EXIT_CODES.get(self)

    def describe(self, detail: str | None) -> str:
        return f"{self.text}: {detail}" if detail else self.text


_STOP_TEXT = {
    StopReason.COMPLETED: "completed",
    StopReason.SIGINT: "interrupted by SIGINT",
    StopReason.SIGTERM: "interrupted by SIGTERM",
    StopReason.ABORTED: "aborted by abort_on_fail",
    StopReason.WORKER_CRASHED: "a worker crashed",
    StopReason.WORKERS_LATE: "workers did not finish in time",
    StopReason.REFUSED: "the endpoint refused every call",
}
_STOP_EXIT_CODES = {
    StopReason.SIGINT: EXIT_INTERRUPTED,
    StopReason.SIGTERM: EXIT_INTERRUPTED,
    StopReason.ABORTED: EXIT_FAILED,
    StopReason.WORKER_CRASHED: EXIT_CANNOT_RUN,
    StopReason.WORKERS_LATE: EXIT_CANNOT_RUN,
    StopReason.REFUSED: EXIT_CANNOT_RUN,
}


class Verdict(Model):
    """Passed only when the run completed and every threshold and comparison passed."""

    passed: bool
    exit_code: int
    reasons: tuple[str, ...]  # why it failed, in order: the ending, thresholds, comparisons

    @classmethod
    def of(
        cls,
        stop_reason: StopReason,
        stop_detail: str | None,
        thresholds: tuple[ThresholdResult, ...],
        comparisons: tuple[ComparisonResult, ...],
    ) -> Verdict:
        reasons = []
        if stop_reason is not StopReason.COMPLETED:
            reasons.append(stop_reason.describe(stop_detail))
        reasons += [f"{t.endpoint}: {t.failure()}" for t in thresholds if not t.passed]
        reasons += [f"{c.name}: {c.failure()}" for c in comparisons if not c.passed]
        exit_code = stop_reason.exit_code
        if exit_code is None:
            exit_code = EXIT_FAILED if reasons else EXIT_OK
        return cls(passed=not reasons, exit_code=exit_code, reasons=tuple(reasons))

    @property
    def headline(self) -> str:
        """The run's last console line: PASSED, or FAILED: and the first few reasons."""
        if self.passed:
            return "PASSED"
        shown = "; ".join(self.reasons[:REASONS_SHOWN])
        more = len(self.reasons) - REASONS_SHOWN
        return f"FAILED: {shown}" + (f" (and {more} more)" if more > 0 else "")


# --- what the run says about itself -----------------------------------------------------------

# The tester did not keep its schedule when its starts were this late (p99), or it sent
# at less than this share of the target rate: the endpoint's numbers then include its delay.
BEHIND_START_DELAY_P99_MS = 10.0
BEHIND_ACHIEVED_SHARE = 0.99
LATE_SHARE = 0.01  # more late starts than this share: latency holds queueing in the tester
FULL_SHARE = 0.01  # max_in_flight full for more of the run than this: it limited the load
CPU_SATURATED = 0.9  # of one core, in the busiest engine process


class WarningCode(StrEnum):
    TESTER_BEHIND = "tester_behind"
    RATE_BELOW_TARGET = "rate_below_target"
    LATE_STARTS = "late_starts"
    MAX_IN_FLIGHT_FULL = "max_in_flight_full"
    OVERRUN = "overrun"
    TESTER_CPU_SATURATED = "tester_cpu_saturated"
    ECHOES_MISSING = "echoes_missing"


class RunWarning(Model):
    """Something about the run a user must know to trust its numbers; it fails nothing."""

    code: WarningCode
    message: str  # what happened, the cause, and the fix


def _more_workers(workers: int) -> str:
    return "workers: auto (or --workers N)" if workers == 1 else f"more than {workers} workers"


def _or_busy_poll(summary: RunSummary) -> str:
    return "" if summary.busy_poll else ", busy_poll: true (or --busy-poll)"


def run_warnings(summary: RunSummary) -> tuple[RunWarning, ...]:
    """Whether the tester kept the schedule asked of it, and whether the endpoint echoed."""
    warnings: list[RunWarning] = []

    def warn(code: WarningCode, message: str) -> None:
        warnings.append(RunWarning(code=code, message=message))

    load = summary.load_config
    total = summary.total
    target = summary.target_rate_rps
    achieved = summary.achieved_rate_rps
    workers = summary.workers
    full_share = summary.max_in_flight_full_s / summary.duration_s if summary.duration_s else 0.0
    max_in_flight = getattr(load, "max_in_flight", None)
    if target is not None:
        if achieved < BEHIND_ACHIEVED_SHARE * target:
            warn(
                WarningCode.RATE_BELOW_TARGET,
                f"achieved {achieved:,.1f} req/s, {achieved / target:.0%} of the requested "
                f"{target:,.1f} req/s: the endpoint was offered less load than asked for "
                "(the warnings below say why)",
            )
        if total.requests and total.late_starts > LATE_SHARE * total.requests:
            warn(
                WarningCode.LATE_STARTS,
                f"{total.late_starts:,} of {total.requests:,} starts "
                f"({total.late_starts / total.requests:.0%}) were more than 1 ms late: their "
                "wait is in the latency, as it would be for a real client",
            )
        if max_in_flight is not None and full_share > FULL_SHARE:
            warn(
                WarningCode.MAX_IN_FLIGHT_FULL,
                f"load.max_in_flight ({max_in_flight:,}) was full for "
                f"{summary.max_in_flight_full_s:,.1f} s of the {summary.duration_s:,.1f} s run "
                f"({full_share:.0%}): due requests waited for a free slot. Raise "
                "load.max_in_flight (the endpoint is slower than rate x max_in_flight allows), "
                "or lower the rate",
            )
        elif (
            summary.start_delay_ms.p99 > BEHIND_START_DELAY_P99_MS
            or achieved < BEHIND_ACHIEVED_SHARE * target
        ):
            warn(
                WarningCode.TESTER_BEHIND,
                f"the tester fell behind its schedule (start delay p99 "
                f"{summary.start_delay_ms.p99:,.1f} ms, achieved {achieved:,.0f} of "
                f"{target:,.0f} req/s) with free slots: latencies include its own delay. Use "
                f"{_more_workers(workers)}{_or_busy_poll(summary)}, or a lower rate",
            )
    planned_s = _planned_s(load)
    if planned_s is not None and summary.duration_s > planned_s + load.timeout:
        warn(
            WarningCode.OVERRUN,
            f"the run took {summary.duration_s:,.1f} s for a {planned_s:,.1f} s schedule, "
            f"more than its timeout ({load.timeout:g} s) over: requests queued behind "
            "max_in_flight or the tester",
        )
    if summary.tester_cpu >= CPU_SATURATED:
        warn(
            WarningCode.TESTER_CPU_SATURATED,
            f"the tester's CPU was saturated ({summary.tester_cpu:.0%} of a core in its "
            "busiest process): the rate may be the tester's and latency may hold its delay. "
            f"Add workers: {_more_workers(workers)}",
        )
    if total.ok and total.correlation.missing == total.ok:
        warn(
            WarningCode.ECHOES_MISSING,
            f"no response echoed its trace ID ({total.ok:,} missing): does the container set "
            "X-Amzn-SageMaker-Custom-Attributes? (README: Testing a real endpoint)",
        )
    return tuple(warnings)


def _planned_s(load: LoadConfig) -> float | None:
    """How long the schedule runs, if it is fixed in time."""
    if load.duration is not None:
        return load.duration
    rate = getattr(load, "rate", None)
    return load.requests / rate if rate and load.requests else None


# --- capacity: what a capacity-search found -------------------------------------------------

# Where latency starts to rise: a step's p50 this many times the lowest rate's, and at least
# KNEE_MIN_RISE_MS more (a sub-millisecond p50 that moves by 0.3 ms has not risen).
KNEE_RISE = 1.5
KNEE_MIN_RISE_MS = 1.0
_STEP_LABEL = re.compile(r"step-\d+@")


def step_label(number: int, rate: float) -> str:
    """A step's histograms' label, e.g. `step-03@400rps`. No endpoint name holds an "@", so
    a step's label never takes an endpoint's."""
    return f"step-{number:02d}@{rate:g}rps"


def is_step_label(label: str) -> bool:
    return _STEP_LABEL.match(label) is not None


class CapacityStep(Model):
    """One step of a capacity search: an open loop at `rate` for load.step_duration, good when
    it met the SLO and the tester sent at 99% of the rate or more."""

    label: str  # its histograms' label in histograms.json: step-01@200rps
    rate: float  # offered (scheduled) requests/s
    achieved_rps: float  # sent per second, from the first send to the last
    requests: int
    p50_ms: float  # latency from intended starts, all requests of the step
    p99_ms: float
    error_rate: float
    ttft_p50_ms: float | None = None  # streams
    ttft_p99_ms: float | None = None
    settled: bool = True  # the queue had drained before it (the probe's latency came back)
    failures: tuple[str, ...] = ()  # what it broke: an SLO limit, or the rate not kept

    @computed_field  # type: ignore[prop-decorator]
    @property
    def good(self) -> bool:
        return not self.failures


def knee_rate(steps: tuple[CapacityStep, ...]) -> float | None:
    """Where latency starts to rise, from the steps in order of rate: the highest rate before
    the first step whose p50 is over KNEE_RISE times the lowest rate's p50 and at least
    KNEE_MIN_RISE_MS above it. None when no step's p50 rose so (or there is one step)."""
    ordered = sorted(steps, key=lambda step: step.rate)
    if len(ordered) < 2:
        return None
    floor = ordered[0].p50_ms
    for below, step in zip(ordered, ordered[1:], strict=False):
        if step.p50_ms > KNEE_RISE * floor and step.p50_ms - floor >= KNEE_MIN_RISE_MS:
            return below.rate
    return None


class CapacitySummary(Model):
    """A capacity search: every step in the order run, and what they say. Its capacity is
    the highest rate of a good step: the search stops when the first bad rate above it is
    within `precision` of it, or when max_rate itself is good (`stopped_at_max_rate`)."""

    slo: Slo
    precision: float
    steps: tuple[CapacityStep, ...]
    stopped_at_max_rate: bool  # the endpoint met the SLO at load.max_rate: it takes more
    probe_requests: int = 0  # sent between steps to see the queue drained (not in the stats)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max_rate_rps(self) -> float | None:
        """The capacity: the highest rate that met the SLO; None when none did."""
        return max((step.rate for step in self.steps if step.good), default=None)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def knee_rate_rps(self) -> float | None:
        return knee_rate(self.steps)

    @property
    def text(self) -> str:
        """The finding in words, for every view."""
        found = self.max_rate_rps
        if found is None:
            lowest = min((step.rate for step in self.steps), default=0.0)
            return f"below {lowest:g} req/s: no step met the SLO"
        if self.stopped_at_max_rate:
            return f"at least {found:g} req/s: the SLO held at load.max_rate, the search's limit"
        return f"{found:g} req/s (within {self.precision * 100:g}%)"

    @model_serializer(mode="wrap")
    def _capacity_first(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The capacity at the top, where a person reading the JSON looks."""
        data: dict[str, Any] = handler(self)
        return {"max_rate_rps": data.pop("max_rate_rps")} | data


# --- the run ----------------------------------------------------------------------------------


class ClusterWorker(Model):
    """Where one worker ran: `node` is Ray's node id."""

    index: int  # the worker's share of the load, as in its trace IDs
    node: str
    pid: int


class ClusterInfo(Model):
    """The cluster a run's workers ran on; null in summary.json for a local run."""

    engine: Literal["ray"]
    address: str  # as given: auto, local, HOST:PORT or ray://HOST:PORT
    nodes: int  # distinct nodes the workers ran on
    workers: tuple[ClusterWorker, ...]


class RunSummary(Model):
    schema_id: Literal["loadgen-summary/1"] = Field(SCHEMA, alias="schema")
    run_id: str
    scenario: str
    started_at: datetime
    duration_s: float
    stop_reason: StopReason
    stop_detail: str | None = None  # e.g. which abort_on_fail limit, which worker
    transport: str
    region: str  # the region every call was signed for (region.py)
    load_config: LoadConfig = Field(alias="load")  # the scenario's load section
    correlation_mode: str
    workers: int
    busy_poll: bool = False  # each engine's loop polled without sleeping (the scenario's key)
    target_rate_rps: float | None  # the open loop's mean scheduled rate; None: closed loop
    achieved_rate_rps: float
    start_delay_ms: LatencyStats  # actual send minus intended start, open loop
    max_in_flight_full_s: float  # open loop: every slot busy while requests were due
    tester_cpu: float  # CPU time over wall time, busiest engine process (1.0: one core)
    interrupted_requests: int  # still in flight when the grace period ran out
    client_failure: str | None  # the first unexpected transport exception's type
    endpoints: dict[str, EndpointSummary]
    total: TrafficSummary
    thresholds: tuple[ThresholdResult, ...] = ()
    comparisons: tuple[ComparisonResult, ...] = ()
    cluster: ClusterInfo | None = None  # the workers were Ray actors (README: Running on a cluster)
    capacity: CapacitySummary | None = None  # a capacity-search run's finding; else null

    @computed_field  # type: ignore[prop-decorator]
    @property
    def complete(self) -> bool:
        return self.stop_reason is StopReason.COMPLETED

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> tuple[RunWarning, ...]:
        return run_warnings(self)

    @property
    def placement(self) -> str:
        """Where the engines ran, for people: the console, summary.md and the report."""
        cluster = self.cluster
        if cluster is not None:
            return (
                f"{len(cluster.workers)} Ray actors on {cluster.nodes} node(s) at {cluster.address}"
            )
        engines = "1 process" if self.workers == 1 else f"{self.workers} worker processes"
        return f"{engines}, busy-polling" if self.busy_poll else engines

    @property
    def stop_text(self) -> str:
        """How the run ended, for people: completed, or e.g. interrupted by SIGINT."""
        return self.stop_reason.describe(self.stop_detail)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> Verdict:
        return Verdict.of(self.stop_reason, self.stop_detail, self.thresholds, self.comparisons)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @model_serializer(mode="wrap")
    def _verdict_first(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The verdict near the top of summary.json, where a person opening it looks."""
        data: dict[str, Any] = handler(self)
        first = ("schema", "passed", "complete", "verdict")
        return {key: data.pop(key) for key in first if key in data} | data

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> RunSummary:
        """A summary.json; an old, foreign or damaged file is a UsageError naming it."""
        data = read_json_object(path)
        schema = data.get("schema")
        if schema is None:
            raise UsageError(
                f"{path}: not a {SCHEMA} file (no 'schema' field: written by another tool, "
                "or by a loadgen older than schema 1)"
            )
        if schema != SCHEMA:
            raise UsageError(
                f"{path}: schema {schema!r} is not supported (this loadgen reads {SCHEMA})"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise UsageError(_problems(path, exc)) from None


def _problems(path: Path, exc: ValidationError, most: int = 5) -> list[str]:
    errors = exc.errors()
    lines = [
        f"{path}: {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in errors[:most]
    ]
    if len(errors) > most:
        lines.append(f"{path}: and {len(errors) - most} more problems")
    return lines
