"""Requests per second: loadgen against wrk and locust, same machine, same nginx, same run.

nginx (1 worker, bench/nginx-echo.conf) answers POST /endpoints/<name>/invocations like
InvokeEndpoint and echoes X-Amzn-SageMaker-Custom-Attributes. Each client then runs for the
same duration at the same connection count, one after another, interleaved over the repeats
(wrk, loadgen fast, loadgen botocore, locust, wrk, ...) so drift hits all alike. Prints a
markdown table of the median req/s per client and its ratio to wrk's median.

    .venv/bin/python bench/throughput.py [--duration 10] [--connections 64] [--repeats 3]
                                         [--json PATH] [--clients wrk,fast,...]

Needs nginx, wrk and locust: `make bench` installs them (bench/install.sh).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loadgen.summary import RunSummary

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv's bin: loadgen and locust live here
ENDPOINT = "bench"
PATH = f"/endpoints/{ENDPOINT}/invocations"
BODY = '{"features": [0.1, 0.2, 0.3]}'
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "bench"}
STARTUP_GRACE_S = 90  # on top of the duration: imports, connecting, draining, writing results


class BenchError(Exception):
    """One client run could not be measured; the message says why, in one line."""


@dataclass(frozen=True)
class Measurement:
    rps: float
    note: str | None = None  # e.g. a correlation or error count worth reporting
    echoes_matched: int | None = None  # loadgen: every request's echo matched its trace ID


@dataclass(frozen=True)
class Settings:
    duration_s: int
    connections: int
    url: str
    tmp: Path
    # the latest closed-loop rate of loadgen fast (1 worker): where an open-loop search starts
    closed_rps: list[float] = field(default_factory=list)
    # per repeat with an open row: the machine's slowest 1% of 100 ms slices, over its median
    speed_floors: list[float] = field(default_factory=list)


@dataclass
class Row:
    key: str
    label: str
    run: Callable[[Settings, Path], Measurement]
    results: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    matched_runs: int = 0
    matched_echoes: int = 0

    @property
    def median(self) -> float | None:
        return statistics.median(self.results) if self.results else None


# --- nginx ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nginx(nginx: str, prefix: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx in the foreground (daemon off), own session so a Ctrl-C reaches us first."""
    conf = (BENCH / "nginx-echo.conf").read_text(encoding="utf-8")
    conf = conf.replace("{port}", str(port)).replace("{prefix}", str(prefix))
    (prefix / "logs").mkdir(exist_ok=True)  # nginx checks its compiled-in log path early
    conf_path = prefix / "nginx.conf"
    conf_path.write_text(conf, encoding="utf-8")
    process = subprocess.Popen(
        [nginx, "-c", str(conf_path), "-p", str(prefix), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise BenchError(f"nginx exited with {process.returncode}: {error.strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise BenchError(f"nginx did not listen on 127.0.0.1:{port} within 10 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # nginx: fast shutdown
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


# --- clients -------------------------------------------------------------------------------


def run_group(
    command: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Exit code, stdout, stderr. The command runs in its own process group, killed whole
    (loadgen's worker processes included) on a timeout or an interrupt."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException as exc:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise BenchError(f"{Path(command[0]).name} timed out after {timeout:.0f} s") from None
        raise
    return process.returncode, stdout, stderr


def run_tool(command: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """stdout of a finished command; BenchError on a timeout or a non-zero exit."""
    returncode, stdout, stderr = run_group(command, timeout, env)
    if returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        raise BenchError(f"{Path(command[0]).name} exited {returncode}: {' | '.join(tail)}")
    return stdout


def run_wrk(settings: Settings, scratch: Path) -> Measurement:
    output = run_tool(
        [
            "wrk",
            "-t1",
            f"-c{settings.connections}",
            f"-d{settings.duration_s}s",
            "-s",
            str(BENCH / "wrk-echo.lua"),
            settings.url + PATH,
        ],
        timeout=settings.duration_s + 30,
    )
    found = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not found:
        raise BenchError(f"no Requests/sec in wrk's output: {output.strip()[-200:]}")
    problems = re.findall(r"^\s*(Non-2xx or 3xx responses: \d+|Socket errors: .*)$", output, re.M)
    return Measurement(float(found.group(1)), "; ".join(problems) or None)


def loadgen_scenario(
    settings: Settings,
    transport: str,
    workers: int | str,
    rate: float | None = None,
    busy_poll: bool = False,
) -> dict[str, object]:
    """The closed loop on `settings.connections` connections, or with `rate` the open loop
    with that many requests in flight at most."""
    return {
        "name": f"bench-{transport}",
        "region": "us-east-1",
        "endpoint_url": settings.url,
        "transport": transport,
        "workers": workers,
        "busy_poll": busy_poll,
        "endpoints": [{"name": ENDPOINT}],
        "request": {
            "content_type": "application/json",
            "accept": "application/json",
            "body": BODY,
            "custom_attributes": "trace={trace_id}",
        },
        "correlation": "contains",
        "load": {
            "executor": "constant-concurrency",
            "concurrency": settings.connections,
            "duration": f"{settings.duration_s}s",
        }
        if rate is None
        else {
            "executor": "constant-arrival-rate",
            "rate": rate,
            "max_in_flight": settings.connections,
            "duration": f"{settings.duration_s}s",
        },
    }


def loadgen_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull)
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def run_loadgen(
    settings: Settings,
    scratch: Path,
    transport: str,
    workers: int | str = 1,
    rate: float | None = None,
    busy_poll: bool = False,
) -> tuple[Measurement, RunSummary]:
    """One `loadgen run` (open loop at `rate` if given); the measurement and the summary."""
    scenario = scratch / "scenario.yaml"
    # JSON is YAML: no quoting questions about the body or the {trace_id} template.
    scenario.write_text(
        json.dumps(loadgen_scenario(settings, transport, workers, rate, busy_poll), indent=2)
    )
    out = scratch / "results"
    shutil.rmtree(out, ignore_errors=True)
    run_tool(
        [str(BIN / "loadgen"), "run", str(scenario), "--quiet", "--out", str(out)],
        timeout=settings.duration_s + STARTUP_GRACE_S,
        env=loadgen_env(),
    )
    folders = [p for p in out.iterdir() if p.is_dir()] if out.is_dir() else []
    if len(folders) != 1:
        raise BenchError(f"expected one run folder under {out}, found {len(folders)}")
    summary = RunSummary.load(folders[0] / "summary.json")
    total = summary.total
    requests, duration_s = total.requests, summary.duration_s
    if not requests or not duration_s:
        raise BenchError(f"no requests completed (duration_s {duration_s})")
    problems = []
    matched = total.correlation.matched
    if matched != requests:
        problems.append(f"correlation matched {matched} of {requests}")
    if total.error_count:
        problems.append(f"{total.error_count} errors {total.errors}")
    note = "; ".join(problems) or None
    return Measurement(requests / duration_s, note, None if problems else matched), summary


def run_locust(settings: Settings, scratch: Path) -> Measurement:
    prefix = scratch / "locust"
    command = [
        str(BIN / "locust"),
        "-f",
        str(BENCH / "locustfile.py"),
        "--headless",
        "-u",
        str(settings.connections),
        "-r",
        str(settings.connections),
        "-t",
        f"{settings.duration_s}s",
        "--host",
        settings.url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    # locust exits 1 when any request failed: the CSV still tells.
    run_group(command, timeout=settings.duration_s + STARTUP_GRACE_S)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        raise BenchError("locust wrote no _stats.csv")
    with stats.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    if not rows:
        raise BenchError("no Aggregated row in locust's _stats.csv")
    failures = int(rows[0]["Failure Count"])
    return Measurement(float(rows[0]["Requests/s"]), f"{failures} failures" if failures else None)


def descendants(pid: int) -> set[int]:
    """Processes below `pid`, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def probe_workers(settings: Settings, scratch: Path) -> str | None:
    """None when `workers: 2` really runs worker processes, else why this row is skipped."""
    scenario = scratch / "probe.yaml"
    probe = Settings(2, settings.connections, settings.url, settings.tmp)
    scenario.write_text(json.dumps(loadgen_scenario(probe, "fast", 2)))
    command = [str(BIN / "loadgen"), "run", str(scenario), "--quiet", "--out", str(scratch)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=loadgen_env(),
        start_new_session=True,
    )
    most = 0
    try:
        deadline = time.monotonic() + 2 + STARTUP_GRACE_S
        while process.poll() is None and time.monotonic() < deadline:
            most = max(most, len(descendants(process.pid)))
            time.sleep(0.1)
        if process.poll() is None:
            return "`workers: 2` probe timed out"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=10)
    if process.returncode != 0:
        lines = stderr.strip().splitlines()
        return f"`loadgen run --workers 2` fails: {lines[-1] if lines else process.returncode}"
    if most == 0:
        return "`workers: 2` is accepted but loadgen ran in one process (no worker processes)"
    return None


def fast(settings: Settings, scratch: Path) -> Measurement:
    measurement = run_loadgen(settings, scratch, "fast")[0]
    settings.closed_rps.append(measurement.rps)
    return measurement


# An open-loop rate is held when the tester keeps its schedule at it: the achieved rate
# within 1% of the target and under 1% of starts late (more than 1 ms after their time).
HELD_ACHIEVED = 0.99
HELD_LATE = 0.01
SEARCH_STEPS = 5
PROBE_S = 3


STEADY_S = 5.0
SLICE_S = 0.1


def speed_floor(seconds: float = STEADY_S) -> float:
    """How steady this machine is: the same pure-Python work counted in SLICE_S slices for
    `seconds`, and the 1st-percentile slice over the median one. A shared VM's speed swings
    from slice to slice; an open loop must keep its schedule through the slow ones (few late
    starts), while a closed loop's rate is its mean speed, so this roughly bounds the
    open/closed ratio the machine allows."""
    counts = []
    end = time.perf_counter() + seconds
    while (started := time.perf_counter()) < end:
        done = 0
        while time.perf_counter() - started < SLICE_S:
            sum(i * i % 7 for i in range(500))
            done += 1
        counts.append(done)
    counts.sort()
    return counts[len(counts) // 100] / statistics.median(counts)


def open_loop_ceiling(
    settings: Settings, scratch: Path, workers: int | str, busy_poll: bool = False
) -> Measurement:
    """The highest target rate the open loop holds on the same connections: a bisection
    (geometric, SEARCH_STEPS probes of PROBE_S) between 0.5x and 1.1x loadgen's own
    closed-loop rate of this repeat."""
    if not settings.closed_rps:
        raise BenchError("needs the loadgen fast (closed loop) row first")
    closed = settings.closed_rps[-1]
    probe = Settings(PROBE_S, settings.connections, settings.url, settings.tmp)
    held, failed = 0.0, 1.1 * closed
    rate = 0.5 * closed
    probes = []
    for _ in range(SEARCH_STEPS):
        _, summary = run_loadgen(probe, scratch, "fast", workers, round(rate), busy_poll)
        total = summary.total
        late = total.late_starts / total.requests if total.requests else 1.0
        ok = (
            summary.achieved_rate_rps >= HELD_ACHIEVED * rate
            and late < HELD_LATE
            and not total.error_count
        )
        probes.append(
            f"{rate:,.0f}: {summary.achieved_rate_rps:,.0f} achieved, {late:.1%} late, "
            f"start delay p99 {summary.start_delay_ms.p99:.2f} ms, all {settings.connections} "
            f"in flight {summary.max_in_flight_full_s:.1f} s, tester CPU "
            f"{summary.tester_cpu:.2f} {'held' if ok else 'missed'}"
        )
        if ok:
            held = rate
        else:
            failed = rate
        rate = math.sqrt(held * failed) if held else rate / 2
    note = f"search (target: outcome): {'; '.join(probes)}"
    if not held:
        raise BenchError(f"no rate held; {note}")
    return Measurement(held, f"{held / closed:.2f}x loadgen's closed loop ({closed:,.0f}); {note}")


def fast_open(settings: Settings, scratch: Path) -> Measurement:
    return open_loop_ceiling(settings, scratch, 1)


def fast_open_busy(settings: Settings, scratch: Path) -> Measurement:
    return open_loop_ceiling(settings, scratch, 1, busy_poll=True)


def fast_open_workers(settings: Settings, scratch: Path) -> Measurement:
    return open_loop_ceiling(settings, scratch, "auto")


def botocore(settings: Settings, scratch: Path) -> Measurement:
    return run_loadgen(settings, scratch, "botocore")[0]


def fast_workers(settings: Settings, scratch: Path) -> Measurement:
    return run_loadgen(settings, scratch, "fast", "auto")[0]


def rows() -> list[Row]:
    return [
        Row("wrk", "wrk (1 thread)", run_wrk),
        Row("fast", "loadgen fast (1 worker)", fast),
        Row("botocore", "loadgen botocore (1 worker)", botocore),
        Row("locust", "locust FastHttpUser (1 process)", run_locust),
        Row("fast-workers", "loadgen fast (workers auto)", fast_workers),
        Row("open", "loadgen fast open loop (1 worker), highest rate held", fast_open),
        Row(
            "open-busy",
            "loadgen fast open loop (1 worker, busy_poll), highest rate held",
            fast_open_busy,
        ),
        Row(
            "open-workers",
            "loadgen fast open loop (workers auto), highest rate held",
            fast_open_workers,
        ),
    ]


# --- report --------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def versions(nginx: str) -> dict[str, str]:
    def first_line(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]

    return {
        "nginx": first_line([nginx, "-v"]).removeprefix("nginx version: nginx/"),
        "wrk": first_line(["wrk", "-v"]).split(" [")[0].removeprefix("wrk "),
        "locust": first_line([str(BIN / "locust"), "--version"])
        .split(" from ")[0]
        .removeprefix("locust "),
    }


def table(selected: list[Row]) -> str:
    wrk = next((row.median for row in selected if row.key == "wrk"), None)
    lines = ["| client | req/s median | runs | ratio to wrk |", "|---|---:|---|---:|"]
    for row in selected:
        median = row.median
        runs = " / ".join(f"{value:,.0f}" for value in row.results) or "failed"
        ratio = f"{median / wrk:.2f}" if median is not None and wrk else "-"
        shown = f"{median:,.0f}" if median is not None else "-"
        lines.append(f"| {row.label} | {shown} | {runs} | {ratio} |")
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def end_on_signals() -> None:
    """Ctrl-C and kill/timeout both end a benchmark through the same path (KeyboardInterrupt),
    so the servers it started are stopped."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def main() -> int:
    end_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per client run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--clients",
        default="wrk,fast,botocore,locust,fast-workers,open,open-busy,open-workers",
        help="comma-separated subset of: wrk, fast, botocore, locust, fast-workers, "
        "open, open-busy, open-workers (the open rows need fast)",
    )
    args = parser.parse_args()
    if min(args.duration, args.connections, args.repeats) <= 0:
        parser.error("--duration, --connections and --repeats must be > 0")

    wanted = args.clients.split(",")
    selected = [row for row in rows() if row.key in wanted]
    unknown = set(wanted) - {row.key for row in rows()}
    if unknown:
        parser.error(f"--clients: unknown {', '.join(sorted(unknown))}")

    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    needed = {"nginx": nginx, "wrk": shutil.which("wrk")}
    needed["locust"] = str(BIN / "locust") if (BIN / "locust").exists() else None
    needed["loadgen"] = str(BIN / "loadgen") if (BIN / "loadgen").exists() else None
    missing = [name for name, path in needed.items() if path is None]
    if missing:
        print(
            f"error: not found: {', '.join(missing)}. `make bench` installs nginx, wrk "
            "and locust (bench/install.sh); loadgen comes with `make setup`",
            file=sys.stderr,
        )
        return 2
    assert nginx is not None

    started = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="loadgen-bench-") as tmp:
        port = free_port()
        settings = Settings(args.duration, args.connections, f"http://127.0.0.1:{port}", Path(tmp))
        try:
            server = start_nginx(nginx, Path(tmp), port)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        try:
            if any(row.key == "fast-workers" for row in selected):
                probe_dir = Path(tmp) / "probe"
                probe_dir.mkdir()
                skipped = probe_workers(settings, probe_dir)
                if skipped:
                    notes.append(f"loadgen fast (workers auto) skipped: {skipped}.")
                    selected = [row for row in selected if row.key != "fast-workers"]
            measure(selected, settings, args.repeats)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            stop(server)

    for row in selected:
        notes.extend(f"{row.label}: {note}" for note in dict.fromkeys(row.notes))
        if row.matched_runs:
            notes.append(
                f"{row.label}: correlation matched == requests, no errors, in "
                f"{row.matched_runs} of {len(row.results)} runs "
                f"({row.matched_echoes:,} echoes checked)."
            )
    info = machine()
    info["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    tools = versions(nginx)
    header = (
        f"{started:%Y-%m-%d %H:%M} UTC; {info['nproc']} CPUs ({info['cpu']}); "
        f"{args.connections} connections, {args.duration} s per run, {args.repeats} repeats "
        f"interleaved; nginx 1 worker on 127.0.0.1; "
        + ", ".join(f"{k} {v}" for k, v in tools.items())
        + f", Python {info['python']}; 1-min load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    if settings.speed_floors:
        floors = " / ".join(f"{floor:.2f}" for floor in settings.speed_floors)
        notes.append(
            f"Machine speed floor (the slowest 1% of {SLICE_S * 1000:.0f} ms slices of fixed "
            f"work, over the median slice; before each repeat's open rows): {floors}. An open "
            "loop holds its rate only through the slow slices, so its ratio to the closed "
            "loop cannot be much above this here."
        )
    if load_before > 0.5:
        notes.append(
            f"The machine was busy before the run (load average {load_before:.2f}): "
            "other work skews these numbers."
        )
    print(header + "\n")
    print(table(selected))
    if notes:
        print("\n" + "\n".join(f"- {note}" for note in notes))
    if args.json:
        wrk = next((row.median for row in selected if row.key == "wrk"), None)
        report = {
            "date": started.isoformat(),
            "machine": info,
            "versions": tools,
            "settings": {
                "duration_s": args.duration,
                "connections": args.connections,
                "repeats": args.repeats,
            },
            "rows": [
                {
                    "client": row.key,
                    "label": row.label,
                    "runs_rps": row.results,
                    "median_rps": row.median,
                    "ratio_to_wrk": row.median / wrk if row.median is not None and wrk else None,
                }
                for row in selected
            ],
            "speed_floors": settings.speed_floors,
            "notes": notes,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if all(row.results for row in selected) else 1


def measure(selected: list[Row], settings: Settings, repeats: int) -> None:
    """Every client once per repeat, in order, so drift hits all alike."""
    for repeat in range(1, repeats + 1):
        for row in selected:
            if row.key.startswith("open") and len(settings.speed_floors) < repeat:
                settings.speed_floors.append(speed_floor())
                print(
                    f"[{repeat}/{repeats}] machine speed floor: {settings.speed_floors[-1]:.2f}",
                    file=sys.stderr,
                )
            scratch = settings.tmp / f"{row.key}-{repeat}"
            scratch.mkdir()
            try:
                result = row.run(settings, scratch)
            except BenchError as exc:
                row.notes.append(f"run {repeat} failed: {exc}")
                print(f"[{repeat}/{repeats}] {row.label}: failed: {exc}", file=sys.stderr)
                continue
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            row.results.append(result.rps)
            if result.echoes_matched is not None:
                row.matched_runs += 1
                row.matched_echoes += result.echoes_matched
            if result.note:
                row.notes.append(result.note)
            print(f"[{repeat}/{repeats}] {row.label}: {result.rps:,.0f} req/s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
