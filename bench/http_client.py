"""Requests per second of FastTransport against a minimal HTTP/1.1 server.

The server is a bare asyncio.Protocol on uvloop in a child process (so it gets its own
core) answering every request with fixed bytes, or nginx if given with --url. The client
runs N closed-loop workers over `--connections` keep-alive connections for `--seconds`.

    .venv/bin/python bench/http_client.py [--connections 64] [--seconds 3] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time

import uvloop

from loadgen.transport.base import Request, Target
from loadgen.transport.fast import FastTransport
from loadgen.transport.sigv4 import Credentials

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"X-Amzn-Invoked-Production-Variant: AllTraffic\r\n"
    b"X-Amzn-SageMaker-Custom-Attributes: trace=bench\r\n"
    b"Content-Length: 11\r\n"
    b"\r\n"
    b'{"ok":true}'
)


class _Responder(asyncio.Protocol):
    """Answers each request once its head has arrived (bodies here are tiny)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # One answer per request; the bench sends one request per connection at a time.
        self.transport.write(RESPONSE)  # type: ignore[attr-defined]


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Responder, sock=sock)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


class _StaticCredentials:
    def current(self) -> Credentials:
        return Credentials("AKIDEXAMPLE", "secret")


async def _run(url: str, connections: int, seconds: float) -> tuple[int, int]:
    transport = FastTransport(
        endpoint_url=url,
        region="us-east-1",
        credentials=_StaticCredentials(),  # type: ignore[arg-type]
        max_connections=connections,
        connect_timeout=2.0,
        read_timeout=5.0,
    )
    await transport.start()
    target = Target(label="bench", endpoint_name="bench")
    ok = errors = 0
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal ok, errors
        request = Request(target, b'{"x":1}', f"t{index}", f"trace=t{index}")
        while time.monotonic() < deadline:
            outcome = await transport.invoke(request)
            if outcome.error is None:
                ok += 1
            else:
                errors += 1

    await asyncio.gather(*(worker(i) for i in range(connections)))
    await transport.close()
    return ok, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--url", help="benchmark this server instead (e.g. nginx)")
    args = parser.parse_args()

    child = None
    url = args.url
    if url is None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        child = multiprocessing.get_context("fork").Process(target=_serve, args=(sock,))
        child.start()
        sock.close()
    try:
        started = time.perf_counter()
        cpu_started = time.process_time()
        ok, errors = uvloop.run(_run(url, args.connections, args.seconds))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        if child is not None:
            child.terminate()
            child.join()
    print(
        f"FastTransport: {ok / elapsed:,.0f} req/s ({ok} ok, {errors} errors, "
        f"{args.connections} connections, {elapsed:.1f} s); "
        f"client CPU {cpu / max(ok + errors, 1) * 1e6:.1f} µs/request"
    )


if __name__ == "__main__":
    main()
