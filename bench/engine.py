"""The engine's requests per second against the mock endpoint, botocore vs fast transport.

No nginx needed: `loadgen mock` runs in its own process with zero latency, and each
transport runs `loadgen run` closed-loop against it, interleaved, median of the repeats.

    .venv/bin/python bench/engine.py [--duration 5] [--concurrency 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from loadgen.summary import RunSummary

BIN = Path(sys.executable).parent


def start_mock(scratch: Path) -> tuple[subprocess.Popen[str], str]:
    config = scratch / "mock.yaml"
    config.write_text(yaml.safe_dump({"mock": {"latency_ms": {"median": 0, "p99": 0}}}))
    process = subprocess.Popen(
        [str(BIN / "loadgen"), "mock", "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"mock did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1].strip()


def run_once(scratch: Path, url: str, transport: str, duration: float, concurrency: int) -> float:
    scenario = {
        "name": f"engine-{transport}",
        "endpoint_url": url,
        "transport": transport,
        "endpoints": [{"name": "bench"}],
        "request": {
            "body": '{"features": [0.1, 0.2, 0.3]}',
            "custom_attributes": "trace={trace_id}",
        },
        "load": {
            "executor": "constant-concurrency",
            "concurrency": concurrency,
            "duration": f"{duration}s",
        },
    }
    path = scratch / f"{transport}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = Path(tempfile.mkdtemp(dir=scratch))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDBENCH", AWS_SECRET_ACCESS_KEY="bench")
    subprocess.run(
        [str(BIN / "loadgen"), "run", str(path), "--quiet", "--out", str(out)],
        check=True,
        env=env,
        timeout=duration + 60,
    )
    (folder,) = out.iterdir()
    summary = RunSummary.load(folder / "summary.json")
    total = summary.total
    if total.correlation.matched != total.requests:
        raise SystemExit(
            f"{transport}: {total.requests - total.correlation.matched} echoes not matched"
        )
    return total.requests / summary.duration_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"botocore": [], "fast": []}
    with tempfile.TemporaryDirectory(prefix="loadgen-engine-") as name:
        scratch = Path(name)
        mock, url = start_mock(scratch)
        try:
            for _ in range(args.repeats):
                for transport in rates:
                    rates[transport].append(
                        run_once(scratch, url, transport, args.duration, args.concurrency)
                    )
        finally:
            mock.terminate()
            mock.wait(timeout=10)
    reference = statistics.median(rates["botocore"])
    print(
        f"engine against the mock endpoint, {args.concurrency} callers, {args.duration:g} s, median of {args.repeats}"
    )
    print("| transport | req/s median | runs | ratio to botocore |")
    print("|---|---:|---|---:|")
    for transport, values in rates.items():
        median = statistics.median(values)
        runs = " / ".join(f"{value:,.0f}" for value in values)
        print(f"| {transport} | {median:,.0f} | {runs} | {median / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
