"""The fast transport: InvokeEndpoint over our own keep-alive HTTP/1.1 connections.

aiobotocore spends about 1 ms of CPU per call; this spends a few µs. Layers, one a module:
this one owns the pool and the I/O (`pool.py` keeps the books), `encode.py` makes each
request's signed bytes, `http11.py` is one connection, `lanes.py` the closed loop. On the
hot path (an idle keep-alive connection is available) `invoke` awaits exactly one future.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loadgen import api
from loadgen.transport.base import Caller, Outcome, Request, Transport, parked
from loadgen.transport.encode import Origin, RequestEncoder, error_of, outcome_of
from loadgen.transport.http11 import ConnectionClosed, HTTP11Connection, HTTPError
from loadgen.transport.lanes import Lane, LaneEnd, SendBatch
from loadgen.transport.pool import ConnectionPool, PoolClosed
from loadgen.transport.stream import StreamReader

if TYPE_CHECKING:
    from loadgen.transport.credentials import CredentialSource

# How long close() waits for connections to finish closing (TLS shutdown included).
_CLOSE_GRACE_S = 1.0


class FastTransport(Transport):
    """InvokeEndpoint over a keep-alive pool of hand-written HTTP/1.1 connections."""

    name = "fast"

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        credentials: CredentialSource,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
        verify: bool = True,
        ca_file: str | None = None,
        clock: Callable[[], float] = time.time,
        native: bool = True,
        streams: bool = False,
        idle_timeout: float | None = None,
    ) -> None:
        """`clock` gives the signing time (epoch seconds); `native=False` signs and formats
        every request in Python even when the C extension is built (tests, benchmarks).
        `streams`: the requests are InvokeEndpointWithResponseStream calls, each of which
        may be silent for `idle_timeout` (default `read_timeout`) at most."""
        self._origin = Origin.parse(endpoint_url)
        # `credentials` are owned (started and closed) by the caller
        self._encoder = RequestEncoder(
            self._origin.host_header, region, credentials, clock=clock, native=native
        )
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._streams = streams
        self._idle_timeout = read_timeout if idle_timeout is None else idle_timeout
        self._verify = verify
        self._ca_file = ca_file
        self._pool: ConnectionPool[HTTP11Connection] = ConnectionPool(max_connections)
        self._ssl: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch: SendBatch

    def __repr__(self) -> str:
        origin = self._origin
        return f"<FastTransport {origin.scheme}://{origin.host_header} {self._pool!r}>"

    @property
    def pool(self) -> ConnectionPool[HTTP11Connection]:
        return self._pool

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._batch = SendBatch(self._loop)
        if self._origin.scheme == "https":
            context = ssl.create_default_context(cafile=self._ca_file)
            if not self._verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl = context

    async def invoke(self, request: Request) -> Outcome:
        data, separate = self._encoder.encode(request)
        target = request.target
        if target.stream:
            return await self._exchange(data, separate, reader=StreamReader(target.stream_format))
        return await self._exchange(data, separate)

    async def _exchange(
        self,
        data: bytes,
        separate: bytes | None,
        fresh: bool = False,
        reader: StreamReader | None = None,
    ) -> Outcome:
        """Send on an idle connection (or a new one) and wait for the response (a stream's
        body read by `reader` as it comes). A reused connection the server had already
        closed is retried once on a fresh one (no byte of the response had arrived)."""
        pool = self._pool
        timeout = self._read_timeout if reader is None else self._idle_timeout
        while True:
            conn = None if fresh else pool.checkout()
            try:
                if conn is None:
                    conn = await self._acquire()
                response = await conn.request(data, timeout, separate, reader)
            except ConnectionClosed as exc:
                if conn is not None:
                    pool.release(conn)
                    if exc.retryable and not fresh:
                        fresh = True
                        continue
                return Outcome(error=api.CONNECTION_ERROR)
            except (HTTPError, OSError, PoolClosed, TimeoutError) as exc:
                if conn is not None:
                    pool.release(conn)  # already CLOSED: only bookkeeping
                return Outcome(error=error_of(exc))
            except asyncio.CancelledError:
                if conn is not None:
                    conn.abort()  # a request may be in flight: never reuse it
                    pool.release(conn)
                raise
            pool.release(conn)
            if reader is not None and 200 <= response.status < 300:
                return reader.outcome(response.status, response.variant, response.echoed)
            return outcome_of(response)

    async def run_caller(self, caller: Caller) -> None:
        """Requests one after another, each sent from the callback that ended the last one
        (or from the timer that found it due), on one connection while it lasts; a new
        connection is got the general way. Streams, long and few, go the general way."""
        if self._streams:
            await super().run_caller(caller)
            return
        pool = self._pool
        while True:
            conn = pool.checkout()
            if conn is None:  # none idle: one request opens (or waits for) a connection
                request = caller.take()
                if request is None:
                    if not await parked(caller):
                        return
                    continue
                await self.invoke_for(caller, request)
                continue
            lane = Lane(
                caller,
                conn,
                encode=self._encoder.encode,
                read_timeout=self._read_timeout,
                pool=pool,
                batch=self._batch,
            )
            try:
                end = await lane.run()
            except asyncio.CancelledError:
                lane.abandon()
                raise
            if end is LaneEnd.STOPPED:
                return
            if end is not None:  # a kept-alive connection closed under it: resend once
                data, separate = end
                try:
                    outcome = await self._exchange(data, separate, fresh=True)
                except Exception as exc:
                    caller.failed(exc)
                else:
                    caller.done(outcome)

    async def warm(self, connections: int) -> None:
        """Open connections into the pool as idle ones, all at once."""
        opened = await asyncio.gather(
            *(self._warm_one() for _ in range(connections)), return_exceptions=True
        )
        for conn in opened:
            if isinstance(conn, HTTP11Connection):
                self._pool.release(conn)

    async def _warm_one(self) -> HTTP11Connection | None:
        if not self._pool.reserve():
            return None  # the pool is full
        return await self._open()

    async def _acquire(self) -> HTTP11Connection:
        """A connection for one request: handed over by a releaser, or newly opened."""
        pool = self._pool
        if not pool.reserve():
            loop = self._loop
            assert loop is not None, "FastTransport.start() was not called"
            waiter: asyncio.Future[HTTP11Connection | None] = loop.create_future()
            pool.enqueue(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    granted = waiter.result()  # granted just before we were cancelled
                    if granted is None:
                        pool.unreserve()
                    else:
                        pool.release(granted)
                raise
            if conn is not None:
                return conn
        return await self._open()

    async def _open(self) -> HTTP11Connection:
        """Connect in a slot already reserved; the slot is freed if connecting fails."""
        loop = self._loop
        assert loop is not None, "FastTransport.start() was not called"
        pool = self._pool
        conn = HTTP11Connection(loop, pool.closed)
        pool.add(conn)
        origin = self._origin
        try:
            async with asyncio.timeout(self._connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=self._ssl,
                    server_hostname=origin.host if self._ssl is not None else None,
                )
        except BaseException:
            conn.abort()  # CLOSED: the pool frees the slot
            raise
        return conn

    async def close(self) -> None:
        connections, waiters = self._pool.close()
        for waiter in waiters:
            waiter.set_exception(PoolClosed("the transport was closed"))
        for conn in connections:
            conn.close()
        # Wait for the transports to report connection_lost, so no socket outlives us.
        deadline = time.monotonic() + _CLOSE_GRACE_S
        while any(c.transport is not None and not c.lost for c in connections):
            if time.monotonic() > deadline:
                for conn in connections:
                    if conn.transport is not None:
                        conn.transport.abort()
                break
            await asyncio.sleep(0.005)
