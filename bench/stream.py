"""Streaming: token events per client CPU-second and client-added TTFT, fast vs botocore.

bench/stream_server.py, in its own process, answers InvokeEndpointWithResponseStream on a
fixed schedule: the first token event D ms (100) after the request arrives, then one every
G ms (20), N events (64), one timer for all streams. loadgen (1 worker) streams from it
with each transport in turn, interleaved over the repeats, and the table gives medians:

- events per client CPU-second: `output_tokens` over the engine's CPU seconds
  (summary.json's `tester_cpu` x `duration_s`: the engine's window, imports and writing
  results left out; the whole process's rusage is in --json);
- client-added TTFT: `ttft_service_time_ms` (first token event from the send) minus D,
  p50 and p99. It includes the server's own lateness, shown beside it.

Each repeat also runs bench/stream_floor.py: a uvloop reader that drops the bytes, at the
same streams. Its events per CPU-second are the floor's: what the kernel and the event loop
cost per read, which no Python client reading each event in its own read can beat; the
floor over botocore is the highest ratio reachable on the machine.

The load is an open loop by default: `constant-arrival-rate` at streams / (D + (N-1) G)
per second, so `--streams` are in flight with their start times spread evenly (Little's
law; the table shows the mean reached). A closed loop (`--executor closed`) starts every
stream at once and, all streams being the same length, keeps them in step: bursts of
events every G ms rather than a steady flow (bench/README.md says more).

    .venv/bin/python bench/stream.py [--duration 10] [--streams 1000] [--botocore-streams 100]
                                     [--repeats 3] [--json PATH] [--transports fast,botocore]
                                     [--no-floor]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent  # the checkout whose loadgen runs (PYTHONPATH too), not an installed one
sys.path[:0] = [str(BENCH), str(ROOT)]

from stream_server import ServerStats  # noqa: E402 - a sibling script, not a package
from throughput import BenchError, end_on_signals, loadgen_env, machine  # noqa: E402

from loadgen.summary import RunSummary  # noqa: E402

ENDPOINT = "bench"
BODY = '{"inputs": "Hello", "parameters": {"max_new_tokens": 64}, "stream": true}'
STARTUP_GRACE_S = 90  # on top of the run: imports, connecting, draining, writing results
IN_FLIGHT_HEADROOM = 1.1  # the open loop's max_in_flight over the streams it aims for
TTFT_TARGET_MS = 2.0
RATIO_TARGET = 20.0


@dataclass(frozen=True)
class Schedule:
    first_token_ms: float  # D
    gap_ms: float  # G
    tokens: int  # N

    @property
    def stream_s(self) -> float:
        """How long one stream lasts on the server's schedule."""
        return (self.first_token_ms + (self.tokens - 1) * self.gap_ms) / 1000


@dataclass(frozen=True)
class Settings:
    duration_s: int
    executor: str  # open | closed
    schedule: Schedule
    url: str
    server_pid: int


@dataclass(frozen=True)
class Run:
    """One `loadgen run` and what the server saw meanwhile."""

    streams: int  # aimed for
    events: int  # token events of successful streams (summary output_tokens)
    engine_cpu_s: float  # tester_cpu x duration_s
    process_cpu_s: float  # the loadgen process's rusage, startup and results included
    duration_s: float
    tester_cpu: float
    ttft_added_p50_ms: float  # ttft_service_time_ms minus D
    ttft_added_p99_ms: float
    ttft_intended_p99_ms: float  # ttft_ms (from the intended start) minus D
    in_flight_mean: float  # achieved rate x mean service time (Little's law)
    requests: int
    ok: int
    errors: dict[str, int]
    unmatched: int  # successful calls whose echo did not match
    late_starts: int
    # how busy the machine was over the whole `loadgen run`
    client_wait_share: float  # of the wall time, loadgen's main thread waited for a CPU
    server_wait_share: float  # the same for the server
    steal_share: float  # of all CPUs' time, taken by the hypervisor
    others_cpus: float  # CPUs' worth used by other processes than loadgen and the server
    server: ServerStats

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.engine_cpu_s if self.engine_cpu_s else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s if self.duration_s else 0.0

    @property
    def server_cpu(self) -> float:
        return self.server.cpu_share

    @property
    def server_first_p50_ms(self) -> float | None:
        late = self.server.first_token_late
        return None if late is None else late.p50 / 1000

    @property
    def server_first_p99_ms(self) -> float | None:
        late = self.server.first_token_late
        return None if late is None else late.p99 / 1000


@dataclass
class Floor:
    """bench/stream_floor.py's runs: token events per CPU-second of a reader that drops them."""

    streams: int
    runs: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None


@dataclass
class Row:
    transport: str
    streams: int
    runs: list[Run] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        """The median over the runs of a Run field or property (None where it is None)."""
        values = [value for run in self.runs if (value := getattr(run, name)) is not None]
        return statistics.median(values) if values else None


# --- the server ------------------------------------------------------------------------------


def start_server(schedule: Schedule, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        str(BENCH / "stream_server.py"),
        "--first-token-ms",
        str(schedule.first_token_ms),
        "--gap-ms",
        str(schedule.gap_ms),
        "--tokens",
        str(schedule.tokens),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until it listens or dies
    if "listening on" not in line:
        stop(process)
        raise BenchError(f"stream_server.py did not start: {line.strip()!r}")
    return process, line.rsplit(" ", 1)[1].strip()


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def server_stats(url: str) -> ServerStats:
    """Since the last call: the server's lateness and CPU (each call starts a new count)."""
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        return ServerStats.from_json(response.read())


# --- loadgen -----------------------------------------------------------------------------


def scenario(settings: Settings, transport: str, streams: int) -> dict[str, object]:
    load: dict[str, object]
    if settings.executor == "closed":
        load = {"executor": "constant-concurrency", "concurrency": streams}
    else:
        load = {
            "executor": "constant-arrival-rate",
            "rate": round(streams / settings.schedule.stream_s, 3),
            "max_in_flight": math.ceil(streams * IN_FLIGHT_HEADROOM),
        }
    load["duration"] = f"{settings.duration_s}s"
    return {
        "name": f"stream-{transport}",
        "region": "us-east-1",
        "endpoint_url": settings.url,
        "transport": transport,
        "workers": 1,
        "endpoints": [{"name": ENDPOINT}],
        "request": {
            "body": BODY,
            "stream": True,
            "stream_format": "sse",
            "custom_attributes": "trace={trace_id}",
        },
        "correlation": "contains",
        "load": load,
    }


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds a process's main thread ran, and waited runnable for a CPU (Linux schedstat)."""
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
    except OSError:
        return 0.0, 0.0
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9


def cpu_jiffies() -> tuple[int, int, int]:
    """The machine's busy, stolen and total CPU time so far, all CPUs (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    return total - idle - steal, steal, total


@dataclass(frozen=True)
class Watched:
    wall_s: float
    waited_s: float  # runnable, waiting for a CPU: what a busy machine adds
    cpu_s: float  # the whole process: startup, the run, writing results


def run_watched(command: list[str], timeout: float, env: dict[str, str], scratch: Path) -> Watched:
    """Run `command` (its own process group, killed whole on a timeout or an interrupt) and
    read its run-queue wait until it exits; BenchError on a non-zero exit."""
    log = scratch / "loadgen.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with log.open("w") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    waited_s = 0.0
    try:
        while process.poll() is None:
            if time.monotonic() - started > timeout:
                raise BenchError(f"loadgen timed out after {timeout:.0f} s")
            waited_s = schedstat(process.pid)[1] or waited_s  # the last reading before exit
            time.sleep(0.2)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    wall_s = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise BenchError(f"loadgen exited {process.returncode}: {tail}")
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Watched(wall_s, waited_s, cpu_s)


def run_loadgen(
    settings: Settings, scratch: Path, transport: str, streams: int, env: dict[str, str]
) -> Run:
    path = scratch / "scenario.yaml"
    path.write_text(json.dumps(scenario(settings, transport, streams), indent=2))  # JSON is YAML
    out = scratch / "results"
    server_stats(settings.url)  # start the server's count afresh
    server_waited = schedstat(settings.server_pid)[1]
    busy, steal, total = cpu_jiffies()
    watched = run_watched(
        [sys.executable, "-m", "loadgen", "run", str(path), "--quiet", "--out", str(out)],
        settings.duration_s + settings.schedule.stream_s + STARTUP_GRACE_S,
        env,
        scratch,
    )
    busy_after, steal_after, total_after = cpu_jiffies()
    server_waited = schedstat(settings.server_pid)[1] - server_waited
    server = server_stats(settings.url)
    folders = [p for p in out.iterdir() if p.is_dir()] if out.is_dir() else []
    if len(folders) != 1:
        raise BenchError(f"expected one run folder under {out}, found {len(folders)}")
    summary = RunSummary.load(folders[0] / "summary.json")
    total_stats = summary.total
    ttft, ttft_service = total_stats.ttft_ms, total_stats.ttft_service_time_ms
    if not total_stats.ok or ttft is None or ttft_service is None:
        raise BenchError(f"no stream completed: {total_stats.errors}")
    first_ms = settings.schedule.first_token_ms
    cpus = os.cpu_count() or 1
    jiffies = (total_after - total) or 1
    server_cpu_s = server.cpu_s
    machine_busy = (busy_after - busy) / jiffies * cpus  # in CPUs
    return Run(
        streams=streams,
        events=total_stats.output_tokens or 0,
        engine_cpu_s=summary.tester_cpu * summary.duration_s,
        process_cpu_s=watched.cpu_s,
        duration_s=summary.duration_s,
        tester_cpu=summary.tester_cpu,
        ttft_added_p50_ms=ttft_service.p50 - first_ms,
        ttft_added_p99_ms=ttft_service.p99 - first_ms,
        ttft_intended_p99_ms=ttft.p99 - first_ms,
        in_flight_mean=summary.achieved_rate_rps * total_stats.service_time_ms.mean / 1000,
        requests=total_stats.requests,
        ok=total_stats.ok,
        errors=dict(total_stats.errors),
        unmatched=total_stats.ok - total_stats.correlation.matched,
        late_starts=total_stats.late_starts,
        client_wait_share=watched.waited_s / watched.wall_s,
        server_wait_share=server_waited / watched.wall_s,
        steal_share=(steal_after - steal) / jiffies,
        others_cpus=max(0.0, machine_busy - (watched.cpu_s + server_cpu_s) / watched.wall_s),
        server=server,
    )


# --- report --------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def run_floor(settings: Settings, streams: int, env: dict[str, str]) -> float:
    """One bench/stream_floor.py run: its token events per CPU-second."""
    command = [
        sys.executable,
        str(BENCH / "stream_floor.py"),
        "--url",
        settings.url,
        "--streams",
        str(streams),
        "--stream-s",
        str(settings.schedule.stream_s),
        "--duration",
        str(settings.duration_s),
    ]
    timeout = settings.duration_s + settings.schedule.stream_s + STARTUP_GRACE_S
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"stream_floor.py timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise BenchError(f"stream_floor.py exited {done.returncode}: {tail}")
    counts = json.loads(done.stdout)
    if not counts["events"] or not counts["cpu_s"]:
        raise BenchError(f"stream_floor.py read no events: {counts}")
    return float(counts["events"] / counts["cpu_s"])


def table(rows: list[Row], floor: Floor | None = None) -> str:
    lines = [
        "| transport | streams | token events per client CPU-s | runs | client CPU "
        "| client waited for a CPU | token events/s | client-added TTFT p50 / p99 "
        "| server: first token late p50 / p99, CPU |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        runs = " / ".join(f"{run.events_per_cpu_s:,.0f}" for run in row.runs) or "failed"
        lines.append(
            f"| {row.transport} | {row.streams:,} | {fmt(row.median('events_per_cpu_s'))} "
            f"| {runs} | {fmt(row.median('tester_cpu'), '.0%')} "
            f"| {fmt(row.median('client_wait_share'), '.0%')} "
            f"| {fmt(row.median('events_per_s'))} "
            f"| {fmt(row.median('ttft_added_p50_ms'), '.2f')} / "
            f"{fmt(row.median('ttft_added_p99_ms'), '.2f')} ms "
            f"| {fmt(row.median('server_first_p50_ms'), '.2f')} / "
            f"{fmt(row.median('server_first_p99_ms'), '.2f')} ms, "
            f"{fmt(row.median('server_cpu'), '.0%')} |"
        )
    if floor is not None:
        runs = " / ".join(f"{value:,.0f}" for value in floor.runs) or "failed"
        lines.append(
            f"| floor: a reader that drops the bytes | {floor.streams:,} "
            f"| {fmt(floor.median())} | {runs} | - | - | - | - | - |"
        )
    return "\n".join(lines)


def verdicts(rows: list[Row], floor: Floor | None = None) -> list[str]:
    """The issue's two targets, plainly, and the floor's ceiling on the first."""
    boto = next((row for row in rows if row.transport == "botocore" and row.runs), None)
    fast = [row for row in rows if row.transport == "fast" and row.runs]
    lines = []
    if boto is not None:
        reference = boto.median("events_per_cpu_s")
        assert reference is not None
        for row in fast:
            ratio = (row.median("events_per_cpu_s") or 0.0) / reference
            met = "met" if ratio >= RATIO_TARGET else "NOT met"
            lines.append(
                f"fast ({row.streams:,} streams) / botocore ({boto.streams:,} streams), token "
                f"events per client CPU-second: {ratio:.1f}x (target >= {RATIO_TARGET:g}x: {met})"
            )
        floor_median = floor.median() if floor is not None else None
        if floor is not None and floor_median is not None:
            lines.append(
                f"floor ({floor.streams:,} streams) / botocore: {floor_median / reference:.1f}x, "
                "the highest ratio a client reading each event in its own read reaches here"
            )
    if fast:
        row = fast[0]
        p99 = row.median("ttft_added_p99_ms") or 0.0
        met = "met" if p99 < TTFT_TARGET_MS else "NOT met"
        lines.append(
            f"fast, client-added TTFT p99 at {row.streams:,} streams: {p99:.2f} ms "
            f"(target < {TTFT_TARGET_MS:g} ms: {met})"
        )
    return lines


def notes(rows: list[Row], settings: Settings) -> list[str]:
    found: list[str] = []
    for row in rows:
        name = f"{row.transport} ({row.streams:,} streams)"
        found.extend(f"{name}: {failure}" for failure in row.failures)
        for number, run in enumerate(row.runs, 1):
            problems = []
            if run.errors:
                problems.append(f"errors {run.errors}")
            if run.unmatched:
                problems.append(f"{run.unmatched} echoes not matched")
            if settings.executor == "open" and run.late_starts:
                problems.append(f"{run.late_starts:,} of {run.requests:,} starts late")
            if run.tester_cpu >= 0.9:
                problems.append(f"client CPU {run.tester_cpu:.0%}: saturated")
            if problems:
                found.append(f"{name} run {number}: {'; '.join(problems)}")
        if row.runs:
            found.append(
                f"{name}: mean streams in flight {row.median('in_flight_mean'):,.0f}; "
                "client-added TTFT p99 from the intended start "
                f"{row.median('ttft_intended_p99_ms'):.2f} ms; the machine meanwhile: "
                f"{row.median('steal_share'):.0%} of CPU time stolen by the hypervisor, "
                f"other processes {row.median('others_cpus'):.2f} CPUs, the server waited "
                f"for a CPU {row.median('server_wait_share'):.0%} of the time; whole loadgen "
                f"process {row.median('process_cpu_s'):.1f} CPU-s for "
                f"{row.median('engine_cpu_s'):.1f} in the engine"
            )
    return found


def main() -> int:
    end_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per loadgen run")
    parser.add_argument("--streams", type=int, default=1000, help="streams in flight (fast)")
    parser.add_argument(
        "--botocore-streams", type=int, default=100, help="streams in flight for botocore"
    )
    parser.add_argument("--first-token-ms", type=float, default=100.0, help="D")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="G")
    parser.add_argument("--tokens", type=int, default=64, help="N")
    parser.add_argument("--executor", choices=("open", "closed"), default="open")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--transports", default="fast,botocore")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-floor", action="store_true", help="skip bench/stream_floor.py's runs")
    args = parser.parse_args()
    if min(args.duration, args.streams, args.botocore_streams, args.repeats, args.tokens) <= 0:
        parser.error("--duration, --streams, --botocore-streams, --repeats, --tokens must be > 0")
    wanted = args.transports.split(",")
    if set(wanted) - {"fast", "botocore"}:
        parser.error("--transports: a comma-separated subset of fast, botocore")
    rows = []
    if "fast" in wanted:
        rows.append(Row("fast", args.streams))
        if args.botocore_streams != args.streams and "botocore" in wanted:
            rows.append(Row("fast", args.botocore_streams))  # the ratio at equal streams too
    if "botocore" in wanted:
        rows.append(Row("botocore", args.botocore_streams))
    schedule = Schedule(args.first_token_ms, args.gap_ms, args.tokens)
    floor = None if args.no_floor else Floor(args.streams)

    env = loadgen_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    started = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    try:
        server, url = start_server(schedule, env)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    settings = Settings(args.duration, args.executor, schedule, url, server.pid)
    try:
        with tempfile.TemporaryDirectory(prefix="loadgen-sbench-") as tmp:
            measure(rows, settings, args.repeats, Path(tmp), env, floor)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop(server)

    info = machine()
    info["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    loop = (
        "open loop (constant-arrival-rate, streams / stream length per second)"
        if args.executor == "open"
        else "closed loop (constant-concurrency)"
    )
    header = (
        f"{started:%Y-%m-%d %H:%M} UTC; {info['nproc']} CPUs ({info['cpu']}); Python "
        f"{info['python']}; loadgen 1 worker, {loop}, {args.duration} s per run, "
        f"{args.repeats} repeats interleaved; server: first token {schedule.first_token_ms:g} "
        f"ms after the request, then every {schedule.gap_ms:g} ms, {schedule.tokens} tokens; "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    found = notes(rows, settings)
    if floor is not None:
        found.extend(f"floor: {failure}" for failure in floor.failures)
    if load_before > 0.5:
        found.append(f"the machine was busy before the run (load average {load_before:.2f})")
    print(header + "\n")
    print(table(rows, floor) + "\n")
    print("\n".join(verdicts(rows, floor)))
    if found:
        print("\n" + "\n".join(f"- {note}" for note in found))
    if args.json:
        report = {
            "date": started.isoformat(),
            "command": " ".join(sys.argv),
            "machine": info,
            "settings": {
                "duration_s": args.duration,
                "executor": args.executor,
                "repeats": args.repeats,
                "schedule": asdict(schedule),
            },
            "rows": [
                {
                    "transport": row.transport,
                    "streams": row.streams,
                    "median_events_per_cpu_s": row.median("events_per_cpu_s"),
                    "median_ttft_added_p50_ms": row.median("ttft_added_p50_ms"),
                    "median_ttft_added_p99_ms": row.median("ttft_added_p99_ms"),
                    "runs": [
                        asdict(run) | {"events_per_cpu_s": run.events_per_cpu_s} for run in row.runs
                    ],
                    "failures": row.failures,
                }
                for row in rows
            ],
            "floor": None
            if floor is None
            else {
                "streams": floor.streams,
                "median_events_per_cpu_s": floor.median(),
                "runs": floor.runs,
                "failures": floor.failures,
            },
            "verdicts": verdicts(rows, floor),
            "notes": found,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if all(row.runs for row in rows) else 1


def measure(
    rows: list[Row],
    settings: Settings,
    repeats: int,
    tmp: Path,
    env: dict[str, str],
    floor: Floor | None = None,
) -> None:
    """Every transport (and the floor) once per repeat, in turn, so drift hits all alike."""
    for repeat in range(1, repeats + 1):
        if floor is not None:
            try:
                floor.runs.append(run_floor(settings, floor.streams, env))
                print(
                    f"[{repeat}/{repeats}] floor ({floor.streams:,} streams): "
                    f"{floor.runs[-1]:,.0f} events/CPU-s",
                    file=sys.stderr,
                )
            except BenchError as exc:
                floor.failures.append(f"run {repeat} failed: {exc}")
        for row in rows:
            scratch = tmp / f"{row.transport}-{row.streams}-{repeat}"
            scratch.mkdir()
            try:
                run = run_loadgen(settings, scratch, row.transport, row.streams, env)
            except BenchError as exc:
                row.failures.append(f"run {repeat} failed: {exc}")
                print(
                    f"[{repeat}/{repeats}] {row.transport} ({row.streams:,} streams): failed: {exc}",
                    file=sys.stderr,
                )
                continue
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            row.runs.append(run)
            print(
                f"[{repeat}/{repeats}] {row.transport} ({row.streams:,} streams): "
                f"{run.events_per_cpu_s:,.0f} events/CPU-s, client CPU {run.tester_cpu:.0%}, "
                f"TTFT added p50 {run.ttft_added_p50_ms:.2f} p99 {run.ttft_added_p99_ms:.2f} ms",
                file=sys.stderr,
            )


if __name__ == "__main__":
    sys.exit(main())
