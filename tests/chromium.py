"""Render a local page in headless Chromium over the DevTools protocol.

Collects every console error, uncaught exception, error log entry and request that left the
machine, evaluates an expression in the page, and optionally takes a full-page screenshot.

    python -m tests.chromium results/<run>/report.html --screenshot /tmp/report.png
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "run scripts/install-chromium.sh (or set LOADGEN_SKIP_BROWSER=1 to skip)"
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    """$LOADGEN_CHROMIUM, else the first Chromium-like browser on PATH."""
    configured = os.environ.get("LOADGEN_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else shutil.which(configured)
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, error logs
    external_requests: list[str] = field(default_factory=list)
    value: Any = None  # what `evaluate` returned
    screenshot: Path | None = None


class DevTools:
    """One browser websocket; commands to the page go through a flat session."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, result: PageResult) -> None:
        self.socket = socket
        self.result = result
        self.session: str | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        future = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self.socket.send_str(json.dumps(message))
        return await future

    def event(self, method: str) -> asyncio.Event:
        return self._events.setdefault(method, asyncio.Event())

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future and not future.done():
                    if "error" in data:
                        future.set_exception(RuntimeError(f"DevTools: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                self._on_event(data["method"], data.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RuntimeError("DevTools connection closed"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        errors = self.result.errors
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(
                str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
            )
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text")
            errors.append(f"exception: {description}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(
                f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}"
            )
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                self.result.external_requests.append(url)
        self.event(method).set()

    async def close(self) -> None:
        await self.socket.close()
        await self._reader


async def _devtools_url(profile: Path, process: asyncio.subprocess.Process) -> str:
    """Chromium writes its port and browser path to DevToolsActivePort when it is ready."""
    marker = profile / "DevToolsActivePort"
    while not marker.exists() or len(marker.read_text().splitlines()) < 2:
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before listening")
        await asyncio.sleep(0.05)
    port, path = marker.read_text().splitlines()[:2]
    return f"ws://127.0.0.1:{port}{path}"


async def render(
    page: Path,
    evaluate: str | None = None,
    screenshot: Path | None = None,
    width: int = 1280,
    height: int = 900,
    timeout_s: float = 30.0,
    clip: tuple[int, int] | None = None,
) -> PageResult:
    """Load `page` (a local file), wait for its load event, and report what happened."""
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError(f"Chromium not found; {INSTALL_HINT}")
    result = PageResult()
    temporary = Path(tempfile.mkdtemp(prefix="loadgen-chromium-"))
    profile = temporary / "profile"
    profile.mkdir()
    try:
        with (temporary / "stderr.log").open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                async with asyncio.timeout(timeout_s):
                    await _drive(
                        process, profile, page, evaluate, screenshot, (width, height), clip, result
                    )
            finally:
                await _stop(process)
    finally:
        await _remove(temporary)
    return result


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Wait for the exit that Browser.close started; terminate, then kill, if it does not come."""
    for action in (None, process.terminate, process.kill):
        if process.returncode is not None:
            return
        if action is not None:
            action()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            continue


async def _remove(folder: Path) -> None:
    """Chromium's helper processes may still be writing into the profile for a moment."""
    for _ in range(20):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        await asyncio.sleep(0.1)


async def _drive(
    process: asyncio.subprocess.Process,
    profile: Path,
    page: Path,
    evaluate: str | None,
    screenshot: Path | None,
    size: tuple[int, int],
    clip: tuple[int, int] | None,
    result: PageResult,
) -> None:
    width, height = size
    url = await _devtools_url(profile, process)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, max_msg_size=0) as socket,
    ):
        tools = DevTools(socket, result)
        try:
            target = await tools.send("Target.createTarget", {"url": "about:blank"})
            attached = await tools.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            tools.session = attached["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                await tools.send(f"{domain}.enable")
            await tools.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            loaded = tools.event("Page.loadEventFired")
            loaded.clear()
            navigation = await tools.send("Page.navigate", {"url": page.resolve().as_uri()})
            if navigation.get("errorText"):
                result.errors.append(f"navigation: {navigation['errorText']}")
                return
            await loaded.wait()
            await asyncio.sleep(0.1)  # let late console messages arrive
            if evaluate is not None:
                answer = await tools.send(
                    "Runtime.evaluate",
                    {"expression": evaluate, "returnByValue": True, "awaitPromise": True},
                )
                if "exceptionDetails" in answer:
                    result.errors.append(f"evaluate: {answer['exceptionDetails'].get('text')}")
                result.value = answer.get("result", {}).get("value")
            if screenshot is not None:
                metrics = await tools.send("Page.getLayoutMetrics")
                full = metrics.get("cssContentSize") or metrics["contentSize"]
                await tools.send(
                    "Emulation.setDeviceMetricsOverride",
                    {
                        "width": width,
                        "height": max(height, int(full["height"])),
                        "deviceScaleFactor": 1,
                        "mobile": False,
                    },
                )
                options: dict[str, Any] = {"format": "png"}
                if clip is not None:  # (top, height) of the page, for a closer look
                    options["clip"] = {
                        "x": 0,
                        "y": clip[0],
                        "width": width,
                        "height": clip[1],
                        "scale": 1,
                    }
                shot = await tools.send("Page.captureScreenshot", options)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                result.screenshot = screenshot
        finally:
            try:  # a clean exit: helpers stop writing to the profile before we delete it
                await asyncio.wait_for(tools.send("Browser.close"), 2)
            except (RuntimeError, TimeoutError, aiohttp.ClientError):
                pass
            await tools.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--clip", help="TOP:HEIGHT of the page to capture, in CSS pixels")
    args = parser.parse_args()
    clip = tuple(int(part) for part in args.clip.split(":")) if args.clip else None
    result = asyncio.run(
        render(args.page, screenshot=args.screenshot, width=args.width, clip=clip)  # type: ignore[arg-type]
    )
    for line in result.errors + [f"external request: {u}" for u in result.external_requests]:
        print(line)
    if result.screenshot:
        print(f"screenshot: {result.screenshot}")
    return 1 if result.errors or result.external_requests else 0


if __name__ == "__main__":
    sys.exit(main())
