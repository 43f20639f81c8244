"""The floor under any streaming client on this machine: a uvloop reader that does nothing
with the bytes.

It keeps `--streams` InvokeEndpointWithResponseStream calls in flight against
bench/stream_server.py, their starts spread over one stream's length as the open loop
spreads them, and throws every read away (a stream ends at the last chunk; then the
connection asks again). What it costs per token event is the kernel's and the event
loop's share of a read (on loopback the receiver also pays for its ACKs), which no
client can avoid while each event comes in its own read. bench/stream.py runs it beside
loadgen and reports its events per CPU-second as the ceiling for the ratio to botocore.

    python bench/stream_floor.py --url http://127.0.0.1:PORT --streams 1000 \
        --stream-s 1.36 --duration 10

Prints one JSON object: {"events", "reads", "cpu_s", "wall_s"} over the measured window
(connecting and the first stream length are left out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from urllib.parse import urlsplit

import uvloop

BODY = b'{"inputs": "Hello", "parameters": {"max_new_tokens": 64}, "stream": true}'
LAST_CHUNK = b"0\r\n\r\n"
TOKEN = b'"token"'  # in every token event's JSON (stream_server.py's TGI events)


class Counts:
    reads = 0
    events = 0


class Reader(asyncio.Protocol):
    """One connection: a request, its response read and dropped, the next request."""

    def __init__(self, request: bytes, counts: Counts) -> None:
        self.request = request
        self.counts = counts
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        counts = self.counts
        counts.reads += 1
        counts.events += data.count(TOKEN)
        if data.endswith(LAST_CHUNK):
            self.send()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(args: argparse.Namespace) -> dict[str, float]:
    url = urlsplit(args.url)
    request = (
        b"POST /endpoints/bench/invocations-response-stream HTTP/1.1\r\n"
        b"Host: %s\r\nContent-Type: application/json\r\n"
        b"X-Amzn-SageMaker-Custom-Attributes: trace=floor\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (url.netloc.encode(), len(BODY), BODY)
    )
    loop = asyncio.get_running_loop()
    counts = Counts()
    readers = []
    for _ in range(args.streams):
        _, reader = await loop.create_connection(
            lambda: Reader(request, counts), url.hostname, url.port
        )
        readers.append(reader)
    spacing_s = args.stream_s / args.streams
    started = time.monotonic()
    for index, reader in enumerate(readers):  # starts spread as the open loop spreads them
        delay = started + index * spacing_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        reader.send()
    await asyncio.sleep(args.stream_s)  # every stream running
    reads, events, cpu, wall = counts.reads, counts.events, cpu_s(), time.monotonic()
    await asyncio.sleep(args.duration)
    return {
        "events": counts.events - events,
        "reads": counts.reads - reads,
        "cpu_s": cpu_s() - cpu,
        "wall_s": time.monotonic() - wall,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--stream-s", type=float, default=1.36)
    parser.add_argument("--duration", type=float, default=10.0)
    print(json.dumps(uvloop.run(main(parser.parse_args()))))
