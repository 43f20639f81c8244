"""Worker processes: N engines, each with its own loop and pool, merged into one result.

A worker streams each closed second and, every tick, what its recorder holds since the last
tick (histograms encoded: they do not pickle). A worker that dies loses at most one tick.
Messages are the typed records below, sent over a Channel (engine/channel.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import NamedTuple

from hdrh.histogram import HdrHistogram

from loadgen.engine.channel import Channel, ChannelClosed
from loadgen.engine.context import START_LEAD_NS, RunContext
from loadgen.engine.core import Progress, TesterState, TesterStats
from loadgen.engine.drive import Reporting, drive
from loadgen.engine.transports import open_transport
from loadgen.errors import CannotRunError, LoadgenError
from loadgen.histograms import new_histogram
from loadgen.metrics import Interval, Recorder, RecorderState
from loadgen.summary import StopReason

READY_TIMEOUT_S = 60.0  # spawning and importing a worker takes a second or two
JOIN_TIMEOUT_S = 5.0  # a worker told to stop has this long to exit before it is killed


# --- messages -------------------------------------------------------------------------------


class WireInterval(NamedTuple):
    """A closed second of one endpoint, its histogram encoded."""

    second: int
    label: str
    latency: str
    requests: int
    errors: int
    mismatched: int
    late: int
    start_delay_max_us: int
    error_codes: tuple[tuple[str, int], ...]
    output_tokens: int
    ttft: str | None  # encoded; None when no stream ended in this second
    itl: str | None  # likewise

    @classmethod
    def of(cls, interval: Interval) -> WireInterval:
        return cls(
            interval.index,
            interval.label,
            interval.latency.encode().decode("ascii"),
            interval.requests,
            interval.errors,
            interval.mismatched,
            interval.late,
            interval.start_delay_max_us,
            tuple(interval.error_codes.items()),
            interval.output_tokens,
            _encoded(interval.ttft),
            _encoded(interval.itl),
        )


def _encoded(histogram: HdrHistogram) -> str | None:
    """An interval's stream histogram on the wire: most seconds of most runs have none."""
    return histogram.encode().decode("ascii") if histogram.get_total_count() else None


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
    progress: Progress  # for the live status: sent and in flight as of this tick


@dataclass(frozen=True)
class Final(Tick):
    tester: TesterState


# --- the worker process ---------------------------------------------------------------------


def worker_entry(sock: socket.socket, ctx: RunContext) -> None:
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop's own handlers are in place
    try:
        uvloop.run(_worker_main(sock, ctx))
    finally:
        sock.close()


async def _worker_main(sock: socket.socket, ctx: RunContext) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    started: asyncio.Future[int] = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    channel = await Channel.open(sock)

    async def listen() -> None:
        """Start and Stop from the runner; its end (EOF) means stop too."""
        try:
            while True:
                message = await channel.receive()
                if isinstance(message, Start) and not started.done():
                    started.set_result(message.start_ns)
                elif isinstance(message, Stop):
                    break
        except ChannelClosed:
            pass
        stop.set()
        if not started.done():
            started.cancel()

    listener = loop.create_task(listen())
    closed: list[Interval] = []
    try:
        async with AsyncExitStack() as stack:
            try:
                transport = await open_transport(
                    ctx.scenario, ctx.endpoint_url, ctx.connections, stack, ctx.warm_connections
                )
            except LoadgenError as exc:
                channel.send(Failed(isinstance(exc, CannotRunError), tuple(exc.problems)))
                return
            channel.send(Ready())
            try:
                start_ns = await started
            except asyncio.CancelledError:
                channel.send(Final((), {}, Progress(0, 0, 0.0), TesterStats().to_state()))
                return

            def take_intervals() -> tuple[WireInterval, ...]:
                wire = tuple(WireInterval.of(interval) for interval in closed)
                closed.clear()
                return wire

            def on_tick(recorder: Recorder, progress: Progress) -> None:
                channel.send(Tick(take_intervals(), recorder.take_state(), progress))

            reporting = Reporting(closed.append, on_tick)
            driven = await drive(ctx, transport, start_ns, stop, reporting)
            tester = driven.tester
            final = Final(
                take_intervals(),
                driven.recorder.take_state(),
                Progress(tester.sent, 0, driven.elapsed_s),
                tester.to_state(),
            )
            channel.send(final)
    finally:
        listener.cancel()
        await channel.flush()
        await channel.close()


# --- the parent -----------------------------------------------------------------------------


@dataclass
class Worker:
    share: int
    process: multiprocessing.process.BaseProcess
    sock: socket.socket  # the runner's end, until the channel is opened on it
    channel: Channel | None = None
    finished: bool = False  # sent its final state


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

    reported_by: set[int] = field(default_factory=set)  # worker shares
    by_label: dict[str, Interval] = field(default_factory=dict)


class WorkerPool:
    def __init__(self, ctx: RunContext, socket_buffer_bytes: int | None = None) -> None:
        """Spawn `ctx.shares` workers; `socket_buffer_bytes` shrinks the channels' socket
        buffers (tests: every message then arrives in pieces)."""
        self.ctx = ctx
        context = multiprocessing.get_context("spawn")
        self.workers: list[Worker] = []
        for share in range(ctx.shares):
            ours, theirs = socket.socketpair()
            if socket_buffer_bytes is not None:
                for end in (ours, theirs):
                    end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_buffer_bytes)
                    end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, socket_buffer_bytes)
            process = context.Process(
                target=worker_entry,
                args=(theirs, ctx.part(share, ctx.shares)),
                name=f"loadgen-worker-{share}",
                daemon=True,
            )
            process.start()
            theirs.close()
            self.workers.append(Worker(share, process, ours))
        self._pending: dict[int, _Second] = {}
        self._next_index = 0
        self._progress: dict[int, Progress] = {}  # each worker's latest, by share

    async def wait_ready(self) -> None:
        """Every worker has its transport up; a worker's own error is raised here."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                for worker in self.workers:
                    worker.channel = await Channel.open(worker.sock)
                    try:
                        message = await worker.channel.receive()
                    except ChannelClosed:
                        code = await exit_code(worker.process)
                        raise CannotRunError(
                            f"worker {worker.share} exited while starting (code {code})"
                        ) from None
                    if isinstance(message, Failed):
                        error = CannotRunError if message.cannot_run else LoadgenError
                        raise error(list(message.problems))
        except TimeoutError:
            raise CannotRunError(f"workers not ready after {READY_TIMEOUT_S:.0f}s") from None

    def _send(self, message: Start | Stop) -> None:
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send(message)

    def start(self) -> int:
        start_ns = time.monotonic_ns() + START_LEAD_NS  # one instant for every worker
        self._send(Start(start_ns))
        return start_ns

    def stop(self) -> None:
        self._send(Stop())

    async def collect(
        self,
        merged: Merged,
        sink: Callable[[Interval], None],
        stop: asyncio.Event,
        deadline_s: float,
    ) -> None:
        """Merge workers' messages until all have sent their final state or gone; a worker
        that goes without one crashed, and stops the run."""
        loop = asyncio.get_running_loop()
        readers = {loop.create_task(self._read(worker, merged, sink)) for worker in self.workers}
        stopper: asyncio.Task[object] | None = loop.create_task(stop.wait())
        stop_sent = False
        try:
            while readers:
                timeout = deadline_s - time.monotonic()
                if timeout <= 0:
                    merged.fail(StopReason.WORKERS_LATE, "no final report by the deadline")
                    break
                waiting = readers | ({stopper} if stopper is not None else set())
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                readers -= done
                if stopper in done:
                    stopper = None
                if (stop.is_set() or merged.failure) and not stop_sent:
                    self.stop()
                    stop_sent = True
                    deadline_s = min(deadline_s, self.ctx.finish_deadline(time.monotonic()))
        finally:
            for task in [*readers, *([stopper] if stopper is not None else [])]:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            self._flush_pending(sink, everything=True)

    async def _read(self, worker: Worker, merged: Merged, sink: Callable[[Interval], None]) -> None:
        """One worker's messages, merged as they come, until its final state or its end."""
        assert worker.channel is not None
        while not worker.finished:
            try:
                message = await worker.channel.receive()
            except ChannelClosed:
                code = await exit_code(worker.process)
                merged.fail(StopReason.WORKER_CRASHED, f"worker {worker.share}, exit code {code}")
                worker.finished = True  # gone: it reports no more seconds
                if (last := self._progress.get(worker.share)) is not None:
                    self._progress[worker.share] = Progress(last.sent, 0, last.at_s)
                self._flush_pending(sink)
                return
            if isinstance(message, Tick):
                self._progress[worker.share] = message.progress
                merged.recorder.merge_state(message.state)
                if isinstance(message, Final):
                    merged.tester.merge_state(message.tester)
                    worker.finished = True
                self._add_intervals(worker, message.intervals, sink)

    def progress(self) -> Progress:
        """Every worker's progress as of its latest tick."""
        return Progress.total(self._progress.values())

    def _add_intervals(
        self, worker: Worker, wire: tuple[WireInterval, ...], sink: Callable[[Interval], None]
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
            interval.late += item.late
            interval.start_delay_max_us = max(interval.start_delay_max_us, item.start_delay_max_us)
            codes = interval.error_codes
            for code, count in item.error_codes:
                codes[code] = codes.get(code, 0) + count
            interval.output_tokens += item.output_tokens
            if item.ttft is not None:
                interval.ttft.add(HdrHistogram.decode(item.ttft))
            if item.itl is not None:
                interval.itl.add(HdrHistogram.decode(item.itl))
        for second in {item.second for item in wire}:
            self._pending[second].reported_by.add(worker.share)
        self._flush_pending(sink)

    def _flush_pending(self, sink: Callable[[Interval], None], everything: bool = False) -> None:
        """Write seconds in order, each once every worker has reported it or finished (a
        finished worker reports no more seconds)."""
        while self._next_index in self._pending:
            second = self._pending[self._next_index]
            waiting = any(
                not worker.finished and worker.share not in second.reported_by
                for worker in self.workers
            )
            if waiting and not everything:
                return
            for interval in second.by_label.values():
                sink(interval)
            del self._pending[self._next_index]
            self._next_index += 1
        if everything:
            for index in sorted(self._pending):
                for interval in self._pending.pop(index).by_label.values():
                    sink(interval)

    async def close(self) -> None:
        for worker in self.workers:
            if worker.channel is not None:
                await worker.channel.close()
            else:
                worker.sock.close()
        for worker in self.workers:
            if await exit_code(worker.process, JOIN_TIMEOUT_S) is None:
                worker.process.kill()
                await exit_code(worker.process, JOIN_TIMEOUT_S)


async def exit_code(
    process: multiprocessing.process.BaseProcess, within_s: float = 2.0
) -> int | None:
    """The process's exit code once it has exited, waiting up to `within_s` without blocking
    the loop; None if it is still running."""
    deadline = time.monotonic() + within_s
    while process.exitcode is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return process.exitcode
