"""A streaming endpoint on a fixed schedule, cheap enough not to be what a benchmark measures.

Answers `POST /endpoints/<name>/invocations-response-stream` as
InvokeEndpointWithResponseStream: the head at once (200, chunked, the request's
`X-Amzn-SageMaker-Custom-Attributes` echoed), then N TGI-style SSE token events, each one
PayloadPart in one HTTP chunk: the first D ms after the request arrived, then one every
G ms. The last token's event says `details.generated_tokens: N`; `data: [DONE]` and the
last chunk go out with it. `GET /stats` answers how late the events went out and how much
CPU this process used since the last `GET /stats` (JSON; each read starts a new count).

Cheap because nothing is per stream but its state: the N chunks are encoded once at start;
one timer (a timerfd, armed to the nanosecond: uvloop's timers have 1 ms steps) serves
every stream, and wakes at most every --min-wake-us; two FIFO queues stand in for a heap,
since every stream's events are due in arrival order (first tokens at arrival + D, the
rest at the previous event + G, popped and pushed in due order). Each event is one write.

    python bench/stream_server.py [--port 0] [--first-token-ms 100] [--gap-ms 20]
                                  [--tokens 64] [--min-wake-us 100]

Prints `listening on http://127.0.0.1:PORT` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import time
from array import array
from collections import deque
from dataclasses import asdict, dataclass

import httptools
import uvloop

from loadgen.mock.streaming import token_event
from loadgen.transport.eventstream_encode import encode_payload_part

STREAM_SUFFIX = b"/invocations-response-stream"
ECHO_HEADER = b"x-amzn-sagemaker-custom-attributes"
HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/vnd.amazon.eventstream\r\n"
    b"X-Amzn-SageMaker-Content-Type: text/event-stream\r\n"
    b"X-Amzn-Invoked-Production-Variant: AllTraffic\r\n"
    b"Transfer-Encoding: chunked\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


# --- the timer ---------------------------------------------------------------------------


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_CLOCK_MONOTONIC = 1  # time.monotonic_ns() reads the same clock
_TFD_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1
_PR_SET_TIMERSLACK = 29


class TimerFd:
    """A Linux timerfd on CLOCK_MONOTONIC, armed at absolute nanosecond times."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self._spec = _Itimerspec()
        self._settime = self._libc.timerfd_settime
        self._ref = ctypes.byref(self._spec)

    def arm(self, at_ns: int) -> None:
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(max(at_ns, 1), 1_000_000_000)
        if self._settime(self.fd, _TFD_TIMER_ABSTIME, self._ref, None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def clear(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass  # woken for an expiry that a re-arm already replaced


# --- streams -----------------------------------------------------------------------------


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def encode_chunks(tokens: int) -> list[bytes]:
    """What each token's write sends: its event as one PayloadPart in one HTTP chunk; the
    last one with `data: [DONE]` and the body's end."""
    chunks = [
        chunk(encode_payload_part(token_event("sse", index, index == tokens - 1, tokens)))
        for index in range(tokens)
    ]
    chunks[-1] += chunk(encode_payload_part(b"data: [DONE]\n\n")) + b"0\r\n\r\n"
    return chunks


class Stream:
    __slots__ = ("transport", "due_ns", "sent", "alive")

    def __init__(self, transport: asyncio.Transport, due_ns: int) -> None:
        self.transport = transport
        self.due_ns = due_ns  # the next event's scheduled time
        self.sent = 0  # events written so far
        self.alive = True  # the connection is open


@dataclass(frozen=True)
class Lateness:
    """Write time minus due time, µs."""

    p50: int
    p99: int
    max: int

    @classmethod
    def of(cls, values: array[int]) -> Lateness | None:
        if not values:
            return None
        ordered = sorted(values)
        last = len(ordered) - 1
        return cls(ordered[round(last * 0.50)], ordered[round(last * 0.99)], ordered[last])


@dataclass(frozen=True)
class ServerStats:
    """What `GET /stats` answers (as JSON): the server since the previous `GET /stats`."""

    wall_s: float
    cpu_s: float
    cpu_share: float  # CPU time over wall time
    streams: int  # started
    events: int  # token events written
    wakes: int  # of the timer
    first_token_late: Lateness | None
    event_late: Lateness | None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ServerStats:
        fields = json.loads(data)
        for name in ("first_token_late", "event_late"):
            if fields[name] is not None:
                fields[name] = Lateness(**fields[name])
        return cls(**fields)


class Stats:
    """Counts since the last `GET /stats`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.events_late_us = array("q")
        self.first_late_us = array("q")
        self.streams = 0
        self.wakes = 0
        self.cpu_s = time.process_time()
        self.wall_s = time.monotonic()

    def report(self) -> ServerStats:
        """What was counted so far; counting starts again."""
        wall = time.monotonic() - self.wall_s
        cpu = time.process_time() - self.cpu_s
        report = ServerStats(
            wall_s=round(wall, 3),
            cpu_s=round(cpu, 3),
            cpu_share=round(cpu / wall, 3) if wall > 0 else 0.0,
            streams=self.streams,
            events=len(self.events_late_us),
            wakes=self.wakes,
            first_token_late=Lateness.of(self.first_late_us),
            event_late=Lateness.of(self.events_late_us),
        )
        self.reset()
        return report


class Scheduler:
    """Every stream's events, written when due from one timer."""

    def __init__(self, first_token_ns: int, gap_ns: int, tokens: int, min_wake_ns: int) -> None:
        self.first_token_ns = first_token_ns
        self.gap_ns = gap_ns
        self.chunks = encode_chunks(tokens)
        self.min_wake_ns = min_wake_ns
        self.stats = Stats()
        # Both in due order: new streams by arrival, the rest by their last event + gap.
        self.first: deque[Stream] = deque()
        self.rest: deque[Stream] = deque()
        self.timer = TimerFd()
        self.armed_ns = 0  # the timer's expiry, 0 when disarmed
        asyncio.get_running_loop().add_reader(self.timer.fd, self.wake)

    def start(self, transport: asyncio.Transport, arrived_ns: int) -> Stream:
        stream = Stream(transport, arrived_ns + self.first_token_ns)
        self.first.append(stream)
        self.stats.streams += 1
        if not self.armed_ns or stream.due_ns < self.armed_ns:
            self._arm(stream.due_ns)
        return stream

    def _arm(self, at_ns: int) -> None:
        self.armed_ns = at_ns
        self.timer.arm(at_ns)

    def wake(self) -> None:
        self.timer.clear()
        self.armed_ns = 0
        stats = self.stats
        stats.wakes += 1
        first, rest = self.first, self.rest
        chunks, last, gap = self.chunks, len(self.chunks) - 1, self.gap_ns
        events_late, first_late = stats.events_late_us.append, stats.first_late_us.append
        clock = time.monotonic_ns
        now = clock()
        while True:
            if first and (not rest or first[0].due_ns <= rest[0].due_ns):
                queue = first
            elif rest:
                queue = rest
            else:
                return  # nothing scheduled: the next stream arms the timer
            stream = queue[0]
            if stream.due_ns > now:
                now = clock()  # writing took time: what else is due by now?
                if stream.due_ns > now:
                    break
            queue.popleft()
            if not stream.alive:
                continue
            index = stream.sent
            stream.transport.write(chunks[index])
            late_us = (clock() - stream.due_ns) // 1000
            events_late(late_us)
            if not index:
                first_late(late_us)
            if index < last:
                stream.sent = index + 1
                stream.due_ns += gap
                rest.append(stream)
            else:
                stream.alive = False  # done; the connection is free for the next request
        # Due next: the head of either queue, but not sooner than min_wake after now, so
        # events due close together go out in one wake.
        due = min(q[0].due_ns for q in (first, rest) if q)
        self._arm(max(due, now + self.min_wake_ns))


# --- HTTP --------------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One client connection: requests parsed by httptools, one stream at a time."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.echo: bytes | None = None
        self.stream: Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None:
            self.stream.alive = False  # the scheduler drops it when it comes due

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.echo = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == ECHO_HEADER:
            self.echo = value

    def on_message_complete(self) -> None:
        arrived_ns = time.monotonic_ns()
        transport = self.transport
        assert transport is not None
        method = self.parser.get_method()
        if method == b"POST" and self.url.endswith(STREAM_SUFFIX):
            echo = self.echo
            head = HEAD if echo is None else HEAD + ECHO_HEADER + b": " + echo + b"\r\n"
            transport.write(head + b"\r\n")
            self.stream = self.scheduler.start(transport, arrived_ns)
        elif method == b"GET" and self.url == b"/stats":
            body = self.scheduler.stats.report().to_json()
            transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
            )
            transport.close()
        else:
            transport.write(NOT_FOUND)


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(
        round(args.first_token_ms * 1e6),
        round(args.gap_ms * 1e6),
        args.tokens,
        round(args.min_wake_us * 1e3),
    )
    server = await loop.create_server(
        lambda: Connection(scheduler), "127.0.0.1", args.port, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await server.serve_forever()


def no_timer_slack() -> None:
    """Timers here fire to the µs: Linux otherwise lets them slip by 50 µs (best effort)."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (AttributeError, OSError):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--first-token-ms", type=float, default=100.0, help="D")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="G")
    parser.add_argument("--tokens", type=int, default=64, help="N")
    parser.add_argument("--min-wake-us", type=float, default=100.0)
    args = parser.parse_args()
    if args.tokens <= 0 or args.first_token_ms < 0 or args.gap_ms < 0:
        parser.error("--tokens must be > 0, --first-token-ms and --gap-ms >= 0")
    no_timer_slack()
    try:
        uvloop.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
