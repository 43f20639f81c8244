"""Executors decide when each request starts: one small class per load model.

Each runs callers (callers.py) that the transport serves one request at a time. Cancelling
`run` stops new starts only; requests already started live on in the Engine, which the
runner drains.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from loadgen.engine.arrivals import Arrivals
from loadgen.engine.callers import ClosedCaller, OpenCaller
from loadgen.engine.core import Engine
from loadgen.engine.interarrival import drawn_offsets, due_counts
from loadgen.engine.requests import TraceRequests
from loadgen.engine.schedule import constant_offsets, ramping_offsets, take_share
from loadgen.metrics import NS_PER_S
from loadgen.scenario import (
    ConstantArrivalRate,
    ConstantConcurrency,
    LoadBase,
    LoadConfig,
    RampingArrivalRate,
    TraceReplay,
)
from loadgen.trace import read_trace, take_rows

ConfigT = TypeVar("ConfigT", bound=LoadBase)


class Executor(abc.ABC, Generic[ConfigT]):
    """Registered under its scenario name (`load.executor`), as k6 registers its executors."""

    registry: ClassVar[dict[str, type[Executor[Any]]]] = {}
    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Executor.registry[cls.name] = cls

    def __init__(self, config: ConfigT, share: int = 0, shares: int = 1) -> None:
        """This process runs `share` of `shares` equal parts of the load (worker processes)."""
        self.config = config
        self.share = share
        self.shares = shares

    @classmethod
    def of(cls, config: LoadConfig, share: int = 0, shares: int = 1) -> Executor[Any]:
        """The executor that `config.executor` names, for this share of the load."""
        return cls.registry[config.executor](config, share, shares)

    @abc.abstractmethod
    async def run(self, engine: Engine, start_ns: int) -> None: ...


class OpenLoop(Executor[ConfigT]):
    """Starts requests at scheduled times whatever the endpoint does; latency counts from then.

    `max_in_flight` callers take due requests (Arrivals) one at a time: a free caller takes
    the oldest due one at once, and when none is free the due ones wait, in latency.
    """

    @abc.abstractmethod
    def offsets(self) -> Iterator[float]: ...

    async def run(self, engine: Engine, start_ns: int) -> None:
        """Callers start at once and park until the first request is due."""
        offsets = take_share(self.offsets(), self.share, self.shares)
        loop = asyncio.get_running_loop()
        arrivals = Arrivals(offsets, start_ns, engine.clock, loop, engine.busy_poll)
        callers = [OpenCaller(engine, arrivals) for _ in range(engine.max_in_flight)]
        try:
            await serve(engine, engine.start_callers(callers), arrivals.stop)
        finally:
            arrivals.close()
        engine.tester.max_in_flight_full_ns += arrivals.full_ns


class ConstantArrivalRateExecutor(OpenLoop[ConstantArrivalRate]):
    name = "constant-arrival-rate"

    def offsets(self) -> Iterator[float]:
        config = self.config
        if config.arrival == "constant":
            return constant_offsets(config.rate, config.duration, config.requests)
        return drawn_offsets(config.rate, config.duration, config.requests, due_counts(config))


class RampingArrivalRateExecutor(OpenLoop[RampingArrivalRate]):
    name = "ramping-arrival-rate"

    def offsets(self) -> Iterator[float]:
        config = self.config
        stages = [(stage.duration, stage.target) for stage in config.stages]
        drawn = None if config.arrival == "constant" else due_counts(config)
        return ramping_offsets(config.start_rate, stages, drawn)


class TraceReplayExecutor(OpenLoop[TraceReplay]):
    """Requests start at a trace file's offsets (divided by `speedup`); a row that names an
    endpoint or a body sends to it or sends it. The trace is read as the run goes, twice
    side by side: once for the start times, once for what each request is."""

    name = "trace-replay"

    def offsets(self) -> Iterator[float]:
        config = self.config
        speedup = config.speedup
        return (row.offset_s / speedup for row in read_trace(config.file, config.trace_format))

    async def run(self, engine: Engine, start_ns: int) -> None:
        """The callers take each due request's row as they take its time: in order."""
        config = self.config
        rows = read_trace(config.file, config.trace_format)
        engine.factory = TraceRequests(engine.factory, take_rows(rows, self.share, self.shares))
        await super().run(engine, start_ns)


class ConstantConcurrencyExecutor(Executor[ConstantConcurrency]):
    """Closed loop: each of N callers starts its next request when its last one ends."""

    name = "constant-concurrency"

    def callers(self) -> int:
        base, extra = divmod(self.config.concurrency, self.shares)
        return base + (1 if self.share < extra else 0)

    async def run(self, engine: Engine, start_ns: int) -> None:
        config = self.config
        if config.requests is not None:
            base, extra = divmod(config.requests, self.shares)
            engine.remaining = base + (1 if self.share < extra else 0)
        end_ns = None if config.duration is None else start_ns + int(config.duration * NS_PER_S)
        delay_ns = start_ns - engine.clock()
        if delay_ns > 0:  # a closed loop's callers send at once: not before the start
            await asyncio.sleep(delay_ns / NS_PER_S)
        callers = [ClosedCaller(engine, end_ns) for _ in range(self.callers())]
        await serve(engine, engine.start_callers(callers))


async def serve(
    engine: Engine, callers: list[asyncio.Task[None]], on_stop: Callable[[], None] | None = None
) -> None:
    """Until every caller is done. Cancelled (the run stops), no caller starts another
    request: each ends the one under way, and the Engine drains them."""
    if not callers:
        return

    def stop_starting() -> None:
        engine.stop_starting()
        if on_stop is not None:
            on_stop()

    try:
        # wait, not gather: cancelling this must not cancel the requests under way
        done, _ = await asyncio.wait(callers, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        stop_starting()
        raise
    for caller in done:
        if not caller.cancelled() and (failure := caller.exception()) is not None:
            stop_starting()
            raise failure
