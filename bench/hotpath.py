"""req/s of one in-process `loadgen run` (fast transport, one worker) against a URL, with wrk
against the same URL in between, and optionally a cProfile of the loadgen runs.

The scenario is bench/throughput.py's: constant-concurrency, SigV4, correlation `contains`,
HdrHistogram recording, results written. Running it in-process (no CLI start-up) makes the
profile show only the hot path. Start a server first, e.g. nginx with bench/nginx-echo.conf.

    .venv/bin/python bench/hotpath.py --url http://127.0.0.1:PORT [--seconds 5]
        [--repeats 3] [--connections 64] [--no-wrk] [--profile N]

CPU µs per request (user + system time of the loadgen process over its requests) moves
less with a noisy neighbour than req/s does.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import BENCH, FAKE_CREDENTIALS, Settings, loadgen_scenario  # noqa: E402

from loadgen.engine.runner import RunOptions, run_scenario  # noqa: E402
from loadgen.scenario import scenario_from_dict  # noqa: E402


def run_loadgen(
    settings: Settings, out: Path, profile: cProfile.Profile | None
) -> tuple[float, float]:
    """(req/s, CPU µs per request of this process, user + system)."""
    scenario = scenario_from_dict(loadgen_scenario(settings, "fast", 1))
    if profile is not None:
        profile.enable()
    cpu = time.process_time()
    try:
        result = uvloop.run(run_scenario(scenario, RunOptions(out=out, quiet=True)))
    finally:
        cpu = time.process_time() - cpu
        if profile is not None:
            profile.disable()
    total = result.summary.total
    if total.correlation.matched != total.requests or total.error_count:
        print(f"  warning: {total.correlation} errors {total.errors}")
    return total.requests / result.summary.duration_s, cpu * 1e6 / total.requests


def run_wrk(settings: Settings) -> float:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{settings.connections}", f"-d{settings.duration_s}s"]
        + ["-s", str(BENCH / "wrk-echo.lua"), f"{settings.url}/endpoints/bench/invocations"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-wrk", action="store_true")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    args = parser.parse_args()
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull)
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    profile = cProfile.Profile() if args.profile else None
    wrk: list[float] = []
    fast: list[float] = []
    cpu_us: list[float] = []
    with tempfile.TemporaryDirectory(prefix="loadgen-hotpath-") as tmp:
        settings = Settings(args.seconds, args.connections, args.url, Path(tmp))
        for repeat in range(args.repeats):
            if not args.no_wrk:
                wrk.append(run_wrk(settings))
            out = Path(tmp) / str(repeat)
            rps, cpu = run_loadgen(settings, out, profile)
            fast.append(rps)
            cpu_us.append(cpu)
            shutil.rmtree(out, ignore_errors=True)
            shown = f"wrk {wrk[-1]:,.0f}  " if wrk else ""
            print(
                f"[{repeat + 1}/{args.repeats}] {shown}loadgen fast {rps:,.0f} req/s,"
                f" {cpu:.1f} CPU µs/request"
            )
    line = (
        f"median: loadgen fast {statistics.median(fast):,.0f} req/s,"
        f" {statistics.median(cpu_us):.1f} CPU µs/request"
    )
    if wrk:
        ratio = statistics.median(fast) / statistics.median(wrk)
        line += f", wrk {statistics.median(wrk):,.0f} req/s, ratio {ratio:.2f}"
    print(line)
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
