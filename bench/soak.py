"""Soak: memory stays flat over a long run.

Runs `loadgen run` for N requests (default 10 million) against the nginx echo endpoint and
prints the loadgen process's RSS at each million requests, read from /proc while the run
goes on (requests so far from timeseries.csv, which is flushed every second). Passes when the
growth from the first to the last million is under 20 MB.

    .venv/bin/python bench/soak.py [--requests 10000000] [--connections 64]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import (  # noqa: E402 - a sibling script, not a package
    BODY,
    ENDPOINT,
    BenchError,
    free_port,
    loadgen_env,
    start_nginx,
    stop,
)

LOADGEN = Path(sys.executable).with_name("loadgen")
MILLION = 1_000_000
LIMIT_MB = 20.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise BenchError(f"no VmRSS for {pid}")


def requests_so_far(out: Path) -> int:
    files = list(out.glob("*/timeseries.csv"))
    if not files:
        return 0
    with files[0].open(newline="") as handle:
        return sum(int(row["requests"]) for row in csv.DictReader(handle))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10 * MILLION)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--every", type=int, default=MILLION, help="print RSS every this many requests"
    )
    args = parser.parse_args()

    import shutil
    import subprocess

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        print(
            "nginx is missing: run `make bench` (or bash bench/install.sh) first", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="loadgen-soak-") as scratch_name:
        scratch = Path(scratch_name)
        port = free_port()
        server = start_nginx(nginx, scratch, port)
        try:
            scenario = {
                "name": "soak",
                "endpoint_url": f"http://127.0.0.1:{port}",
                "endpoints": [{"name": ENDPOINT}],
                "request": {"body": BODY, "custom_attributes": "trace={trace_id}"},
                "load": {
                    "executor": "constant-concurrency",
                    "concurrency": args.connections,
                    "requests": args.requests,
                },
            }
            path = scratch / "soak.yaml"
            path.write_text(yaml.safe_dump(scenario))
            out = scratch / "out"
            run = subprocess.Popen(
                [str(LOADGEN), "run", str(path), "--quiet", "--out", str(out)], env=loadgen_env()
            )
            marks: list[tuple[int, float]] = []
            started = time.monotonic()
            next_mark = args.every
            while run.poll() is None:
                time.sleep(0.5)
                done = requests_so_far(out)
                if done >= next_mark and run.poll() is None:
                    rss = rss_mb(run.pid)
                    marks.append((done, rss))
                    rate = done / (time.monotonic() - started)
                    print(
                        f"{done:>12,} requests  RSS {rss:7.1f} MB  ({rate:,.0f} req/s)", flush=True
                    )
                    next_mark += args.every
            if run.returncode != 0:
                print(f"loadgen exited with {run.returncode}", file=sys.stderr)
                return 1
        finally:
            stop(server)
    if len(marks) < 2:
        print("too few marks to judge growth: use more --requests", file=sys.stderr)
        return 1
    growth = marks[-1][1] - marks[0][1]
    verdict = "ok" if growth < LIMIT_MB else "FAILED"
    print(
        f"RSS growth from {marks[0][0]:,} to {marks[-1][0]:,} requests: {growth:+.1f} MB ({verdict}, limit {LIMIT_MB:g} MB)"
    )
    return 0 if growth < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
