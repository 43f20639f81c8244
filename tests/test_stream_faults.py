"""A misbehaving stream is counted as issue 13 says, alike on both transports, never a crash.

Each fault is a raw server from tests/faulty.py writing a chunked InvokeEndpointWithResponseStream
answer by hand, its event-stream messages cut where the test says. The runs go through
`run_scenario` and alternate a good stream with the fault (`by_turns`), so the summary's counts
are exact: a failed stream's tokens would show in `output_tokens`. The last test sends every
fault to both transports, call for call, and holds their outcomes to one table.

The rules: a stream cut mid-way is a ConnectionError; silence longer than the idle timeout
(`load.stream_idle_timeout`, else `load.timeout`) is a Timeout, and only silence counts, not
the stream's length; a bad CRC or bytes that are not an event stream are a ProtocolError; an
exception frame is counted by its type, ModelStreamError's ErrorCode in `stream_error_codes`;
an HTTP error before the stream is counted by its AWS code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loadgen import api
from loadgen.engine.requests import targets_of
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.engine.transports import open_transport
from loadgen.scenario import Scenario
from loadgen.summary import TrafficSummary
from loadgen.transport.base import Outcome, Request
from loadgen.transport.eventstream import PRELUDE_LENGTH
from loadgen.transport.eventstream_encode import encode_exception, encode_payload_part
from tests.faulty import (
    Behaviour,
    Pause,
    Reset,
    Step,
    by_body,
    by_turns,
    error_status,
    raw_server,
    streaming,
)
from tests.servers import scenario

TRANSPORTS = pytest.mark.parametrize("transport", ["fast", "botocore"])

pytestmark = pytest.mark.usefixtures("fake_aws")


# --- streams, byte by byte ------------------------------------------------------------------


def tgi(text: str, **more: Any) -> bytes:
    """One TGI token event, as SSE."""
    return b"data: " + json.dumps({"token": {"text": text}} | more).encode() + b"\n\n"


def token(text: str) -> bytes:
    """One token event in one PayloadPart: what a plain container sends."""
    return encode_payload_part(tgi(text))


def flipped(message: bytes, at: int) -> bytes:
    """`message` with one bit of byte `at` flipped: what a corrupting network delivers."""
    corrupt = bytearray(message)
    corrupt[at] ^= 0x01
    return bytes(corrupt)


def good() -> Behaviour:
    """Three tokens, then the end: the turn that makes a fault's run count exactly."""
    return streaming(token("a"), token("b"), token("c"))


GOOD_TOKENS = 3


def stream_scenario(url: str, transport: str, requests: int, **load: Any) -> Scenario:
    """A stream run of `requests` calls at 100/s: an open loop, so a stall delays no other."""
    base = scenario(url, transport, requests=requests, **load)
    return base.model_copy(update={"request": base.request.model_copy(update={"stream": True})})


async def run_streams(
    tmp_path: Path, behaviour: Behaviour, transport: str, requests: int, **load: Any
) -> TrafficSummary:
    """One run against a raw server; whatever the server did, every request is accounted for
    and nothing raised in the transport (a raise is a client_failure, not a fault count)."""
    async with raw_server(behaviour) as server:
        result = await run_scenario(
            stream_scenario(server.url, transport, requests, **load),
            RunOptions(out=tmp_path, quiet=True),
        )
        assert server.requests == requests  # no call was retried
    summary = result.summary
    assert summary.client_failure is None
    assert summary.interrupted_requests == 0
    total = summary.total
    assert total.requests == requests
    assert total.requests == total.ok + sum(total.errors.values())
    # every good stream echoed the trace ID; a failed one is not correlated
    assert (total.correlation.matched, total.correlation.mismatched) == (total.ok, 0)
    assert total.correlation.missing == 0
    return total


# --- 1. silence, and length ------------------------------------------------------------------


@TRANSPORTS
@pytest.mark.parametrize(
    "timeouts",
    [
        {"timeout": "5s", "stream_idle_timeout": "300ms"},  # the stall is within `timeout`
        {"timeout": "300ms"},  # no idle timeout given: `timeout` is the longest silence
    ],
    ids=["idle-timeout", "default"],
)
async def test_a_stalled_stream_is_a_timeout(
    tmp_path: Path, transport: str, timeouts: dict[str, str]
) -> None:
    """Two tokens, then 0.6 s of silence (then a third): twice the idle timeout. With
    `timeout: 5s` the whole stream would fit; it is the silence that counts."""
    stalled = streaming(token("a"), token("b"), Pause(0.6), token("c"))
    total = await run_streams(tmp_path, by_turns(good(), stalled), transport, 6, **timeouts)
    assert total.errors == {api.TIMEOUT: 3}
    assert total.ok == 3
    assert total.output_tokens == 3 * GOOD_TOKENS  # the stalled streams' 2 tokens are not there
    assert total.stream_error_codes == {}


@TRANSPORTS
async def test_a_stream_longer_than_the_timeout_succeeds_if_never_silent_for_long(
    tmp_path: Path, transport: str
) -> None:
    """Six tokens 0.1 s apart: 0.5 s in all, longer than `timeout: 400ms`, but never silent
    for the 300 ms idle timeout. The fast transport's deadline moves with every body piece;
    botocore is opened with read_timeout = the idle timeout, and aiohttp applies it per read:
    both let the stream finish."""
    steps: list[Step] = [token("t0")]
    for index in range(1, 6):
        steps += [Pause(0.1), token(f"t{index}")]
    total = await run_streams(
        tmp_path,
        streaming(*steps),
        transport,
        4,
        timeout="400ms",
        stream_idle_timeout="300ms",
    )
    assert total.errors == {}
    assert total.ok == 4
    assert total.output_tokens == 4 * 6
    assert total.service_time_ms.p50 > 400  # each stream did outlast `timeout`


# --- 2. cut ---------------------------------------------------------------------------------


@TRANSPORTS
async def test_a_stream_cut_mid_way_is_a_connection_error(tmp_path: Path, transport: str) -> None:
    """A TCP reset after half an event-stream message, and one between two whole messages
    (the chunked body unfinished): both are ConnectionErrors, their tokens not counted."""
    half = token("b")[: len(token("b")) // 2]
    mid_message = streaming(token("a"), half, Reset())
    between_messages = streaming(token("a"), token("b"), Reset())
    total = await run_streams(
        tmp_path, by_turns(good(), mid_message, between_messages), transport, 6
    )
    assert total.errors == {api.CONNECTION_ERROR: 4}
    assert total.ok == 2
    assert total.output_tokens == 2 * GOOD_TOKENS


# --- 3. corrupt -----------------------------------------------------------------------------


@TRANSPORTS
async def test_a_bad_checksum_or_not_an_event_stream_is_a_protocol_error(
    tmp_path: Path, transport: str
) -> None:
    """After a good token: a message whose last payload byte changed (its message CRC no
    longer matches), one whose prelude CRC changed, and SSE bytes sent bare, not framed as
    messages. Each is a ProtocolError. botocore raised its own ChecksumMismatch for these,
    which is no BotoCoreError: the run counted ClientFailures until botocore.py caught it."""
    message = token("b")
    bad_message_crc = streaming(token("a"), flipped(message, len(message) - 5), token("c"))
    bad_prelude_crc = streaming(token("a"), flipped(message, PRELUDE_LENGTH - 1), token("c"))
    not_an_event_stream = streaming(tgi("a"), tgi("b"))
    total = await run_streams(
        tmp_path,
        by_turns(good(), bad_message_crc, bad_prelude_crc, not_an_event_stream),
        transport,
        8,
    )
    assert total.errors == {api.PROTOCOL_ERROR: 6}
    assert total.ok == 2
    assert total.output_tokens == 2 * GOOD_TOKENS


# --- 4. large -------------------------------------------------------------------------------


@TRANSPORTS
async def test_a_16_mib_payload_part_decodes(tmp_path: Path, transport: str) -> None:
    """One 16 MiB PayloadPart (a single token event, below the 24 MiB payload limit that
    botocore and our decoder enforce), then a normal token: both transports decode it whole
    and the stream succeeds with 2 tokens."""
    huge = encode_payload_part(tgi("x" * (16 * 1024 * 1024)))
    total = await run_streams(tmp_path, by_turns(streaming(huge, token("b")), good()), transport, 4)
    assert total.errors == {}
    assert total.ok == 4
    assert total.output_tokens == 2 * 2 + 2 * GOOD_TOKENS


# --- 5. exception frames --------------------------------------------------------------------


@TRANSPORTS
@pytest.mark.parametrize(
    ("kind", "error_code"),
    [("ModelStreamError", "StreamBroken"), ("InternalStreamFailure", None)],
)
async def test_an_exception_frame_is_counted_by_type_and_code(
    tmp_path: Path, transport: str, kind: str, error_code: str | None
) -> None:
    """The exception after two tokens, and as the first message: counted by its type, a
    ModelStreamError's ErrorCode beside it; the failed streams' tokens are not counted."""
    frame = encode_exception(kind, "the model stopped", error_code)
    after_tokens = streaming(token("a"), token("b"), frame)
    at_once = streaming(frame)
    total = await run_streams(tmp_path, by_turns(good(), after_tokens, at_once), transport, 6)
    assert total.errors == {kind: 4}
    assert total.stream_error_codes == ({error_code: 4} if error_code else {})
    assert total.ok == 2
    assert total.output_tokens == 2 * GOOD_TOKENS


# --- 6. HTTP errors before the stream -------------------------------------------------------


MODEL_ERROR = json.dumps(
    {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep",
        "Message": "Received server error (500) from model with message 'boom'.",
        "OriginalMessage": "boom",
        "OriginalStatusCode": 500,
    }
).encode()


@TRANSPORTS
async def test_an_http_error_before_the_stream_is_counted_by_its_code(
    tmp_path: Path, transport: str
) -> None:
    """As for InvokeEndpoint: 424 ModelError (its OriginalStatusCode counted), 400
    ValidationError named by the body's __type only, 503 ServiceUnavailable by the header
    only (the text after ':' dropped)."""
    model_error = error_status(424, "Failed Dependency", "ModelError", MODEL_ERROR)
    validation = error_status(
        400, "Bad Request", None, b'{"__type": "ValidationError", "message": "bad"}'
    )
    unavailable = error_status(
        503, "Service Unavailable", "ServiceUnavailable:http://internal.amazon.com/", b"{}"
    )
    total = await run_streams(
        tmp_path, by_turns(good(), model_error, validation, unavailable), transport, 8
    )
    assert total.errors == {"ModelError": 2, "ServiceUnavailable": 2, "ValidationError": 2}
    assert total.model_error_status == {"500": 2}
    assert total.stream_error_codes == {}
    assert total.ok == 2
    assert total.output_tokens == 2 * GOOD_TOKENS


# --- 7. SSE cut anywhere --------------------------------------------------------------------


def tgi_parts(last: bytes) -> list[bytes]:
    """TGI's events as a container's writes fall, one PayloadPart each: cut inside `data:`,
    inside the JSON, between CR and LF, inside an emoji; an event without the space after
    `data:`, CRLF line ends, a comment, an `event:` field, an event with empty text (no
    token), an event whose data spans two lines, two events in one part, and `[DONE]` cut
    too. 6 token events: Hel, lo, the emoji, " wor", ld, and the last one, `last`."""
    return [
        b"d",
        b'ata: {"token": {"text": "Hel"}}\n',
        b'\ndata:{"token": {"te',
        b'xt": "lo"}}\r',
        b"\n\r",
        b'\n: keep-alive\n\nevent: message\ndata: {"token": {"text": "\xf0\x9f',
        b'\x99\x82"}}\n\n',
        tgi("") + b'data: {"token": {"text": " wor"},\ndata: "index": 5}\n\n',
        tgi("ld") + last,
        b"data: [DO",
        b"NE]\n\n",
    ]


TGI_PARTS = tgi_parts(tgi("!"))
TGI_TOKENS = 6
# The last event says how many tokens were generated: that count overrides ours.
TGI_DETAILS_PARTS = tgi_parts(
    tgi("!", generated_text="Hello world!", details={"generated_tokens": 7})
)
TGI_DETAILS_TOKENS = 7


def chat(delta: dict[str, str], **more: Any) -> bytes:
    chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    return b"data: " + json.dumps(chunk | more).encode() + b"\n\n"


# OpenAI-style chat: a role-only first chunk and a usage chunk carry no token; 3 content
# deltas do; usage.completion_tokens (9) overrides them. Parts of 1, 2, 3, 5, 8, 13 bytes.
CHAT_EVENTS = [
    chat({"role": "assistant"}),
    chat({"content": "Hi"}),
    chat({"content": " there"}),
    chat({"content": "!"}),
    b'data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 9}}\n\n',
    b"data: [DONE]\n\n",
]
CHAT_TOKENS = 9

CHUNK_SIZES = (5, 11, 7, 40, 3, 330, 64)  # the messages' bytes, cut into HTTP chunks


def cycle_cut(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    """`data` in pieces of sizes[0], sizes[1], ... bytes in turn, over and over."""
    pieces: list[bytes] = []
    start = 0
    for size in itertools.cycle(sizes):
        if start >= len(data):
            break
        pieces.append(data[start : start + size])
        start += size
    return pieces


def chat_parts() -> list[bytes]:
    return cycle_cut(b"".join(CHAT_EVENTS), (1, 2, 3, 5, 8, 13))


def cut_stream(parts: list[bytes]) -> Behaviour:
    """Each part a PayloadPart, the messages' bytes in HTTP chunks cut by CHUNK_SIZES, each
    chunk after a pause that lets it arrive as its own read."""
    wire = b"".join(encode_payload_part(part) for part in parts)
    steps: list[Step] = []
    for chunk in cycle_cut(wire, CHUNK_SIZES):
        steps += [Pause(0.001), chunk]
    return streaming(*steps)


def test_the_chunks_cut_messages_at_odd_places() -> None:
    """The premise of the next test: TGI_PARTS' messages are cut by the HTTP chunks inside
    a prelude and inside a message CRC, and one chunk holds two whole messages."""
    messages = [encode_payload_part(part) for part in TGI_PARTS]
    ends = list(itertools.accumulate(map(len, messages)))
    starts = [0, *ends[:-1]]
    chunk_ends = list(itertools.accumulate(map(len, cycle_cut(b"".join(messages), CHUNK_SIZES))))
    assert any(0 < cut - start < PRELUDE_LENGTH for cut in chunk_ends for start in starts)
    assert any(0 < end - cut < 4 for cut in chunk_ends for end in ends)
    spans = zip([0, *chunk_ends[:-1]], chunk_ends, strict=True)
    assert any(
        sum(low <= start and end <= high for start, end in zip(starts, ends, strict=True)) >= 2
        for low, high in spans
    )


@TRANSPORTS
async def test_token_events_cut_anywhere_count_exactly(tmp_path: Path, transport: str) -> None:
    """TGI (6 events counted), TGI with details.generated_tokens (7 reported), OpenAI-style
    chat with usage.completion_tokens (9 reported), two calls each."""
    behaviours = by_turns(
        cut_stream(TGI_PARTS), cut_stream(TGI_DETAILS_PARTS), cut_stream(chat_parts())
    )
    total = await run_streams(tmp_path, behaviours, transport, 6)
    assert total.errors == {}
    assert total.ok == 6
    assert total.output_tokens == 2 * (TGI_TOKENS + TGI_DETAILS_TOKENS + CHAT_TOKENS)


# --- both transports, call for call ---------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What a call's Outcome says that the summary counts."""

    error: str | None
    stream_error_code: str | None = None
    original_status: int | None = None
    variant: str | None = "AllTraffic"  # the head arrived: errors count under its variant
    tokens: int | None = None

    @classmethod
    def of(cls, outcome: Outcome) -> Seen:
        return cls(
            outcome.error,
            outcome.stream_error_code,
            outcome.original_status,
            outcome.variant,
            None if outcome.stream is None else outcome.stream.tokens,
        )


def _calls() -> dict[str, tuple[Behaviour, Seen]]:
    """Every fault above, and what a call to it must give on either transport."""
    message = token("b")
    return {
        "good": (good(), Seen(None, tokens=GOOD_TOKENS)),
        "stalled": (
            streaming(token("a"), Pause(0.6), token("b")),
            Seen(api.TIMEOUT, variant=None),
        ),
        "reset-mid-message": (
            streaming(token("a"), message[:20], Reset()),
            Seen(api.CONNECTION_ERROR, variant=None),
        ),
        # The HTTP body ends cleanly inside a message: both drop the half message and keep
        # what came before, as botocore's EventStreamBuffer does (it never sees the end).
        "ends-mid-message": (streaming(token("a"), message[:20]), Seen(None, tokens=1)),
        "bad-message-crc": (
            streaming(token("a"), flipped(message, len(message) - 5)),
            Seen(api.PROTOCOL_ERROR),
        ),
        "bad-prelude-crc": (
            streaming(token("a"), flipped(message, PRELUDE_LENGTH - 1)),
            Seen(api.PROTOCOL_ERROR),
        ),
        "not-an-event-stream": (streaming(tgi("a")), Seen(api.PROTOCOL_ERROR)),
        "model-stream-error": (
            streaming(token("a"), encode_exception("ModelStreamError", "m", "StreamBroken")),
            Seen("ModelStreamError", "StreamBroken"),
        ),
        "internal-stream-failure": (
            streaming(token("a"), encode_exception("InternalStreamFailure", "m")),
            Seen("InternalStreamFailure"),
        ),
        "model-error": (
            error_status(424, "Failed Dependency", "ModelError", MODEL_ERROR),
            Seen("ModelError", original_status=500, variant=None),
        ),
        "tgi-cut": (cut_stream(TGI_PARTS), Seen(None, tokens=TGI_TOKENS)),
        "tgi-details-cut": (cut_stream(TGI_DETAILS_PARTS), Seen(None, tokens=TGI_DETAILS_TOKENS)),
        "chat-cut": (cut_stream(chat_parts()), Seen(None, tokens=CHAT_TOKENS)),
    }


async def test_both_transports_agree_call_for_call(tmp_path: Path) -> None:
    """One server, one fault per call (named by the request body), each call sent by both
    transports: their outcomes are the same and the expected one."""
    calls = _calls()
    behaviours = {name.encode(): behaviour for name, (behaviour, _) in calls.items()}
    async with raw_server(by_body(behaviours)) as server, AsyncExitStack() as stack:
        scenarios = [
            stream_scenario(server.url, name, 1, timeout="5s", stream_idle_timeout="300ms")
            for name in ("fast", "botocore")
        ]
        transports = [await open_transport(each, server.url, 4, stack) for each in scenarios]
        target = targets_of(scenarios[0])[0]

        async def call(index: int, name: str) -> list[Seen]:
            trace = f"t{index}"
            request = Request(target, name.encode(), trace, f"trace={trace}")
            outcomes = await asyncio.gather(*(t.invoke(request) for t in transports))
            for outcome in outcomes:
                assert outcome.echoed == (f"trace={trace}" if outcome.status == 200 else None)
            return [Seen.of(outcome) for outcome in outcomes]

        seen = await asyncio.gather(*(call(i, name) for i, name in enumerate(calls)))
    for name, (fast, botocore) in zip(calls, seen, strict=True):
        assert (name, fast) == (name, calls[name][1])
        assert (name, botocore) == (name, calls[name][1])
