"""Small purpose-built HTTP servers on 127.0.0.1 that misbehave in known ways."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from hdrh.log import HistogramLogReader

from loadgen import api
from loadgen.histograms import new_histogram
from loadgen.results.writer import hlog_name
from loadgen.scenario import Scenario, scenario_from_dict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler` for POST /endpoints/{name}/invocations; yields the base URL."""
    app = web.Application()
    app.router.add_post("/endpoints/{name}/invocations", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def echo_response(request: web.Request, echo: str | None = None) -> web.Response:
    attributes = request.headers.get(api.H_CUSTOM_ATTRIBUTES, "") if echo is None else echo
    headers = {api.H_INVOKED_VARIANT: "AllTraffic"}
    if attributes:
        headers[api.H_CUSTOM_ATTRIBUTES] = attributes
    return web.Response(body=b'{"ok": true}', content_type="application/json", headers=headers)


class Counter:
    """Counts requests as the server sees them, in arrival order."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = asyncio.Lock()

    def next(self) -> int:
        self.count += 1
        return self.count


def scenario(url: str, transport: str = "fast", **load: Any) -> Scenario:
    """A one-endpoint scenario against `url`; `load` overrides the load section."""
    defaults: dict[str, Any] = {"executor": "constant-arrival-rate", "timeout": "5s"}
    if load.get("executor", "constant-arrival-rate") == "constant-arrival-rate":
        defaults["rate"] = 100
    if "duration" not in load:
        defaults["requests"] = 10
    raw: dict[str, Any] = {
        "name": "test",
        "region": "us-east-1",  # as resolved by the runner: RunContext users get it as is
        "endpoint_url": url,
        "transport": transport,
        "endpoints": [{"name": "ep"}],
        "request": {"body": '{"x": 1}', "custom_attributes": "trace={trace_id}"},
        "load": defaults | load,
    }
    return scenario_from_dict(raw)


@contextmanager
def mock_process(tmp_path: Path, **mock: Any) -> Iterator[str]:
    """`loadgen mock` in its own process (so it does not share the tester's CPU); yields its URL."""
    config = tmp_path / "mock.yaml"
    config.write_text(yaml.safe_dump({"mock": {"latency_ms": {"median": 0, "p99": 0}} | mock}))
    process = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "mock", "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on" in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def hlog_total(folder: Path, label: str = "ep") -> int:
    """Requests recorded in an endpoint's .hlog, summed over its intervals."""
    reader = HistogramLogReader(str(folder / hlog_name(label)), new_histogram())
    total = new_histogram()
    while reader.add_next_interval_histogram(total) is not None:
        pass
    reader.close()
    return int(total.get_total_count())


def wait_until_running(out: Path, timeout: float = 30.0, settle: float = 1.5) -> None:
    """Wait for a run under `out` to write its first second, then let it run `settle` more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(out.glob("*/timeseries.csv")):
        time.sleep(0.1)
    time.sleep(settle)
