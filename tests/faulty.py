"""Raw TCP servers on 127.0.0.1 that misbehave byte by byte: resets, garbage, stalls, lies.

aiohttp would not let a test send half a header or a body longer than its Content-Length,
so these speak HTTP/1.1 by hand. Each server runs a `Behaviour` per request it reads; the
behaviour writes what it likes and returns whether the connection may serve another.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from loadgen import api

ECHO_HEADER = api.H_CUSTOM_ATTRIBUTES.lower().encode("latin-1")


@dataclass
class RawRequest:
    """One request as read off the socket: enough to answer it."""

    head: bytes
    body: bytes
    custom_attributes: str | None


# A behaviour answers one request on `writer`; True keeps the connection for the next one.
Behaviour = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    """The next request on a keep-alive connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    attributes = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == ECHO_HEADER:
            attributes = value.strip().decode("latin-1")
    try:
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return RawRequest(head, body, attributes)


def response_bytes(
    status: int = 200,
    reason: str = "OK",
    body: bytes = b'{"ok": true}',
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
) -> bytes:
    """A whole response; `content_length` may lie about the body that follows."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def ok_response(request: RawRequest, body: bytes = b'{"ok": true}', **kwargs: object) -> bytes:
    """200 with the variant header and the request's CustomAttributes echoed back."""
    headers = {"Content-Type": "application/json", api.H_INVOKED_VARIANT: "AllTraffic"}
    if request.custom_attributes:
        headers[api.H_CUSTOM_ATTRIBUTES] = request.custom_attributes
    return response_bytes(body=body, headers=headers, **kwargs)  # type: ignore[arg-type]


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN: what a crashed peer looks like."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class RawServer:
    """A server on 127.0.0.1 that can be stopped (every connection reset) and restarted on its port."""

    behaviour: Behaviour
    port: int = 0
    requests: int = 0  # requests read, across restarts
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and reset every open connection, as a crashed process would."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                reset(writer)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while (request := await read_request(reader)) is not None:
                self.requests += 1
                keep = await self.behaviour(request, writer)
                if writer.transport.is_closing():
                    return
                await writer.drain()
                if not keep:
                    writer.close()
                    return
        except (ConnectionError, asyncio.CancelledError):
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()


@asynccontextmanager
async def raw_server(behaviour: Behaviour) -> AsyncIterator[RawServer]:
    """A running RawServer, stopped on exit."""
    server = RawServer(behaviour)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- behaviours ---------------------------------------------------------------------------


async def answer_ok(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok_response(request))
    return True


async def reset_mid_headers(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le")
    await writer.drain()
    await asyncio.sleep(0.01)
    reset(writer)
    return False


async def reset_mid_body(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok_response(request, body=b'{"ok": tr', content_length=100))
    await writer.drain()
    await asyncio.sleep(0.01)
    reset(writer)
    return False


async def garbage(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe not http at all\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.01)
    return False


async def body_longer_than_announced(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    """Content-Length: 5, then 50 bytes; the connection stays open for the next request."""
    writer.write(ok_response(request, body=b"x" * 50, content_length=5))
    return True


def slower_than(delay_s: float) -> Behaviour:
    async def slow(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(delay_s)
        writer.write(ok_response(request))
        return True

    return slow


def error_status(status: int, reason: str, error_type: str | None, body: bytes) -> Behaviour:
    async def error(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        headers = {"Content-Type": "application/json"}
        if error_type is not None:
            headers[api.H_ERROR_TYPE] = error_type
        writer.write(response_bytes(status, reason, body, headers))
        return True

    return error


async def never_answer(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    await asyncio.Event().wait()  # until the connection's task is cancelled
    return False


def huge_body(size: int) -> Behaviour:
    payload = b"x" * size

    async def huge(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok_response(request, body=payload))
        return True

    return huge


# --- streams (InvokeEndpointWithResponseStream) ---------------------------------------------
#
# A streaming answer is a 200 head with `Transfer-Encoding: chunked`, then HTTP chunks whose
# bytes are event-stream messages (loadgen/transport/eventstream_encode.py writes them), cut
# wherever the script says: a chunk may hold half a message or several.


@dataclass(frozen=True)
class Pause:
    """A script step: the server writes nothing for this long."""

    seconds: float


@dataclass(frozen=True)
class Reset:
    """A script step: a TCP reset, there and then; nothing more is written."""


# A script step: bytes are one HTTP chunk's data (the framing is added), as sent.
Step = bytes | Pause | Reset

LAST_CHUNK = b"0\r\n\r\n"


def http_chunk(data: bytes) -> bytes:
    """`data` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def stream_head(request: RawRequest, echo: bool = True) -> bytes:
    """A stream's 200 head, with the variant and (unless `echo` is False) the echo."""
    lines = [
        "HTTP/1.1 200 OK",
        f"Content-Type: {api.EVENT_STREAM_CONTENT_TYPE}",
        "X-Amzn-SageMaker-Content-Type: text/event-stream",
        f"{api.H_INVOKED_VARIANT}: AllTraffic",
        "Transfer-Encoding: chunked",
    ]
    if echo and request.custom_attributes:
        lines.append(f"{api.H_CUSTOM_ATTRIBUTES}: {request.custom_attributes}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def streaming(*steps: Step) -> Behaviour:
    """A stream head, then each step in turn; the last chunk ends it unless a Reset did.
    The head goes out alone, so that a client sees it before the first event."""

    async def stream(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(stream_head(request))
        await writer.drain()
        for step in steps:
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Reset):
                await asyncio.sleep(0.01)  # the bytes before it reach the client first
                reset(writer)
                return False
            else:
                writer.write(http_chunk(step))
                await writer.drain()
        writer.write(LAST_CHUNK)
        return True

    return stream


def by_turns(*behaviours: Behaviour) -> Behaviour:
    """Request n (from 0, in the order the server reads them) gets behaviours[n % len]:
    a run of k * len requests gets each behaviour k times, whatever the concurrency."""
    turn = 0

    async def next_turn(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        nonlocal turn
        behaviour = behaviours[turn % len(behaviours)]
        turn += 1
        return await behaviour(request, writer)

    return next_turn


def by_body(behaviours: dict[bytes, Behaviour]) -> Behaviour:
    """The behaviour named by the request's body: one server, a different fault per call."""

    async def named(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        return await behaviours[request.body](request, writer)

    return named
