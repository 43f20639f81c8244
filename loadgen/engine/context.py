"""What every part of one run shares, passed down explicitly: never a module global."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from loadgen.scenario import (
    CapacitySearch,
    ConstantArrivalRate,
    RampingArrivalRate,
    Scenario,
    TraceReplay,
)
from loadgen.trace import read_trace

# A request's own timeout can fire at the very end of the stop's grace period; this much
# more lets it be recorded as a Timeout rather than cut off and counted as interrupted.
DRAIN_MARGIN_S = 0.1
# A stopped worker's last message: its final fold, encoding and the pipe.
REPORT_MARGIN_S = 10.0
# An open loop that fell behind its schedule keeps starting requests past its duration.
OVERRUN_ALLOWANCE_S = 20.0
# The schedule starts this long after "go": every engine (every worker) has its callers in
# place, parked until the first request is due, so the first requests are not late.
START_LEAD_NS = 100_000_000
# An open loop opens, before its start, the connections this much of its schedule needs at
# once; more are opened as they are needed.
WARM_SCHEDULE_S = 0.01


def share_of(total: int, share: int, shares: int) -> int:
    """This part of `total` when `shares` parts split it as evenly as possible (at least 1)."""
    base, extra = divmod(total, shares)
    return max(1, base + (1 if share < extra else 0))


def _first_rows(load: TraceReplay) -> int:
    """How many of a trace's rows start in its first WARM_SCHEDULE_S, as replayed."""
    rows = 0
    first = None
    for row in read_trace(load.file, load.trace_format):
        first = row.offset_s if first is None else first
        if (row.offset_s - first) / load.speedup >= WARM_SCHEDULE_S:
            break
        rows += 1
    return rows


@dataclass(frozen=True)
class RunContext:
    """One run's scenario and identity, and which part of it this engine carries: worker
    `share` of `shares` (a single-process run is part 0 of 1)."""

    scenario: Scenario
    run_id: str
    endpoint_url: str | None  # resolved: the built-in mock's own URL when it serves the run
    share: int = 0
    shares: int = 1

    def part(self, share: int, shares: int) -> RunContext:
        return replace(self, share=share, shares=shares)

    @property
    def connections(self) -> int:
        """This part's connections, and its cap on requests in flight."""
        return share_of(self.scenario.load.max_connections, self.share, self.shares)

    @property
    def warm_connections(self) -> int:
        """How many connections to open before the start: a closed loop's callers each need
        one at once; an open loop, as many as its first WARM_SCHEDULE_S of requests."""
        load = self.scenario.load
        if isinstance(load, ConstantArrivalRate):
            rate = load.rate
        elif isinstance(load, RampingArrivalRate | CapacitySearch):
            rate = load.start_rate
        elif isinstance(load, TraceReplay):
            return min(self.connections, math.ceil(_first_rows(load) / self.shares))
        else:
            return self.connections
        return min(self.connections, math.ceil(rate / self.shares * WARM_SCHEDULE_S))

    @property
    def graceful_stop_s(self) -> float:
        """How long requests in flight get once a part stops starting new ones: a request
        may spend its connect timeout and then its read timeout."""
        load = self.scenario.load
        return load.connect_timeout + load.timeout + DRAIN_MARGIN_S

    def finish_deadline(self, stopped_at: float) -> float:
        """When a part that stopped starting requests at `stopped_at` (monotonic seconds)
        must have reported everything, or be counted as failed."""
        return stopped_at + self.graceful_stop_s + REPORT_MARGIN_S
