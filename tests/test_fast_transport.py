"""FastTransport against purpose-built servers on 127.0.0.1 that misbehave on cue."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from loadgen import api
from loadgen.transport.base import Outcome, Request, Target
from loadgen.transport.credentials import CredentialSource
from loadgen.transport.encode import Origin, encode_request, outcome_of, prepare_target
from loadgen.transport.fast import FastTransport
from loadgen.transport.http11 import Response

TARGET = Target(label="ep", endpoint_name="my-ep", accept="application/json")
VARIANT_TARGET = Target(label="ep/v2", endpoint_name="my-ep", target_variant="v2")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def request(index: int = 0, target: Target = TARGET, body: bytes = b'{"x":1}') -> Request:
    return Request(target, body, f"t{index}", f"trace=t{index}")


# --- raw servers -----------------------------------------------------------------------


class RawServer:
    """asyncio.start_server running `handler` per connection; counts accepts and concurrency."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.accepts = 0
        self.active = 0
        self.max_active = 0
        self.requests: list[tuple[bytes, dict[str, str], bytes]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(
            self._on_client, "127.0.0.1", 0, ssl=self.ssl_context
        )
        port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        return self

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        self.accepts += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.active -= 1
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes]:
        """One request: lowercased headers and body; records it."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((lines[0].encode(), headers, body))
        return headers, body

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


def response(
    status: int = 200,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    reason: str = "X",
) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (
        f"HTTP/1.1 {status} {reason}\r\n{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body
    )


def ok_response(headers: dict[str, str]) -> bytes:
    echo = headers.get(api.H_CUSTOM_ATTRIBUTES.lower(), "")
    return response(
        200,
        ((api.H_INVOKED_VARIANT, "AllTraffic"), (api.H_CUSTOM_ATTRIBUTES, echo)),
        b'{"ok":true}',
    )


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    await h.close()


class Harness:
    """Starts servers and transports for a test and closes them all afterwards."""

    def __init__(self) -> None:
        self.servers: list[RawServer] = []
        self.transports: list[FastTransport] = []

    async def server(
        self,
        handler_for: Callable[[RawServer], Handler],
        ssl_context: ssl.SSLContext | None = None,
    ) -> RawServer:
        box: list[RawServer] = []
        server = RawServer(lambda r, w: handler_for(box[0])(r, w), ssl_context)
        box.append(server)
        self.servers.append(server)
        return await server.start()

    async def transport(self, url: str, **options: object) -> FastTransport:
        settings: dict[str, object] = {
            "endpoint_url": url,
            "region": "us-east-1",
            "credentials": CredentialSource.static("AKIDEXAMPLE", "secret"),
            "max_connections": 4,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
        }
        settings.update(options)
        transport = FastTransport(**settings)  # type: ignore[arg-type]
        await transport.start()
        self.transports.append(transport)
        return transport

    async def close(self) -> None:
        for transport in self.transports:
            await transport.close()
        for server in self.servers:
            await server.close()


def serving(
    respond: Callable[[RawServer, dict[str, str]], bytes],
) -> Callable[[RawServer], Handler]:
    """A keep-alive handler answering each request with respond(server, headers)."""

    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                headers, _ = await server.read_request(reader)
                writer.write(respond(server, headers))

        return handler

    return handler_for


# --- pure parts: request bytes, outcomes -----------------------------------------------


def test_origin_parses_ports_and_host_header() -> None:
    assert Origin.parse("http://127.0.0.1:8080") == Origin(
        "http", "127.0.0.1", 8080, "127.0.0.1:8080"
    )
    assert Origin.parse("https://runtime.sagemaker.us-east-1.amazonaws.com/") == Origin(
        "https",
        "runtime.sagemaker.us-east-1.amazonaws.com",
        443,
        "runtime.sagemaker.us-east-1.amazonaws.com",
    )
    assert Origin.parse("http://[::1]:80").host_header == "[::1]"
    for bad in ("ftp://x", "http://", "http://h/path"):
        with pytest.raises(ValueError):
            Origin.parse(bad)


def test_request_bytes_fixed_vector() -> None:
    prepared = prepare_target(VARIANT_TARGET, "h:81")
    assert prepared.path == "/endpoints/my-ep/invocations"
    assert prepared.head == (
        b"POST /endpoints/my-ep/invocations HTTP/1.1\r\n"
        b"Host: h:81\r\n"
        b"User-Agent: loadgen/0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"X-Amzn-SageMaker-Target-Variant: v2\r\n"
    )
    assert prepared.signed == (
        ("Content-Type", "application/json"),
        ("X-Amzn-SageMaker-Target-Variant", "v2"),
    )
    data = encode_request(prepared, "trace=1", b"{}", [("X-Amz-Date", "D"), ("Authorization", "A")])
    assert data == prepared.head + (
        b"X-Amzn-SageMaker-Custom-Attributes: trace=1\r\n"
        b"Content-Length: 2\r\n"
        b"X-Amz-Date: D\r\n"
        b"Authorization: A\r\n"
        b"\r\n{}"
    )
    # Empty attributes are not sent; a large body is left for a separate write.
    assert encode_request(prepared, "", b"x" * 70000, []) == prepared.head + (
        b"Content-Length: 70000\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("status", "header", "body", "error", "original"),
    [
        (200, None, b"", None, None),
        (
            424,
            "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/",
            b'{"ErrorCode":"CLIENT_ERROR_FROM_MODEL","OriginalStatusCode":500,"OriginalMessage":"x"}',
            "ModelError",
            500,
        ),
        (
            400,
            None,
            b'{"__type":"com.amazon.coral.availability#ThrottlingException"}',
            "ThrottlingException",
            None,
        ),
        (400, None, b'{"code":"ValidationError","__type":"Other"}', "ValidationError", None),
        (503, None, b'{"Code":"ServiceUnavailable:http://x"}', "ServiceUnavailable", None),
        (424, "ModelError", b'{"OriginalStatusCode":"404"}', "ModelError", 404),
        (502, None, b"<html>Bad Gateway</html>", "HTTP502", None),
        (500, None, b"[1, 2]", "HTTP500", None),
        (500, None, b"\xff\xfe", "HTTP500", None),
    ],
)
def test_outcome_of_error_codes_like_botocore(
    status: int, header: str | None, body: bytes, error: str | None, original: int | None
) -> None:
    outcome = outcome_of(Response(status, "v", "e", header, body if status >= 300 else None, 0))
    assert outcome == Outcome(status, error, "v", "e", original)


# --- against servers ---------------------------------------------------------------------


async def test_ok_echoes_attributes_and_variant_and_signs(harness: Harness) -> None:
    server = await harness.server(serving(lambda s, h: ok_response(h)))
    transport = await harness.transport(server.url)
    outcome = await transport.invoke(request(7))
    assert outcome == Outcome(200, None, "AllTraffic", "trace=t7", None)

    line, headers, body = server.requests[0]
    assert line == b"POST /endpoints/my-ep/invocations HTTP/1.1"
    assert body == b'{"x":1}'
    assert headers["host"] == server.url.removeprefix("http://")
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["x-amzn-sagemaker-custom-attributes"] == "trace=t7"
    assert headers["content-length"] == "7"
    assert headers["user-agent"] == "loadgen/0.1"
    assert len(headers["x-amz-date"]) == 16
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert (
        "SignedHeaders=accept;content-type;host;x-amz-date;x-amzn-sagemaker-custom-attributes,"
        in headers["authorization"]
    )


@pytest.mark.parametrize("token", [None, "session-token"])
async def test_signed_bytes_equal_full_signing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    """The per-target signing template (and the C build from it) gives the very bytes of
    encode_request + sign."""
    from loadgen.transport.http11 import HTTP11Connection
    from loadgen.transport.sigv4 import Credentials, SigV4Signer

    server = await harness.server(serving(lambda s, h: ok_response(h)))
    credentials = CredentialSource.static("AKIDEXAMPLE", "secret", token)
    transport = await harness.transport(
        server.url, credentials=credentials, clock=lambda: 1_700_000_000.25
    )
    sent: list[bytes] = []
    real_request = HTTP11Connection.request

    def recording(self: HTTP11Connection, data: bytes, *args: object) -> object:
        sent.append(data)
        return real_request(self, data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(HTTP11Connection, "request", recording)
    host = server.url.removeprefix("http://")
    signer = SigV4Signer("us-east-1")
    cases = [
        Request(TARGET, b'{"x":1}', "t1", "trace=t1"),
        Request(VARIANT_TARGET, b"", "t2", ""),
        Request(TARGET, b"a b", "t3", "  spaced   out  "),
        Request(VARIANT_TARGET, b"x" * 70_000, "t4", "trace=t4"),
        Request(TARGET, b'{"x":1}', "t5", "trace=t5"),  # plan and body hash cached: C
    ]
    for case in cases:
        outcome = await transport.invoke(case)
        assert outcome.status == 200
        prepared = prepare_target(case.target, host)
        signed = list(prepared.signed)
        if case.custom_attributes:
            signed.append((api.H_CUSTOM_ATTRIBUTES, case.custom_attributes))
        signature = signer.sign(
            "POST",
            host,
            prepared.path,
            signed,
            case.body,
            Credentials("AKIDEXAMPLE", "secret", token),
            1_700_000_000.25,
        )
        assert sent[-1] == encode_request(prepared, case.custom_attributes, case.body, signature)


async def test_error_responses_over_the_wire(harness: Harness) -> None:
    answers = [
        response(
            424,
            (("x-amzn-ErrorType", "ModelError:http://internal.amazon.com/coral/x/"),),
            json.dumps({"OriginalStatusCode": 418, "OriginalMessage": "teapot"}).encode(),
        ),
        response(400, (), b'{"__type":"com.amazon.coral.availability#ThrottlingException"}'),
        response(502, (("Content-Type", "text/html"),), b"<h1>bad gateway</h1>"),
    ]
    server = await harness.server(serving(lambda s, h: answers[len(s.requests) - 1]))
    transport = await harness.transport(server.url)
    outcomes = [await transport.invoke(request(i)) for i in range(3)]
    assert outcomes == [
        Outcome(424, "ModelError", None, None, 418),
        Outcome(400, "ThrottlingException", None, None, None),
        Outcome(502, "HTTP502", None, None, None),
    ]
    assert server.accepts == 1  # error responses keep the connection


async def test_chunked_responses(harness: Harness) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                headers, _ = await server.read_request(reader)
                echo = headers[api.H_CUSTOM_ATTRIBUTES.lower()]
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                    + f"{api.H_CUSTOM_ATTRIBUTES}: {echo}\r\n\r\n".encode()
                )
                for chunk in (b'{"out', b'puts": [1, 2', b", 3]}"):
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                    await asyncio.sleep(0.005)
                writer.write(b"0\r\n\r\n")

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url)
    for index in range(3):
        assert await transport.invoke(request(index)) == Outcome(200, None, None, f"trace=t{index}")
    assert server.accepts == 1


@pytest.mark.parametrize("announce", [True, False], ids=["connection-close", "silent-close"])
async def test_server_closing_after_each_response(harness: Harness, announce: bool) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            headers, _ = await server.read_request(reader)
            extra = (("Connection", "close"),) if announce else ()
            echo = headers[api.H_CUSTOM_ATTRIBUTES.lower()]
            writer.write(response(200, ((api.H_CUSTOM_ATTRIBUTES, echo), *extra), b"{}"))
            await writer.drain()

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url)
    outcomes = [await transport.invoke(request(i)) for i in range(50)]
    assert [o.echoed for o in outcomes] == [f"trace=t{i}" for i in range(50)]
    assert [o.error for o in outcomes] == [None] * 50
    assert server.accepts == 50
    assert len(server.requests) == 50  # retries only ever resend unanswered requests


async def test_retry_on_stale_keep_alive_happens_once(harness: Harness) -> None:
    """A server that answers the first request on each connection and then drops every
    later one unread: the stale request is retried once on a fresh connection."""

    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            headers, _ = await server.read_request(reader)
            writer.write(ok_response(headers))
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the next request: drop it
            writer.transport.abort()

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url, max_connections=1)
    outcomes = [await transport.invoke(request(i)) for i in range(5)]
    assert [o.echoed for o in outcomes] == [f"trace=t{i}" for i in range(5)]
    assert server.accepts == 5


async def test_reset_mid_body_then_recovers(harness: Harness) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            headers, _ = await server.read_request(reader)
            if server.accepts == 1:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                await writer.drain()
                await asyncio.sleep(0.02)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            writer.write(ok_response(headers))
            while True:
                headers, _ = await server.read_request(reader)
                writer.write(ok_response(headers))

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url)
    assert await transport.invoke(request(1)) == Outcome(error=api.CONNECTION_ERROR)
    assert await transport.invoke(request(2)) == Outcome(200, None, "AllTraffic", "trace=t2")
    assert server.accepts == 2


async def test_read_timeout(harness: Harness) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            await reader.read()  # never answers

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url, read_timeout=0.3)
    started = time.monotonic()
    assert await transport.invoke(request()) == Outcome(error=api.TIMEOUT)
    assert time.monotonic() - started < 0.3 + 0.5
    assert transport.pool.connections == frozenset()  # the timed-out connection was closed


async def test_connection_refused(harness: Harness) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = await harness.transport(f"http://127.0.0.1:{port}")
    started = time.monotonic()
    assert await transport.invoke(request()) == Outcome(error=api.CONNECTION_ERROR)
    assert time.monotonic() - started < 1.0
    assert repr(transport.pool) == (
        "<ConnectionPool [max=4, open=0, idle=0, reserved=0, waiting=0]>"
    )


async def test_garbage_is_a_protocol_error(harness: Harness) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"\x00\x01 this is not HTTP at all\r\n\r\n")
            await reader.read()

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url)
    assert await transport.invoke(request()) == Outcome(error=api.PROTOCOL_ERROR)


async def test_body_longer_than_announced_does_not_desync(harness: Harness) -> None:
    def respond(server: RawServer, headers: dict[str, str]) -> bytes:
        echo = headers[api.H_CUSTOM_ATTRIBUTES.lower()]
        head = f"HTTP/1.1 200 OK\r\n{api.H_CUSTOM_ATTRIBUTES}: {echo}\r\nContent-Length: 5\r\n\r\n"
        # 20 bytes for 5 announced; the extra looks like the start of another response.
        return head.encode() + b"12345HTTP/1.1 200 OK\r"

    server = await harness.server(serving(respond))
    transport = await harness.transport(server.url)
    first = await transport.invoke(request(1))
    second = await transport.invoke(request(2))
    assert (first.status, first.echoed) == (200, "trace=t1")
    assert (second.status, second.echoed) == (200, "trace=t2")
    assert server.accepts == 2  # not reused after the overrun


async def test_pool_never_exceeds_max_connections(harness: Harness) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                headers, _ = await server.read_request(reader)
                await asyncio.sleep(0.002)
                writer.write(ok_response(headers))

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url, max_connections=8)
    outcomes = await asyncio.gather(*(transport.invoke(request(i)) for i in range(200)))
    assert [o.echoed for o in outcomes] == [f"trace=t{i}" for i in range(200)]
    assert server.accepts == 8
    assert server.max_active == 8
    assert transport.pool.idle_count == 8


async def test_warm_opens_idle_connections_up_to_the_pool_and_requests_reuse_them(
    harness: Harness,
) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                headers, _ = await server.read_request(reader)
                writer.write(ok_response(headers))

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url, max_connections=4)
    await transport.warm(3)
    assert transport.pool.idle_count == 3
    await transport.warm(10)  # the pool holds 4: one more
    assert transport.pool.idle_count == 4 and server.accepts == 4
    outcomes = await asyncio.gather(*(transport.invoke(request(i)) for i in range(4)))
    assert [o.error for o in outcomes] == [None] * 4 and server.accepts == 4
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = await harness.transport(f"http://127.0.0.1:{port}")
    await refused.warm(2)  # nothing opened, nothing raised, every slot free again
    assert repr(refused.pool) == "<ConnectionPool [max=4, open=0, idle=0, reserved=0, waiting=0]>"


async def test_cancelled_invoke_propagates_and_frees_its_connection(harness: Harness) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            await reader.read()

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url, max_connections=1)
    first = asyncio.ensure_future(transport.invoke(request(1)))
    queued = asyncio.ensure_future(transport.invoke(request(2)))  # waits for the only slot
    await asyncio.sleep(0.05)
    first.cancel()
    queued.cancel()
    for task in (first, queued):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert transport.pool.connections == frozenset()
    assert repr(transport.pool) == "<ConnectionPool [max=1, open=0, idle=0, reserved=0, waiting=0]>"


async def test_http10_response_closes_the_connection(harness: Harness) -> None:
    def handler_for(server: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            headers, _ = await server.read_request(reader)
            echo = headers[api.H_CUSTOM_ATTRIBUTES.lower()]
            writer.write(
                f"HTTP/1.0 200 OK\r\n{api.H_CUSTOM_ATTRIBUTES}: {echo}\r\n\r\n{{}}".encode()
            )
            await writer.drain()

        return handler

    server = await harness.server(handler_for)
    transport = await harness.transport(server.url)
    outcomes = [await transport.invoke(request(i)) for i in range(3)]
    assert [o.echoed for o in outcomes] == ["trace=t0", "trace=t1", "trace=t2"]
    assert server.accepts == 3


async def test_large_body_is_sent_whole(harness: Harness) -> None:
    server = await harness.server(serving(lambda s, h: ok_response(h)))
    transport = await harness.transport(server.url)
    body = bytes(range(256)) * 4096  # 1 MiB
    outcome = await transport.invoke(request(1, body=body))
    assert (outcome.status, outcome.error) == (200, None)
    assert server.requests[0][2] == body


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-days", "1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_verification(harness: Harness, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await harness.server(serving(lambda s, h: ok_response(h)), ssl_context=context)
    assert server.url.startswith("https://")

    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: None)  # server-side noise
    refused = await harness.transport(server.url)
    assert await refused.invoke(request()) == Outcome(error=api.TLS_ERROR)
    assert refused.pool.connections == frozenset()

    unverified = await harness.transport(server.url, verify=False)
    pinned = await harness.transport(server.url, ca_file=str(cert))
    for transport in (unverified, pinned):
        for index in range(2):
            assert await transport.invoke(request(index)) == Outcome(
                200, None, "AllTraffic", f"trace=t{index}"
            )


# --- the mock endpoint (SigV4 verified with botocore) ------------------------------------


async def test_against_the_mock_with_signature_verification(harness: Harness) -> None:
    from loadgen.mock.config import LatencySpec, MockConfig
    from loadgen.mock.server import start_mock

    mock = await start_mock(
        MockConfig(
            access_key="AKIDEXAMPLE",
            secret_key="secret",
            latency_ms=LatencySpec(median=0.0, p99=0.0),
        )
    )
    try:
        good = await harness.transport(mock.url)
        for target in (TARGET, VARIANT_TARGET):
            outcome = await good.invoke(request(3, target=target))
            assert (outcome.status, outcome.error, outcome.echoed) == (200, None, "trace=t3")
        assert (await good.invoke(Request(TARGET, b"", "t", ""))).status == 200

        wrong = await harness.transport(
            mock.url, credentials=CredentialSource.static("AKIDEXAMPLE", "not-the-secret")
        )
        outcome = await wrong.invoke(request(4))
        assert (outcome.status, outcome.error) == (403, "InvalidSignatureException")
    finally:
        for transport in harness.transports:
            await transport.close()
        harness.transports.clear()
        await mock.close()


# --- the same transport on uvloop, the loop it runs on in production ----------------------


def test_on_uvloop() -> None:
    async def scenario() -> None:
        harness = Harness()
        try:
            server = await harness.server(serving(lambda s, h: ok_response(h)))
            transport = await harness.transport(server.url, max_connections=8)
            outcomes = await asyncio.gather(*(transport.invoke(request(i)) for i in range(100)))
            assert [o.echoed for o in outcomes] == [f"trace=t{i}" for i in range(100)]
            assert server.accepts == 8

            closing = await harness.server(lambda s: _close_after_one(s))
            transport = await harness.transport(closing.url, max_connections=1)
            outcomes = [await transport.invoke(request(i)) for i in range(20)]
            assert [o.error for o in outcomes] == [None] * 20
            assert closing.accepts == 20
        finally:
            await harness.close()

    uvloop.run(scenario())


def _close_after_one(server: RawServer) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers, _ = await server.read_request(reader)
        writer.write(ok_response(headers))
        await writer.drain()

    return handler
