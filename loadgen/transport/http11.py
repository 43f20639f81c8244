"""One HTTP/1.1 client connection: request bytes out, httptools parser callbacks in.

One request in flight per connection, no pipelining. The connection owns its state
(NEW, ACTIVE, IDLE, CLOSED) and reports the move to CLOSED to its pool exactly once.
Failures are this module's own exceptions, set on the request's future; the
transport maps them to outcome codes in one place.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import httptools

if TYPE_CHECKING:
    from loadgen.transport._http11c import Simple


def _load_fast_parser() -> Callable[[bytes], Simple | None] | None:
    """The C parser of whole 2xx responses, or None: not built, or LOADGEN_PURE_HTTP11=1."""
    if os.environ.get("LOADGEN_PURE_HTTP11") == "1":
        return None
    try:
        from loadgen.transport._http11c import parse_simple
    except ImportError:
        return None
    return parse_simple


# One whole 2xx response with a Content-Length body, in one call, as a Simple (a tuple
# with named fields), or None: httptools' job, whose callbacks fill the connection's fields.
parse_simple = _load_fast_parser()

# Error bodies are kept for their JSON error code; nothing legitimate is larger.
MAX_ERROR_BODY = 64 * 1024


class ConnectionState(enum.IntEnum):
    NEW = 0  # opening, or open with no request sent yet
    ACTIVE = 1  # a request is in flight, or the connection is checked out
    IDLE = 2  # kept alive in the pool, waiting for the next request
    CLOSED = 3  # closed or closing; never used again


# Looking up an enum member costs ~0.1 µs in Python 3.11: the per-request paths use these.
_ACTIVE = ConnectionState.ACTIVE
_CLOSED = ConnectionState.CLOSED


# Response headers by name, lowercase and as commonly spelled: what on_header does with each.
_OTHER, _ECHOED, _VARIANT, _FRAMING, _ERROR_TYPE = "other", "echoed", "variant", "framing", "error"
_HEADER_KINDS: dict[bytes, str] = {}
for _name, _kind in (
    (b"X-Amzn-SageMaker-Custom-Attributes", _ECHOED),
    (b"X-Amzn-Invoked-Production-Variant", _VARIANT),
    (b"Content-Length", _FRAMING),
    (b"Transfer-Encoding", _FRAMING),
    (b"X-Amzn-ErrorType", _ERROR_TYPE),
    (b"Server", _OTHER),
    (b"Date", _OTHER),
    (b"Content-Type", _OTHER),
    (b"Connection", _OTHER),
    (b"Keep-Alive", _OTHER),
    (b"X-Amzn-RequestId", _OTHER),
):
    _HEADER_KINDS[_name] = _HEADER_KINDS[_name.lower()] = _kind
del _name, _kind


class HTTPError(Exception):
    """A request on a connection failed without a complete response."""


class ConnectionClosed(HTTPError):
    """Refused, reset or closed before the response was complete."""

    def __init__(self, retryable: bool) -> None:
        super().__init__("connection closed before the response was complete")
        # True when the request may be resent on a fresh connection: it was never sent, or it
        # went out on a reused keep-alive connection that closed before one response byte
        # arrived (the server ended keep-alive as we sent; every HTTP client resends then).
        self.retryable = retryable


class ReadTimeout(HTTPError):
    """The response was not complete within the read timeout."""


class ProtocolViolation(HTTPError):
    """The server sent something that is not a valid HTTP/1.1 response."""


class _ExtraBytes(Exception):
    """Raised inside the parser to stop it at bytes beyond the response's end."""


class Response:
    """The parts of a response a load tester needs; header values are latin-1 str, as
    botocore decodes them."""

    __slots__ = ("status", "variant", "echoed", "error_type", "body", "body_length")

    def __init__(
        self,
        status: int,
        variant: str | None,
        echoed: str | None,
        error_type: str | None,
        body: bytes | None,
        body_length: int,
    ) -> None:
        self.status = status
        self.variant = variant  # X-Amzn-Invoked-Production-Variant
        self.echoed = echoed  # X-Amzn-SageMaker-Custom-Attributes
        self.error_type = error_type  # x-amzn-ErrorType
        self.body = body  # kept for error responses only (status >= 300), truncated
        self.body_length = body_length

    def __repr__(self) -> str:
        return f"<Response [{self.status}] {self.body_length} bytes>"


def header_lines(headers: Iterable[tuple[str, str]]) -> str:
    """`Name: value\\r\\n` lines for the request head (no validation: values are checked upstream)."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers])


class Listener(Protocol):
    """Told, from the I/O callbacks, how each request sent with `HTTP11Connection.send` ended.

    `ok` gets the usual response, whole in one read, 2xx and kept alive: parse_simple's
    Simple, and the connection's own fields are left as they were. `response` gets any other
    and reads it off the connection (its fields, or `response()`). Each may send the next
    request on it at once: a closed loop with no future or task wake-up.
    """

    def ok(self, simple: Simple) -> None: ...

    def response(self, conn: HTTP11Connection) -> None: ...

    def failed(self, conn: HTTP11Connection, exc: HTTPError) -> None: ...


class StreamSink(Protocol):
    """Reads a streaming response's 2xx body as it arrives (stream.py's StreamReader)."""

    def head(self) -> None: ...

    def data(self, chunk: bytes) -> None: ...


class HTTP11Connection(asyncio.Protocol):
    """An asyncio protocol that sends one request at a time and parses its response.

    Callbacks only parse and record. The end of a request is reported once, after
    `feed_data` returns: to the future `request` returned, or to the listener of `send`.
    """

    __slots__ = (
        "loop",
        "transport",
        "parser",
        "state",
        "requests",
        "lost",
        "_on_closed",
        "in_flight",
        "waiter",
        "listener",
        "timer",
        "deadline",
        "received",
        "headers_done",
        "complete",
        "framed",
        "keep_alive",
        "status",
        "variant",
        "echoed",
        "error_type",
        "body_length",
        "error_body",
        "sink",
        "timeout",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_closed: Callable[[HTTP11Connection], None],
    ) -> None:
        # Connection state
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)  # reused for every response
        self.state = ConnectionState.NEW
        self.requests = 0  # sent on this connection; more than 1 means it was reused
        self.lost = False  # connection_lost has run: the socket is gone
        self._on_closed = on_closed  # the pool's bookkeeping, called once on CLOSED

        # Per-request state
        self.in_flight = False  # a request was sent and has not ended yet
        self.waiter: asyncio.Future[Response] | None = None  # set by `request`
        self.listener: Listener | None = None  # set by `send`
        # One timer per connection, not per request: it stays armed across requests and,
        # when it fires early for the current one, re-arms itself at that one's deadline.
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0  # loop.time() by which the current response must be complete
        self.received = False  # any response byte arrived
        self.headers_done = False
        self.complete = False
        self.framed = False  # Content-Length or Transfer-Encoding seen; else the body ends at EOF
        self.keep_alive = True

        # Per-response values
        self.status = 0
        self.variant: str | None = None
        self.echoed: str | None = None
        self.error_type: str | None = None
        self.body_length = 0
        self.error_body: bytearray | None = None
        # a streaming request's reader: gets a 2xx body as it arrives, and each piece of it
        # moves the deadline (the timeout is then the longest silence)
        self.sink: StreamSink | None = None
        self.timeout = 0.0

    def __repr__(self) -> str:
        return f"<HTTP11Connection [{self.state.name}, requests={self.requests}]>"

    # Predicates, for the pool and for tests

    def is_closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    def is_reused(self) -> bool:
        return self.requests > 1

    # The request

    def request(
        self,
        data: bytes,
        timeout: float,
        body: bytes | None = None,
        sink: StreamSink | None = None,
    ) -> asyncio.Future[Response]:
        """Send `data` (the request, or its head when `body` is given separately, as large
        bodies are, to avoid copying them) and return the future of its response. With a
        `sink`, a 2xx body goes to it as it arrives, and `timeout` is the longest silence.

        Raises ConnectionClosed at once when the connection is already closed.
        """
        waiter: asyncio.Future[Response] = self.loop.create_future()
        self.send(None, data, timeout, body)
        self.sink = sink
        self.waiter = waiter
        return waiter

    def send(
        self, listener: Listener | None, data: bytes, timeout: float, body: bytes | None = None
    ) -> None:
        """As `request`, but the end is reported to `listener`'s callbacks: no future."""
        if self.state is _CLOSED or self.transport is None:
            raise ConnectionClosed(retryable=True)  # never sent
        self.state = _ACTIVE
        self.in_flight = True
        self.requests += 1
        self.received = False  # the response's values are reset when its first byte comes
        self.headers_done = False
        self.waiter = None
        self.listener = listener
        self.sink = None
        self.timeout = timeout
        loop = self.loop
        self.deadline = loop.time() + timeout
        if self.timer is None:
            self.timer = loop.call_at(self.deadline, self._on_timer)
        self.transport.write(data)
        if body is not None:
            self.transport.write(body)

    def response(self) -> Response:
        """The response just completed, as one object."""
        error_body = self.error_body
        return Response(
            self.status,
            self.variant,
            self.echoed,
            self.error_type,
            None if error_body is None else bytes(error_body[:MAX_ERROR_BODY]),
            self.body_length,
        )

    def close(self) -> None:
        """Close gracefully (pending writes are flushed); the pool forgets it now."""
        if self.state is not ConnectionState.CLOSED:
            if self.transport is not None:
                self.transport.close()
            self._mark_closed()

    def abort(self) -> None:
        """Close at once, discarding buffers: used after errors and timeouts."""
        if self.state is not ConnectionState.CLOSED:
            if self.transport is not None:
                self.transport.abort()
            self._mark_closed()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.in_flight:
            # Bytes nobody asked for: the server is out of step with us. Never reuse this.
            self.abort()
            return
        if not self.received and parse_simple is not None and self.sink is None:
            simple = parse_simple(data)
            if simple is not None:  # the whole response, the usual case: no callbacks
                listener = self.listener
                if simple.keep_alive and listener is not None:  # nothing else to change
                    self.in_flight = False
                    listener.ok(simple)
                    return
                self.received = True
                self.status = simple.status
                self.echoed = simple.echoed
                self.variant = simple.variant
                self.error_type = simple.error_type
                self.keep_alive = simple.keep_alive
                self.body_length = simple.body_length
                self.error_body = None
                self._finish()
                return
        if not self.received:
            self.received = True
            self._reset_response()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self.complete:
                self._fail(ProtocolViolation("unparseable HTTP response"))
                return
            # Bytes after the end of the response (a body longer than its Content-Length):
            # answer with what was announced, and close so the next request cannot desync.
            self.keep_alive = False
        if self.complete:
            self._finish()

    def _reset_response(self) -> None:
        """Before httptools reads a response: what its callbacks fill in starts empty."""
        self.complete = False
        self.framed = False
        self.keep_alive = True
        self.status = 0
        self.variant = None
        self.echoed = None
        self.error_type = None
        self.body_length = 0
        self.error_body = None

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost ends any EOF-delimited body

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.in_flight:
            if self.headers_done and not self.framed:
                self.keep_alive = False  # no length given: EOF is the end of the body
                self._finish()
            else:
                retryable = self.requests > 1 and not self.received
                self._fail(ConnectionClosed(retryable))
        self._mark_closed()

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            raise _ExtraBytes

    def on_header(self, name: bytes, value: bytes) -> None:
        kind = _HEADER_KINDS.get(name)  # the usual spellings: no lower() per header
        if kind is None:
            kind = _HEADER_KINDS.get(name.lower(), _OTHER)
        if kind is _OTHER:
            return
        if kind is _ECHOED:
            self.echoed = value.decode("latin-1")
        elif kind is _VARIANT:
            self.variant = value.decode("latin-1")
        elif kind is _FRAMING:
            self.framed = True
        else:
            self.error_type = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.status = status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()  # Connection: close, HTTP/1.0, ...
        self.headers_done = True
        if status >= 300:
            self.error_body = bytearray()
            self.sink = None  # an error's body is read as any other
        elif status < 200 or status == 204 or status == 304:
            self.framed = True  # no body by definition
        sink = self.sink
        if sink is not None:
            self.deadline = self.loop.time() + self.timeout
            sink.head()

    def on_body(self, body: bytes) -> None:
        self.body_length += len(body)
        sink = self.sink
        if sink is not None:
            self.deadline = self.loop.time() + self.timeout
            sink.data(body)
            return
        error_body = self.error_body
        if error_body is not None and len(error_body) < MAX_ERROR_BODY:
            error_body += body

    def on_message_complete(self) -> None:
        self.complete = True

    # Ending a request

    def _finish(self) -> None:
        self.in_flight = False  # the timer, left armed, finds no request and ends
        if not self.keep_alive:
            self.close()  # before telling anyone, so the pool never sees it as reusable
        listener = self.listener
        if listener is not None:
            listener.response(self)
            return
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.response())

    def _fail(self, exc: HTTPError) -> None:
        self.in_flight = False
        self.abort()
        listener = self.listener
        if listener is not None:
            listener.failed(self, exc)
            return
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _on_timer(self) -> None:
        self.timer = None
        if not self.in_flight or self.state is ConnectionState.CLOSED:
            return  # no request in flight: disarmed until the next one
        if self.loop.time() >= self.deadline:
            self._fail(ReadTimeout("no complete response within the read timeout"))
        else:  # armed for an earlier request: wait out this one's deadline
            self.timer = self.loop.call_at(self.deadline, self._on_timer)

    def _mark_closed(self) -> None:
        if self.state is not ConnectionState.CLOSED:
            self.state = ConnectionState.CLOSED
            timer = self.timer
            if timer is not None:
                timer.cancel()
                self.timer = None
            self._on_closed(self)
