"""Workers as Ray actors: `workers: N` on a cluster, merged as local worker processes are.

Each actor runs what a worker process runs (`serve_engine`, on its own thread and uvloop)
and queues the same messages; the driver polls every actor (a poll waits for the next
message, so one is in flight per actor at all times) and feeds them to the same `Pool`
merge. The driver does no load work. Ray is imported by the caller (engine/cluster.py)
before this module is: the actors' nodes import it by name, so loadgen must be installed
on every node.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayError, RayTaskError

from loadgen.engine.channel import ChannelClosed
from loadgen.engine.context import RunContext
from loadgen.engine.workers import (
    READY_TIMEOUT_S,
    Failed,
    Pool,
    Start,
    Stop,
    WorkerGone,
    serve_engine,
)
from loadgen.errors import CannotRunError, LoadgenError
from loadgen.summary import ClusterInfo, ClusterWorker
from loadgen.transport.sigv4 import Credentials

logger = logging.getLogger(__name__)

# The actors start this long after the driver says so: time for the Start call to reach
# every node (a millisecond or two) with room for a busy one.
RAY_START_LEAD_NS = 500_000_000
POLL_WAIT_S = 1.0  # a poll returns after this long with nothing when the engine is quiet
ACTOR_CONCURRENCY = 4  # a poll may wait while start, stop or another call comes in
CALLS_TIMEOUT_S = 5.0  # close waits this long for the start and stop calls to be answered


# --- on the node ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where an actor runs."""

    node: str  # Ray's node id
    address: str  # the node's IP, for people
    pid: int


class EngineEnded(Exception):
    """The actor's engine stopped without its final state; the message says how."""


_END = object()  # the engine thread has ended: nothing more will be queued


class _QueueLink:
    """serve_engine's line to the driver inside an actor: it sends into the queue the driver
    polls, and receives what the actor's start and stop calls post to its loop."""

    def __init__(self, outbox: queue.SimpleQueue[object]) -> None:
        self._outbox = outbox
        self.inbox: asyncio.Queue[object] = asyncio.Queue()

    def send(self, message: object) -> None:
        self._outbox.put(message)

    async def receive(self) -> object:
        message = await self.inbox.get()
        if message is _END:
            raise ChannelClosed()
        return message

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass


class LoadActor:
    """One worker on a Ray node (made a Ray actor by RayPool, with one CPU)."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: _QueueLink | None = None
        self._ended = False  # the engine thread has ended and its queue is drained
        self._failure: str | None = None

    def placement(self) -> Placement:
        context = ray.get_runtime_context()
        return Placement(context.get_node_id(), ray.util.get_node_ip_address(), os.getpid())

    def launch(self, credentials: Credentials | None) -> None:
        """Start the engine on its own thread: it opens the transport (signing with
        `credentials`, in memory only, else with this host's chain) and says Ready or
        Failed. Returns once start and stop can reach its loop."""
        looping = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(credentials, looping), name="loadgen-engine", daemon=True
        )
        thread.start()
        looping.wait()

    def _run(self, credentials: Credentials | None, looping: threading.Event) -> None:
        import uvloop

        _unnice()
        try:
            uvloop.run(self._serve(credentials, looping))
        except BaseException as exc:  # a bug: the driver hears of it as this worker's end
            logger.exception("the loadgen engine failed")  # in the node's Ray logs
            self._failure = f"the engine failed: {type(exc).__name__}"
        finally:
            looping.set()
            self._outbox.put(_END)

    async def _serve(self, credentials: Credentials | None, looping: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._link = _QueueLink(self._outbox)
        stop = asyncio.Event()
        looping.set()
        await serve_engine(self._link, self._ctx, stop, credentials)

    def start(self, start_wall_ns: int) -> int:
        """Start at the driver's wall-clock instant, on this host's monotonic clock (clocks
        agree across hosts by NTP; monotonic ones do not). Returns the lead left, in ns:
        negative, the Start came late."""
        lead_ns = start_wall_ns - time.time_ns()
        self._post(Start(time.monotonic_ns() + lead_ns))
        return lead_ns

    def stop(self) -> None:
        self._post(Stop())

    def _post(self, message: object) -> None:
        loop, link = self._loop, self._link
        if loop is None or link is None:
            return
        try:
            loop.call_soon_threadsafe(link.inbox.put_nowait, message)
        except RuntimeError:  # the loop has closed: the engine is done
            pass

    def poll(self, wait_s: float) -> list[object]:
        """What the engine sent since the last poll, waiting up to `wait_s` for the first
        (a tick comes every 0.5 s: a dead actor loses at most one, as a worker process does).
        Once the engine has ended and everything it sent is taken, EngineEnded."""
        if self._ended:
            raise EngineEnded(self._failure or "the engine ended")
        try:
            messages = [self._outbox.get(timeout=wait_s)]
        except queue.Empty:
            return []
        while True:
            try:
                messages.append(self._outbox.get_nowait())
            except queue.Empty:
                break
        if messages[-1] is _END:
            messages.pop()
            self._ended = True
            if not messages:
                raise EngineEnded(self._failure or "the engine ended")
        return messages


def _unnice() -> None:
    """Ray starts its workers at niceness 15, as background work; a load generator's timing
    is what it measures, so this thread (Linux: niceness is per thread) asks for the default
    back. Without the privilege (CAP_SYS_NICE) it keeps Ray's, which only matters on a node
    busy with other work: start Ray there with RAY_worker_niceness=0."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        logger.warning("the engine keeps Ray's worker niceness: not permitted to lower it")


# --- the driver -------------------------------------------------------------------------------


@dataclass
class ActorWorker:
    share: int
    actor: Any  # a Ray ActorHandle of LoadActor
    placement: Placement | None = None
    inbox: deque[object] = field(default_factory=deque)  # polled, not yet merged
    finished: bool = False


class RayPool(Pool[ActorWorker]):
    """`ctx.shares` LoadActors, one CPU each, spread over the cluster's nodes."""

    def __init__(
        self, ctx: RunContext, address: str, credentials: Credentials | None = None
    ) -> None:
        """`credentials`: the driver's, handed to each actor in memory; None: each actor
        uses its own host's chain (cluster.credentials: node)."""
        remote = ray.remote(LoadActor)
        workers = []
        for share in range(ctx.shares):
            actor = remote.options(
                name=f"{ctx.run_id}-{share}",
                num_cpus=1,
                scheduling_strategy="SPREAD",
                max_concurrency=ACTOR_CONCURRENCY,
                max_restarts=0,
            ).remote(ctx.part(share, ctx.shares))
            workers.append(ActorWorker(share, actor))
        super().__init__(ctx, workers)
        self.address = address
        self._credentials = credentials
        self._calls: list[Any] = []  # start and stop calls: awaited before the actors go

    async def wait_ready(self) -> None:
        """Every actor placed, its transport up; its own error is raised here."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                for worker in self.workers:
                    worker.placement = await _result(worker.actor.placement.remote(), worker)
                launches = [w.actor.launch.remote(self._credentials) for w in self.workers]
                for worker, launch in zip(self.workers, launches, strict=True):
                    await _result(launch, worker)
                    message = await self._receive(worker)
                    if isinstance(message, Failed):
                        error = CannotRunError if message.cannot_run else LoadgenError
                        raise error(list(message.problems))
        except TimeoutError:
            free = int(ray.available_resources().get("CPU", 0))
            raise CannotRunError(
                f"workers not placed and ready after {READY_TIMEOUT_S:.0f}s on the Ray "
                f"cluster at {self.address} ({free} CPUs free for {len(self.workers)} workers)"
            ) from None
        except WorkerGone as gone:
            raise CannotRunError(f"the workers did not start: {gone.detail}") from None

    def start(self) -> int:
        """One wall-clock instant for every actor; this host's monotonic reading of it."""
        start_wall_ns = time.time_ns() + RAY_START_LEAD_NS
        start_ns = time.monotonic_ns() + RAY_START_LEAD_NS
        self._calls += [worker.actor.start.remote(start_wall_ns) for worker in self.workers]
        return start_ns

    def stop(self) -> None:
        self._calls += [w.actor.stop.remote() for w in self.workers if not w.finished]

    async def _receive(self, worker: ActorWorker) -> object:
        while not worker.inbox:
            batch = await _result(worker.actor.poll.remote(POLL_WAIT_S), worker)
            worker.inbox.extend(batch)
        return worker.inbox.popleft()

    def cluster_info(self) -> ClusterInfo:
        placed = [(w.share, w.placement) for w in self.workers if w.placement is not None]
        return ClusterInfo(
            engine="ray",
            address=self.address,
            nodes=len({placement.node for _, placement in placed}),
            workers=tuple(
                ClusterWorker(index=share, node=placement.node, pid=placement.pid)
                for share, placement in placed
            ),
        )

    async def close(self) -> None:
        """Collect the start and stop calls' results (an error left unread is logged by
        Ray), then end the actors."""
        calls = [asyncio.wrap_future(call.future()) for call in self._calls]
        if calls:
            await asyncio.wait(calls, timeout=CALLS_TIMEOUT_S)
            for call in calls:
                if call.done():
                    call.exception()
                else:
                    call.cancel()
        for worker in self.workers:
            ray.kill(worker.actor, no_restart=True)


async def _result(ref: Any, worker: ActorWorker) -> Any:
    """An actor call's result; its failure (the actor, its node, or the engine gone) is
    WorkerGone naming the worker and its node."""
    try:
        return await asyncio.wrap_future(ref.future())
    except RayError as exc:
        raise WorkerGone(f"{_where(worker)}: {_why(exc)}") from None


def _where(worker: ActorWorker) -> str:
    placement = worker.placement
    if placement is None:
        return f"worker {worker.share}"
    return f"worker {worker.share} on node {placement.node} ({placement.address})"


def _why(exc: RayError) -> str:
    """Ray's account of a death, in a few words (its own runs to a paragraph)."""
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, EngineEnded):
        return str(exc.cause)
    if isinstance(exc, ActorUnavailableError):  # a call in flight when its process or node went
        return "the actor became unreachable (its process or its node went down)"
    if isinstance(exc, RayActorError):
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        if "creation task" in text:  # its last line is the cause, e.g. loadgen not installed
            cause = [line for line in text.splitlines() if line.strip()][-1].strip()
            return f"the actor could not start on its node: {cause}"
        for cause, words in (
            ("ray.kill", "the actor was killed (ray.kill)"),
            ("node has died", "its node died"),
            ("NODE_DIED", "its node died"),
            ("worker process has died", "the actor's process died"),
            ("WORKER_DIED", "the actor's process died"),
        ):
            if cause in text:
                return words
        return "the actor died"
    return f"{type(exc).__name__}"
