"""Worker processes: N engines, each with its own loop and pool, merged into one result.

A worker streams each closed second and, every tick, what its recorder holds since the last
tick (histograms encoded: they do not pickle). A worker that dies loses at most one tick.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.engine.core import TesterStats
from loadgen.engine.drive import Part, drive, share_of
from loadgen.errors import CannotRunError, LoadgenError
from loadgen.histograms import new_histogram
from loadgen.metrics import Interval, Recorder
from loadgen.scenario import Scenario

READY_TIMEOUT_S = 60.0  # spawning and importing a worker takes a second or two
START_MARGIN_NS = 100_000_000  # all workers start at one instant, this far after "go"

WireInterval = tuple[int, str, str, int, int, int]


def _to_wire(interval: Interval) -> WireInterval:
    return (
        interval.index,
        interval.label,
        interval.latency.encode().decode("ascii"),
        interval.requests,
        interval.errors,
        interval.mismatched,
    )


# --- the worker process ---------------------------------------------------------------------


def worker_entry(conn: Connection, payload: dict[str, Any]) -> None:
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop's own handlers are in place
    try:
        uvloop.run(_worker_main(conn, payload))
    finally:
        conn.close()


async def _worker_main(conn: Connection, payload: dict[str, Any]) -> None:
    from loadgen.engine.runner import open_transport

    scenario = Scenario.model_validate(payload["scenario"])
    part = Part(payload["run_id"], payload["share"], payload["shares"])
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    started: asyncio.Future[int] = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def on_message() -> None:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop
            kind, value = "stop", None
        if kind == "start" and not started.done():
            started.set_result(value)
        elif kind == "stop":
            stop.set()
            if not started.done():
                started.cancel()

    loop.add_reader(conn.fileno(), on_message)
    closed: list[Interval] = []
    async with AsyncExitStack() as stack:
        try:
            connections = share_of(scenario.load.max_connections, part.share, part.shares)
            transport = await open_transport(scenario, payload["endpoint_url"], stack, connections)
        except LoadgenError as exc:
            conn.send(("error", (type(exc).__name__, exc.problems)))
            return
        conn.send(("ready", None))
        try:
            start_ns = await started
        except asyncio.CancelledError:
            conn.send(("final", ([], {}, TesterStats().to_state())))
            return

        def on_tick(recorder: Recorder, elapsed_s: float) -> None:
            conn.send(("tick", ([_to_wire(i) for i in closed], recorder.take_state())))
            closed.clear()

        driven = await drive(scenario, transport, part, start_ns, closed.append, stop, on_tick)
        final = (
            [_to_wire(i) for i in closed],
            driven.recorder.take_state(),
            driven.tester.to_state(),
        )
        conn.send(("final", final))
    loop.remove_reader(conn.fileno())


# --- the parent -----------------------------------------------------------------------------


@dataclass
class Worker:
    share: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    finished: bool = False  # sent its final state
    gone: bool = False  # its pipe closed


@dataclass
class Merged:
    """The parent's view: one recorder and tester stats, fed by every worker."""

    recorder: Recorder
    tester: TesterStats = field(default_factory=TesterStats)
    failure: str | None = None  # why the run is incomplete because of a worker


class WorkerPool:
    def __init__(
        self, scenario: Scenario, endpoint_url: str | None, run_id: str, shares: int
    ) -> None:
        self.scenario = scenario
        self.shares = shares
        context = multiprocessing.get_context("spawn")
        payload = {
            "scenario": scenario.model_dump(mode="json"),
            "endpoint_url": endpoint_url,
            "run_id": run_id,
            "shares": shares,
        }
        self.workers: list[Worker] = []
        for share in range(shares):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=worker_entry,
                args=(child_end, payload | {"share": share}),
                name=f"loadgen-worker-{share}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self.workers.append(Worker(share, process, parent_end))
        self._pending: dict[int, tuple[int, dict[str, Interval]]] = {}
        self._next_index = 0

    async def wait_ready(self) -> None:
        """Every worker has its transport up; a worker's own error is raised here."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(worker.ready for worker in self.workers):
            for worker in self.workers:
                if worker.ready:
                    continue
                if worker.conn.poll():
                    kind, value = worker.conn.recv()
                    if kind == "error":
                        name, problems = value
                        raise (
                            CannotRunError(problems)
                            if name == "CannotRunError"
                            else LoadgenError(problems)
                        )
                    worker.ready = kind == "ready"
                elif not worker.process.is_alive():
                    raise CannotRunError(
                        f"worker {worker.share} exited while starting (code {worker.process.exitcode})"
                    )
            if time.monotonic() > deadline:
                raise CannotRunError(f"workers not ready after {READY_TIMEOUT_S:.0f}s")
            await asyncio.sleep(0.02)

    def start(self) -> int:
        start_ns = time.monotonic_ns() + START_MARGIN_NS
        for worker in self.workers:
            worker.conn.send(("start", start_ns))
        return start_ns

    def stop(self) -> None:
        for worker in self.workers:
            if not worker.gone:
                try:
                    worker.conn.send(("stop", None))
                except OSError:
                    pass

    async def collect(
        self,
        merged: Merged,
        sink: Callable[[Interval], None],
        stop: asyncio.Event,
        deadline_s: float,
    ) -> None:
        """Merge workers' messages until all have finished; a dead worker stops the run."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        for worker in self.workers:
            loop.add_reader(worker.conn.fileno(), self._on_readable, worker, merged, sink, changed)
        stop_sent = False
        try:
            while not all(worker.gone or worker.finished for worker in self.workers):
                if (stop.is_set() or merged.failure) and not stop_sent:
                    self.stop()
                    stop_sent = True
                    deadline_s = min(deadline_s, time.monotonic() + self.scenario.load.timeout + 10)
                if time.monotonic() > deadline_s:
                    merged.failure = merged.failure or "workers did not finish in time"
                    break
                changed.clear()
                waiter = loop.create_task(changed.wait())
                stopper = loop.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=0.25, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            for worker in self.workers:
                loop.remove_reader(worker.conn.fileno())
            self._flush_pending(sink, everything=True)

    def _on_readable(
        self,
        worker: Worker,
        merged: Merged,
        sink: Callable[[Interval], None],
        changed: asyncio.Event,
    ) -> None:
        try:
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
            worker.gone = True
            worker.process.join(timeout=5)
            if not worker.finished:
                merged.failure = merged.failure or (
                    f"worker {worker.share} crashed (exit code {worker.process.exitcode})"
                )
            changed.set()
            return
        if kind in ("tick", "final"):
            intervals, state = value[0], value[1]
            merged.recorder.merge_state(state)
            self._add_intervals(intervals, sink)
            if kind == "final":
                merged.tester.merge_state(value[2])
                worker.finished = True
        changed.set()

    def _add_intervals(self, wire: list[WireInterval], sink: Callable[[Interval], None]) -> None:
        for index, label, encoded, requests, errors, mismatched in wire:
            reported, by_label = self._pending.setdefault(index, (0, {}))
            interval = by_label.get(label)
            if interval is None:
                interval = by_label[label] = Interval(index, label, new_histogram())
            interval.latency.add(HdrHistogram.decode(encoded))
            interval.requests += requests
            interval.errors += errors
            interval.mismatched += mismatched
            self._pending[index] = (reported, by_label)
        for index in {item[0] for item in wire}:
            reported, by_label = self._pending[index]
            self._pending[index] = (reported + 1, by_label)
        self._flush_pending(sink)

    def _flush_pending(self, sink: Callable[[Interval], None], everything: bool = False) -> None:
        """Write seconds in order, each once every running worker has reported it."""
        running = sum(1 for worker in self.workers if not (worker.finished or worker.gone))
        while self._next_index in self._pending:
            reported, by_label = self._pending[self._next_index]
            if reported < running and not everything:
                return
            for interval in by_label.values():
                sink(interval)
            del self._pending[self._next_index]
            self._next_index += 1
        if everything:
            for index in sorted(self._pending):
                for interval in self._pending.pop(index)[1].values():
                    sink(interval)

    def close(self) -> None:
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.conn.close()
