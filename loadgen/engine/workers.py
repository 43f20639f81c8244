"""Worker processes: N engines, each with its own loop and pool, merged into one result.

A worker streams each closed second and, every tick, what its recorder holds since the last
tick (histograms encoded: they do not pickle). A worker that dies loses at most one tick.
Messages are the typed records below, pickled by multiprocessing's Connection.
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
from typing import NamedTuple

from hdrh.histogram import HdrHistogram

from loadgen.engine.context import RunContext
from loadgen.engine.core import TesterState, TesterStats
from loadgen.engine.drive import Reporting, drive
from loadgen.engine.transports import open_transport
from loadgen.errors import CannotRunError, LoadgenError
from loadgen.histograms import new_histogram
from loadgen.metrics import Interval, Recorder, RecorderState
from loadgen.summary import StopReason

READY_TIMEOUT_S = 60.0  # spawning and importing a worker takes a second or two
START_MARGIN_NS = 100_000_000  # all workers start at one instant, this far after "go"


# --- messages -------------------------------------------------------------------------------


class WireInterval(NamedTuple):
    """A closed second of one endpoint, its histogram encoded."""

    second: int
    label: str
    latency: str
    requests: int
    errors: int
    mismatched: int

    @classmethod
    def of(cls, interval: Interval) -> WireInterval:
        return cls(
            interval.index,
            interval.label,
            interval.latency.encode().decode("ascii"),
            interval.requests,
            interval.errors,
            interval.mismatched,
        )


@dataclass(frozen=True)
class Start:
    start_ns: int


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Ready:
    pass


@dataclass(frozen=True)
class Failed:
    """The worker could not start: the project's own error, to raise in the parent."""

    cannot_run: bool  # CannotRunError (exit 3), else a usage problem (exit 2)
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Tick:
    intervals: tuple[WireInterval, ...]
    state: RecorderState


@dataclass(frozen=True)
class Final(Tick):
    tester: TesterState


# --- the worker process ---------------------------------------------------------------------


def worker_entry(conn: Connection, ctx: RunContext) -> None:
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop's own handlers are in place
    try:
        uvloop.run(_worker_main(conn, ctx))
    finally:
        conn.close()


async def _worker_main(conn: Connection, ctx: RunContext) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    started: asyncio.Future[int] = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def on_message() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop
            message = Stop()
        if isinstance(message, Start) and not started.done():
            started.set_result(message.start_ns)
        elif isinstance(message, Stop):
            stop.set()
            if not started.done():
                started.cancel()

    loop.add_reader(conn.fileno(), on_message)
    closed: list[Interval] = []
    async with AsyncExitStack() as stack:
        try:
            transport = await open_transport(ctx.scenario, ctx.endpoint_url, ctx.connections, stack)
        except LoadgenError as exc:
            conn.send(Failed(isinstance(exc, CannotRunError), tuple(exc.problems)))
            return
        conn.send(Ready())
        try:
            start_ns = await started
        except asyncio.CancelledError:
            conn.send(Final((), {}, TesterStats().to_state()))
            return

        def take_intervals() -> tuple[WireInterval, ...]:
            wire = tuple(WireInterval.of(interval) for interval in closed)
            closed.clear()
            return wire

        def on_tick(recorder: Recorder, elapsed_s: float) -> None:
            conn.send(Tick(take_intervals(), recorder.take_state()))

        driven = await drive(ctx, transport, start_ns, stop, Reporting(closed.append, on_tick))
        conn.send(Final(take_intervals(), driven.recorder.take_state(), driven.tester.to_state()))
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


@dataclass(frozen=True)
class WorkerFailure:
    reason: StopReason
    detail: str


@dataclass
class Merged:
    """The parent's view: one recorder and tester stats, fed by every worker."""

    recorder: Recorder
    tester: TesterStats = field(default_factory=TesterStats)
    failure: WorkerFailure | None = None  # why the run is incomplete because of a worker

    def fail(self, reason: StopReason, detail: str) -> None:
        if self.failure is None:
            self.failure = WorkerFailure(reason, detail)


@dataclass
class _Second:
    """One second's intervals from the workers that have reported it so far."""

    reported: int = 0
    by_label: dict[str, Interval] = field(default_factory=dict)


class WorkerPool:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        context = multiprocessing.get_context("spawn")
        self.workers: list[Worker] = []
        for share in range(ctx.shares):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=worker_entry,
                args=(child_end, ctx.part(share, ctx.shares)),
                name=f"loadgen-worker-{share}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self.workers.append(Worker(share, process, parent_end))
        self._pending: dict[int, _Second] = {}
        self._next_index = 0

    async def wait_ready(self) -> None:
        """Every worker has its transport up; a worker's own error is raised here."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(worker.ready for worker in self.workers):
            for worker in self.workers:
                if worker.ready:
                    continue
                if worker.conn.poll():
                    message = worker.conn.recv()
                    if isinstance(message, Failed):
                        error = CannotRunError if message.cannot_run else LoadgenError
                        raise error(list(message.problems))
                    worker.ready = isinstance(message, Ready)
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
            worker.conn.send(Start(start_ns))
        return start_ns

    def stop(self) -> None:
        for worker in self.workers:
            if not worker.gone:
                try:
                    worker.conn.send(Stop())
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
                    deadline_s = min(deadline_s, self.ctx.finish_deadline(time.monotonic()))
                if time.monotonic() > deadline_s:
                    merged.fail(StopReason.WORKERS_LATE, "no final report by the deadline")
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
            message = worker.conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
            worker.gone = True
            worker.process.join(timeout=5)
            if not worker.finished:
                merged.fail(
                    StopReason.WORKER_CRASHED,
                    f"worker {worker.share}, exit code {worker.process.exitcode}",
                )
            changed.set()
            return
        if isinstance(message, Tick):
            merged.recorder.merge_state(message.state)
            self._add_intervals(message.intervals, sink)
            if isinstance(message, Final):
                merged.tester.merge_state(message.tester)
                worker.finished = True
        changed.set()

    def _add_intervals(
        self, wire: tuple[WireInterval, ...], sink: Callable[[Interval], None]
    ) -> None:
        for item in wire:
            pending = self._pending.setdefault(item.second, _Second())
            interval = pending.by_label.get(item.label)
            if interval is None:
                interval = pending.by_label[item.label] = Interval(
                    item.second, item.label, new_histogram()
                )
            interval.latency.add(HdrHistogram.decode(item.latency))
            interval.requests += item.requests
            interval.errors += item.errors
            interval.mismatched += item.mismatched
        for second in {item.second for item in wire}:
            self._pending[second].reported += 1
        self._flush_pending(sink)

    def _flush_pending(self, sink: Callable[[Interval], None], everything: bool = False) -> None:
        """Write seconds in order, each once every running worker has reported it."""
        running = sum(1 for worker in self.workers if not (worker.finished or worker.gone))
        while self._next_index in self._pending:
            second = self._pending[self._next_index]
            if second.reported < running and not everything:
                return
            for interval in second.by_label.values():
                sink(interval)
            del self._pending[self._next_index]
            self._next_index += 1
        if everything:
            for index in sorted(self._pending):
                for interval in self._pending.pop(index).by_label.values():
                    sink(interval)

    def close(self) -> None:
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.conn.close()
