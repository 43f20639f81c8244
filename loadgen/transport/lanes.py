"""The fast transport's closed loop: each request sent from the callback that ended the last.

A Lane is one closed-loop caller on one keep-alive connection: no future or task wake-up
per request. Lanes whose responses arrived in the same loop turn send their next requests
together (SendBatch).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from loadgen.transport.base import Caller, Outcome, Request
from loadgen.transport.encode import Encoded, error_of, outcome_of
from loadgen.transport.http11 import ConnectionClosed, ConnectionState, HTTP11Connection, HTTPError
from loadgen.transport.pool import ConnectionPool

if TYPE_CHECKING:
    from loadgen.transport._http11c import Simple

_CLOSED_STATE = ConnectionState.CLOSED


class LaneEnd(enum.Enum):
    STOPPED = "stopped"  # the caller took no more requests


# How a lane's `run` ends: the caller stopped, the connection is gone (None), or a request
# to resend on a fresh connection.
LaneResult = Literal[LaneEnd.STOPPED] | None | Encoded


class Lane:
    """One closed-loop caller on one connection: each response's callback records it, and
    the next request goes out with the others of the same loop turn (`SendBatch`)."""

    __slots__ = (
        "caller",
        "conn",
        "encode",
        "read_timeout",
        "pool",
        "batch",
        "future",
        "pending",
        "resume",
        "due",
    )

    def __init__(
        self,
        caller: Caller,
        conn: HTTP11Connection,
        *,
        encode: Callable[[Request], Encoded],
        read_timeout: float,
        pool: ConnectionPool[HTTP11Connection],
        batch: SendBatch,
    ) -> None:
        self.caller = caller
        self.conn: HTTP11Connection | None = conn  # None once given back to the pool
        self.encode = encode
        self.read_timeout = read_timeout
        self.pool = pool
        self.batch = batch
        self.future: asyncio.Future[LaneResult] = conn.loop.create_future()
        self.pending: Encoded | None = None  # sent, not yet ended
        self.resume = self._resume  # bound once: the caller keeps it while the lane is parked
        self.due = caller.due

    def run(self) -> asyncio.Future[LaneResult]:
        self._next()
        return self.future

    def _next(self) -> None:
        """Send the caller's next request, or end the lane."""
        caller = self.caller
        conn = self.conn
        assert conn is not None, "the lane has ended"
        while True:
            request = caller.take()
            if request is None:
                # nothing due: keep the connection, and go on when something is
                if not caller.park(self.resume):
                    self._end(LaneEnd.STOPPED)
                return
            try:
                self.pending = pending = self.encode(request)
                data, body = pending
                conn.send(self, data, self.read_timeout, body)
                return
            except ConnectionClosed:  # closed before it was sent: a fresh one sends it
                self._end(pending)
                return
            except Exception as exc:  # a bug in encoding: counted, and on to the next
                caller.failed(exc)

    def _resume(self) -> None:
        """A request is due for this parked lane (or its caller is done)."""
        if self.future.done():
            return  # abandoned while it was parked
        try:
            self._next()
        except BaseException as exc:  # noqa: BLE001 - surfaces in the awaiting caller
            self._end(exc)

    def ok(self, simple: Simple) -> None:
        """The usual response: recorded, and this lane queued to send its next request (or,
        with nothing due, parked until something is)."""
        try:
            self.pending = None
            caller = self.caller
            caller.ok(simple.status, simple.variant, simple.echoed)
            due = self.due
            if due is not None and not due():  # an open loop, on time: park now, not next turn
                if not caller.park(self.resume):
                    self._end(LaneEnd.STOPPED)
                return
            batch = self.batch  # SendBatch.add, inlined: this runs once per request
            lanes = batch.lanes
            lanes.append(self)
            if len(lanes) == 1:
                batch.loop.call_soon(batch.send)
        except BaseException as exc:  # noqa: BLE001 - surfaces in the awaiting caller
            self._end(exc)

    def response(self, conn: HTTP11Connection) -> None:
        try:
            status = conn.status
            self.pending = None
            if 200 <= status < 300:
                self.caller.ok(status, conn.variant, conn.echoed)
            else:
                self.caller.done(outcome_of(conn.response()))
            if conn.state is _CLOSED_STATE:  # the server ended keep-alive
                self._end(None)
            else:
                self.batch.add(self)
        except BaseException as exc:  # noqa: BLE001 - surfaces in the awaiting caller
            self._end(exc)

    def failed(self, conn: HTTP11Connection, exc: HTTPError) -> None:
        try:
            if isinstance(exc, ConnectionClosed) and exc.retryable:
                self._end(self.pending)
                return
            self.pending = None
            self.caller.done(Outcome(error=error_of(exc)))
            self._end(None)
        except BaseException as error:  # noqa: BLE001
            self._end(error)

    def _end(self, result: LaneResult | BaseException) -> None:
        self._release()
        future = self.future
        if not future.done():
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def abandon(self) -> None:
        """The caller was cancelled: a request may be in flight, so the connection goes."""
        conn = self.conn
        if conn is not None and conn.in_flight:
            conn.abort()
        self._release()

    def _release(self) -> None:
        """Give the connection back once, whichever of `_end` and `abandon` comes first
        (a response can end the lane after its caller was cancelled, before it resumed)."""
        conn = self.conn
        if conn is not None:
            self.conn = None
            conn.listener = None
            self.pool.release(conn)  # IDLE again, or only bookkeeping if CLOSED


class SendBatch:
    """Lanes whose response arrived in this loop turn send their next requests together,
    in one callback after the turn's I/O callbacks.

    Writes back to back keep the server busy: one wake-up of the server for the batch, not
    one per request, and the parsing and the signing each run with their code warm. In a
    bare uvloop client against nginx on 2 cores, batching raised the rate by 15-20%.
    """

    __slots__ = ("loop", "lanes")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lanes: list[Lane] = []

    def add(self, lane: Lane) -> None:
        lanes = self.lanes
        lanes.append(lane)
        if len(lanes) == 1:
            self.loop.call_soon(self.send)

    def send(self) -> None:
        lanes = self.lanes
        self.lanes = []
        for lane in lanes:
            if lane.future.done():
                continue  # abandoned while it waited
            try:
                lane._next()
            except BaseException as exc:  # noqa: BLE001 - surfaces in the awaiting caller
                lane._end(exc)
