"""The HTTP/1.1 connection protocol and the pool's bookkeeping, below FastTransport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from loadgen.transport.http11 import (
    ConnectionClosed,
    ConnectionState,
    HTTP11Connection,
    ProtocolViolation,
    ReadTimeout,
    Response,
    header_lines,
)
from loadgen.transport.pool import ConnectionPool, PoolClosed

REQUEST = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --- the pool, without sockets --------------------------------------------------------


class Fake:
    """Stands in for a connection: the pool only reads and writes `state`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = ConnectionState.NEW

    def __repr__(self) -> str:
        return f"<Fake {self.name} {self.state.name}>"


async def test_pool_reserves_up_to_the_limit_then_queues() -> None:
    loop = asyncio.get_running_loop()
    pool: ConnectionPool[Fake] = ConnectionPool(2)
    assert pool.reserve() and pool.reserve()
    assert not pool.reserve()
    a, b = Fake("a"), Fake("b")
    pool.add(a)
    pool.add(b)
    waiter: asyncio.Future[Fake | None] = loop.create_future()
    pool.enqueue(waiter)
    assert repr(pool) == "<ConnectionPool [max=2, open=2, idle=0, reserved=2, waiting=1]>"

    # A released connection goes straight to the first waiter, already ACTIVE.
    a.state = ConnectionState.ACTIVE
    pool.release(a)
    assert waiter.result() is a
    assert a.state is ConnectionState.ACTIVE
    assert pool.idle_count == 0

    # With nobody waiting it becomes IDLE; checkout is LIFO.
    pool.release(a)
    b.state = ConnectionState.ACTIVE
    pool.release(b)
    assert a.state is ConnectionState.IDLE
    assert pool.checkout() is b
    assert b.state is ConnectionState.ACTIVE
    assert pool.checkout() is a
    assert pool.checkout() is None


async def test_pool_closed_connection_frees_its_slot_for_a_waiter() -> None:
    loop = asyncio.get_running_loop()
    pool: ConnectionPool[Fake] = ConnectionPool(1)
    assert pool.reserve()
    a = Fake("a")
    pool.add(a)
    a.state = ConnectionState.ACTIVE
    pool.release(a)  # IDLE
    cancelled: asyncio.Future[Fake | None] = loop.create_future()
    waiter: asyncio.Future[Fake | None] = loop.create_future()
    pool.enqueue(cancelled)
    pool.enqueue(waiter)
    cancelled.cancel()

    a.state = ConnectionState.CLOSED
    pool.closed(a)
    pool.closed(a)  # reported twice: freed once
    assert waiter.result() is None  # a slot, reserved for the waiter: open a new connection
    assert pool.connections == frozenset()
    assert pool.idle_count == 0
    assert not pool.reserve()  # the waiter holds the only slot
    pool.unreserve()  # ...and gives it back
    assert pool.reserve()


async def test_pool_skips_connections_closed_while_idle_and_stops_when_closed() -> None:
    loop = asyncio.get_running_loop()
    pool: ConnectionPool[Fake] = ConnectionPool(3)
    fakes = [Fake(str(i)) for i in range(3)]
    for fake in fakes:
        assert pool.reserve()
        pool.add(fake)
        fake.state = ConnectionState.ACTIVE
        pool.release(fake)
    fakes[2].state = ConnectionState.CLOSED  # closed, not yet reported
    assert pool.checkout() is fakes[1]
    connections, waiters = pool.close()
    assert set(connections) == set(fakes)
    assert waiters == []
    with pytest.raises(PoolClosed):
        pool.reserve()
    with pytest.raises(PoolClosed):
        pool.enqueue(loop.create_future())


def test_header_lines() -> None:
    assert header_lines([("A", "1"), ("B-C", "x y")]) == "A: 1\r\nB-C: x y\r\n"


# --- the protocol, against raw servers -------------------------------------------------


async def serve(handler: Handler) -> tuple[asyncio.Server, list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    return server, tasks


class Conn:
    """An HTTP11Connection to a handler's server, and what the pool would have been told."""

    def __init__(self) -> None:
        self.closed_reports: list[HTTP11Connection] = []
        self.conn: HTTP11Connection


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[Handler], Awaitable[Conn]]]:
    servers: list[tuple[asyncio.Server, list[asyncio.Task[None]]]] = []
    conns: list[Conn] = []

    async def make(handler: Handler) -> Conn:
        server, tasks = await serve(handler)
        servers.append((server, tasks))
        loop = asyncio.get_running_loop()
        holder = Conn()
        holder.conn = HTTP11Connection(loop, holder.closed_reports.append)
        port = server.sockets[0].getsockname()[1]
        await loop.create_connection(lambda: holder.conn, "127.0.0.1", port)
        conns.append(holder)
        return holder

    yield make
    for holder in conns:
        holder.conn.abort()
    for server, tasks in servers:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
    await asyncio.sleep(0)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


async def test_keep_alive_reuses_the_parser_for_each_response(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for index in range(3):
            await read_request(reader)
            body = f"response-{index}".encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nx-amzn-invoked-production-VARIANT: v1\r\n"
                b"X-Amzn-SageMaker-Custom-Attributes: trace=%d\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (index, len(body), body)
            )
        await reader.read()

    holder = await connect(handler)
    conn = holder.conn
    assert repr(conn) == "<HTTP11Connection [NEW, requests=0]>"
    for index in range(3):
        response = await conn.request(REQUEST, 5.0)
        assert (response.status, response.variant, response.echoed) == (
            200,
            "v1",
            f"trace={index}",
        )
        assert response.body is None  # success bodies are counted, not kept
        assert response.body_length == len(f"response-{index}")
    assert repr(conn) == "<HTTP11Connection [ACTIVE, requests=3]>"
    assert conn.is_reused()
    assert not conn.is_closed()


async def test_chunked_error_body_is_kept_and_decoded(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\nX-Amzn-ErrorType: E\r\n\r\n"
        )
        for chunk in (b'{"a":', b" 1", b"}"):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await reader.read()

    holder = await connect(handler)
    response = await holder.conn.request(REQUEST, 5.0)
    assert (response.status, response.error_type, response.body) == (500, "E", b'{"a": 1}')
    assert response.body_length == 8
    assert holder.conn.state is ConnectionState.ACTIVE  # reusable: the pool decides


async def test_bytes_beyond_content_length_close_the_connection(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 No\r\nContent-Length: 5\r\n\r\n" + b"12345" + b"x" * 15)
        await reader.read()

    holder = await connect(handler)
    response = await holder.conn.request(REQUEST, 5.0)
    assert (response.status, response.body, response.body_length) == (503, b"12345", 5)
    assert holder.conn.is_closed()
    assert holder.closed_reports == [holder.conn]


async def test_eof_delimited_body_ends_at_close(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nX-Amzn-Invoked-Production-Variant: old\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"def")
        writer.close()

    holder = await connect(handler)
    response = await holder.conn.request(REQUEST, 5.0)
    assert (response.status, response.variant, response.body_length) == (200, "old", 6)
    assert holder.conn.is_closed()
    assert holder.closed_reports == [holder.conn]


async def test_truncated_body_is_a_closed_connection_not_retryable(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\nshort")
        writer.close()

    holder = await connect(handler)
    with pytest.raises(ConnectionClosed) as caught:
        await holder.conn.request(REQUEST, 5.0)
    assert caught.value.retryable is False
    assert holder.conn.is_closed()
    with pytest.raises(ConnectionClosed) as again:
        holder.conn.request(REQUEST, 5.0)
    assert again.value.retryable is True  # never sent
    assert holder.closed_reports == [holder.conn]


async def test_garbage_is_a_protocol_violation(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await reader.read()

    holder = await connect(handler)
    with pytest.raises(ProtocolViolation):
        await holder.conn.request(REQUEST, 5.0)
    assert holder.conn.is_closed()


async def test_read_timeout_fires_once_and_closes(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()

    holder = await connect(handler)
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        await holder.conn.request(REQUEST, 0.2)
    assert 0.2 <= time.monotonic() - started < 0.7
    assert holder.conn.is_closed()
    assert holder.closed_reports == [holder.conn]


async def test_unrequested_bytes_on_an_idle_connection_close_it(connect) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await reader.read()

    holder = await connect(handler)
    response = await holder.conn.request(REQUEST, 5.0)
    assert isinstance(response, Response)
    assert (response.status, response.body_length) == (204, 0)
    for _ in range(50):
        if holder.conn.is_closed():
            break
        await asyncio.sleep(0.01)
    assert holder.conn.is_closed()


# --- however the bytes arrive, the same outcome -----------------------------------------


class _Sink(asyncio.Transport):
    """A transport that swallows writes: the responses are fed by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


WHOLE_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"X-Amzn-SageMaker-Custom-Attributes: trace=1\r\nX-Amzn-Invoked-Production-Variant: v1\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nx-amzn-sagemaker-custom-attributes:\t a=1 \r\ncontent-length:  0 \r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Amzn-SageMaker-Custom-Attributes: first\r\n"
    b"X-AMZN-SAGEMAKER-CUSTOM-ATTRIBUTES: second\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nX-Amzn-SageMaker-Custom-Attributes:\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nX-Amzn-SageMaker-Custom-Attributes-Extra: no\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nX-Amzn-ErrorType: Odd\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive \r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nConnection: upgrade\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxy",
    b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 204 No Content\r\nX-Amzn-SageMaker-Custom-Attributes: t\r\n\r\n",
    b"HTTP/1.1 424 Failed\r\nX-Amzn-ErrorType: ModelError\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
]


def _outcome_of_feeding(chunks: list[bytes]) -> tuple[object, bool]:
    """Feed a fresh connection one request's response in these chunks, twice in a row
    (keep-alive reuse), and return what its futures gave and whether it ended closed."""
    loop = asyncio.new_event_loop()
    try:
        conn = HTTP11Connection(loop, lambda c: None)
        conn.connection_made(_Sink())
        results: list[object] = []
        for _ in range(2):
            if conn.is_closed():
                break
            future = conn.request(REQUEST, 5.0)
            for chunk in chunks:
                if not future.done():
                    conn.data_received(chunk)
            if not future.done():
                conn.connection_lost(None)
            if future.exception() is not None:
                results.append(type(future.exception()))
            else:
                r = future.result()
                results.append((r.status, r.variant, r.echoed, r.error_type, r.body, r.body_length))
            if not conn.is_closed():
                conn.state = ConnectionState.IDLE  # as the pool's release would
        return results, conn.is_closed()
    finally:
        loop.close()


@pytest.mark.parametrize("raw", WHOLE_RESPONSES)
def test_a_response_in_one_segment_or_two_gives_the_same_outcome(raw: bytes) -> None:
    assert _outcome_of_feeding([raw]) == _outcome_of_feeding([raw[:1], raw[1:]])
