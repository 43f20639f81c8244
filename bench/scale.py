"""Ray actors against local worker processes: the same load, the same nginx, one run.

Each repeat runs the closed loop (constant-concurrency on `--connections` connections for
`--duration` s, fast transport, echo checked) with `workers: N` as local processes, then as
N Ray actors on a Ray started here on 127.0.0.1 (N CPUs), interleaved so drift hits both.
This process is the runner (the Ray driver) of both, so it measures, over the merge alone
(from Start to the last Final):

- req/s (requests / the run's duration) of each, and the Ray/local ratio (target >= 0.9);
- the driver's CPU (process time, Ray's own driver threads included) per merged interval
  (one endpoint-second of one worker) and per message (Tick);

then the merge with no transport at all: a worker's Ticks, made once, fed to `Pool`'s merge
on one core, for the intervals per second one driver can merge.

    PYTHONPATH=. .venv/bin/python bench/scale.py [--workers 2] [--duration 10]
        [--connections 64] [--repeats 3] [--endpoints 1] [--json PATH]

Needs nginx (bench/install.sh) and loadgen[ray].
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from throughput import BODY, BenchError, free_port, loadgen_env, machine, start_nginx, stop

from loadgen.correlate import Echo
from loadgen.engine.cluster import USAGE_STATS, import_ray
from loadgen.engine.context import RunContext
from loadgen.engine.core import Progress, TesterStats
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.engine.workers import Final, Merged, Pool, Tick, WireInterval
from loadgen.histograms import new_histogram
from loadgen.metrics import Interval, Recorder
from loadgen.scenario import Scenario, scenario_from_dict
from loadgen.transport.base import Outcome


@dataclass
class Merging:
    """What the driver did between Start and the last Final of one run."""

    cpu_s: float = 0.0
    wall_s: float = 0.0
    messages: int = 0
    intervals: int = 0  # WireIntervals: one endpoint-second of one worker


@dataclass
class Row:
    label: str
    rps: list[float] = field(default_factory=list)
    cpu_per_interval_us: list[float] = field(default_factory=list)
    cpu_per_message_us: list[float] = field(default_factory=list)
    driver_cpu_share: list[float] = field(default_factory=list)  # of one core, while merging
    per_core_rps: list[float] = field(default_factory=list)  # req/s per core the workers used
    notes: list[str] = field(default_factory=list)


def instrument(measured: list[Merging]) -> None:
    """Count what Pool.collect merges and the process CPU it takes (a bench-only wrapper)."""
    collect = Pool.collect
    add_intervals = Pool._add_intervals

    async def timed_collect(self: Pool[Any], *args: Any) -> None:
        merging = Merging()
        measured.append(merging)
        cpu, wall = time.process_time(), time.monotonic()
        try:
            await collect(self, *args)
        finally:
            merging.cpu_s = time.process_time() - cpu
            merging.wall_s = time.monotonic() - wall

    def counted_add(
        self: Pool[Any], worker: Any, wire: tuple[WireInterval, ...], sink: Any
    ) -> None:
        measured[-1].messages += 1
        measured[-1].intervals += len(wire)
        add_intervals(self, worker, wire, sink)

    Pool.collect = timed_collect  # type: ignore[method-assign]
    Pool._add_intervals = counted_add  # type: ignore[method-assign]


def scenario(url: str, args: argparse.Namespace, ray: bool) -> Scenario:
    raw: dict[str, Any] = {
        "name": "scale-ray" if ray else "scale-local",
        "region": "us-east-1",
        "endpoint_url": url,
        "transport": "fast",
        "workers": args.workers,
        "endpoints": [{"name": f"bench{i}"} for i in range(args.endpoints)],
        "request": {"body": BODY, "custom_attributes": "trace={trace_id}"},
        "correlation": "contains",
        "load": {
            "executor": "constant-concurrency",
            "concurrency": args.connections,
            "duration": f"{args.duration}s",
        },
    }
    if ray:
        raw["cluster"] = {"address": "local"}  # the Ray this script started: already connected
    return scenario_from_dict(raw)


def fan_out_scenario(url: str, actors: int, endpoints: int, duration_s: int) -> Scenario:
    """Many actors, little load each (4 req/s per endpoint): what the driver's merge costs
    per actor and endpoint, when the load itself costs nothing."""
    return scenario_from_dict(
        {
            "name": "scale-fan-out",
            "region": "us-east-1",
            "endpoint_url": url,
            "workers": actors,
            "cluster": {"address": "local"},
            "endpoints": [{"name": f"bench{i}"} for i in range(endpoints)],
            "request": {"body": BODY, "custom_attributes": "trace={trace_id}"},
            "load": {
                "executor": "constant-arrival-rate",
                "rate": 4 * actors * endpoints,
                "max_in_flight": 4 * actors,
                "duration": f"{duration_s}s",
            },
        }
    )


def run_once(
    s: Scenario, out: Path, measured: list[Merging]
) -> tuple[float, float, Merging, str | None]:
    """req/s, req/s per core of worker CPU (tester_cpu: the busiest worker's share of a
    core, taken for every worker), what the driver merged, and any problem."""
    result = uvloop.run(run_scenario(s, RunOptions(out=out, quiet=True)))
    summary = result.summary
    total = summary.total
    shutil.rmtree(result.folder, ignore_errors=True)
    problems = []
    if not summary.complete:
        problems.append(f"incomplete: {summary.stop_text}")
    if total.correlation.matched != total.requests or total.error_count:
        problems.append(f"matched {total.correlation.matched} of {total.requests}, {total.errors}")
    rps = total.requests / summary.duration_s
    per_core = rps / (summary.workers * summary.tester_cpu) if summary.tester_cpu else 0.0
    return rps, per_core, measured[-1], "; ".join(problems) or None


# --- the merge alone --------------------------------------------------------------------------


class Replay(Pool[Any]):
    """Pool's merge fed from memory: what a driver does with messages once they are here."""

    def __init__(self, ctx: RunContext, messages: dict[int, list[Tick]]) -> None:
        workers = [_Member(share) for share in messages]
        super().__init__(ctx, workers)
        self._messages = messages

    async def _receive(self, worker: Any) -> object:
        return self._messages[worker.share].pop(0)

    async def wait_ready(self) -> None:
        pass

    def start(self) -> int:
        return 0

    def stop(self) -> None:
        pass

    async def close(self) -> None:
        pass


@dataclass
class _Member:
    share: int
    finished: bool = False


ANSWER = Outcome(200, variant="AllTraffic")  # as SageMaker (and the nginx echo) answer


def worker_ticks(labels: list[str], seconds: int, per_second: int) -> list[Tick]:
    """A worker's messages for `seconds`: each second a Tick with its closed intervals (one
    per endpoint, `per_second` requests each) and one without, as a worker sends every 0.5 s;
    each with its recorder's state (per endpoint and its one variant)."""
    recorder = Recorder(labels, start_ns=0)
    ticks: list[Tick] = []
    for second in range(seconds):
        wire = []
        for label in labels:
            interval = Interval(second, label, new_histogram())
            for value in range(per_second):
                latency = 800 + (value * 37) % 4000
                interval.latency.record_value(latency)
                recorder.record(label, ANSWER, Echo.MATCHED, latency, latency, False, "t", 0)
            interval.requests = per_second
            wire.append(WireInterval.of(interval))
        ticks.append(Tick(tuple(wire), recorder.take_state(), Progress(0, 0, second + 0.5)))
        ticks.append(Tick((), recorder.take_state(), Progress(0, 0, second + 1.0)))
    last = ticks.pop()
    ticks.append(Final(last.intervals, last.state, last.progress, TesterStats().to_state()))
    return ticks


def merge_alone(endpoints: int, workers: int, seconds: int, per_second: int) -> float:
    """Intervals merged per second of driver CPU, messages already in memory."""
    labels = [f"bench{i}" for i in range(endpoints)]
    template = worker_ticks(labels, seconds, per_second)
    s = scenario_from_dict(
        {
            "name": "merge",
            "region": "us-east-1",
            "endpoint_url": "http://127.0.0.1:1",
            "endpoints": [{"name": label} for label in labels],
            "request": {"body": "{}"},
            "load": {"executor": "constant-concurrency", "concurrency": 1, "duration": "1s"},
        }
    )
    ctx = RunContext(s, "0000beef", None, shares=workers)
    pool = Replay(ctx, {share: list(template) for share in range(workers)})
    merged = Merged(Recorder(labels, 0))
    sunk: list[Interval] = []
    cpu = time.process_time()
    asyncio.run(pool.collect(merged, sunk.append, asyncio.Event(), time.monotonic() + 600))
    cpu_s = time.process_time() - cpu
    intervals = workers * seconds * endpoints
    assert len(sunk) == seconds * endpoints and merged.failure is None
    return intervals / cpu_s


# --- the run ----------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument(
        "--fan-out",
        type=int,
        default=32,
        help="then this many actors (Ray given as many CPUs, most of them idle) on "
        "--fan-out-endpoints endpoints at 4 req/s each: the driver's merge at scale; 0: skip",
    )
    parser.add_argument("--fan-out-endpoints", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        print("error: nginx not found: bench/install.sh installs it", file=sys.stderr)
        return 2
    os.environ.update(loadgen_env())  # fake credentials; nginx does not check them
    os.environ.setdefault(USAGE_STATS, "0")
    ray = import_ray(loopback_only=True)
    ray.init(
        address="local",
        num_cpus=max(args.workers, args.fan_out),  # the fan-out's actors are mostly idle
        include_dashboard=False,
        log_to_driver=False,
        namespace="loadgen",
        logging_level="ERROR",
    )
    measured: list[Merging] = []
    instrument(measured)
    rows = {
        "local": Row(f"{args.workers} local worker processes"),
        "ray": Row(f"{args.workers} Ray actors"),
    }
    fan_out: Merging | None = None
    started = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="loadgen-scale-") as tmp:
        port = free_port()
        try:
            server = start_nginx(nginx, Path(tmp), port)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        url = f"http://127.0.0.1:{port}"
        try:
            for repeat in range(1, args.repeats + 1):
                for key, row in rows.items():
                    rps, per_core, merging, note = run_once(
                        scenario(url, args, key == "ray"), Path(tmp), measured
                    )
                    row.rps.append(rps)
                    row.per_core_rps.append(per_core)
                    if merging.intervals:
                        row.cpu_per_interval_us.append(merging.cpu_s / merging.intervals * 1e6)
                        row.cpu_per_message_us.append(merging.cpu_s / merging.messages * 1e6)
                        row.driver_cpu_share.append(merging.cpu_s / merging.wall_s)
                    if note:
                        row.notes.append(f"run {repeat}: {note}")
                    print(
                        f"[{repeat}/{args.repeats}] {row.label}: {rps:,.0f} req/s, driver "
                        f"{merging.cpu_s / merging.wall_s:.1%} of a core, "
                        f"{merging.intervals} intervals in {merging.messages} messages",
                        file=sys.stderr,
                    )
            if args.fan_out:
                fan = fan_out_scenario(url, args.fan_out, args.fan_out_endpoints, args.duration)
                _, _, fan_out, note = run_once(fan, Path(tmp), measured)
                print(
                    f"fan-out: {args.fan_out} actors x {args.fan_out_endpoints} endpoints: driver "
                    f"{fan_out.cpu_s / fan_out.wall_s:.1%} of a core, {fan_out.intervals} "
                    f"intervals in {fan_out.messages} messages{f' ({note})' if note else ''}",
                    file=sys.stderr,
                )
        finally:
            stop(server)
            ray.shutdown()
    alone = merge_alone(args.endpoints, workers=64, seconds=30, per_second=1000)
    local, remote = rows["local"], rows["ray"]
    ratio = (median(remote.rps) or 0) / (median(local.rps) or 1)
    print(
        f"\n{started:%Y-%m-%d %H:%M} UTC; {machine()['nproc']} CPUs; nginx 1 worker on "
        f"127.0.0.1; closed loop, {args.connections} connections, {args.endpoints} "
        f"endpoint(s), {args.duration} s per run, {args.repeats} repeats interleaved; "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n"
    )
    print(
        "| workers as | req/s (median) | req/s per worker core | driver CPU per merged "
        "interval | per message | driver CPU while merging |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows.values():
        print(
            f"| {row.label} | {median(row.rps) or 0:,.0f} | {median(row.per_core_rps) or 0:,.0f} | "
            f"{median(row.cpu_per_interval_us) or 0:,.0f} µs | "
            f"{median(row.cpu_per_message_us) or 0:,.0f} µs | "
            f"{median(row.driver_cpu_share) or 0:.1%} of a core |"
        )
    print(f"\nRay/local throughput: {ratio:.3f} (target >= 0.9)")
    print(
        f"The merge alone (64 workers x {args.endpoints} endpoint(s) x 30 s, 1,000 requests per "
        f"endpoint-second, messages in memory): {alone:,.0f} intervals merged per second of "
        "driver CPU"
    )
    if fan_out is not None and fan_out.cpu_s:
        print(
            f"Fan-out: {args.fan_out} Ray actors x {args.fan_out_endpoints} endpoints "
            f"({args.fan_out * args.fan_out_endpoints} intervals a second): the driver used "
            f"{fan_out.cpu_s / fan_out.wall_s:.1%} of a core while merging, "
            f"{fan_out.cpu_s / fan_out.intervals * 1e6:,.0f} µs per interval, Ray's polling "
            f"included: {fan_out.intervals / fan_out.cpu_s:,.0f} intervals per second of "
            "driver CPU"
        )
    for row in rows.values():
        for note in row.notes:
            print(f"- {row.label}: {note}")
    if args.json:
        report = {
            "date": started.isoformat(),
            "machine": machine(),
            "settings": vars(args) | {"json": str(args.json)},
            "rows": {key: row.__dict__ for key, row in rows.items()},
            "ratio": ratio,
            "merge_alone_intervals_per_cpu_s": alone,
            "fan_out": fan_out.__dict__ if fan_out is not None else None,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
