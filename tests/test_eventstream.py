"""The event-stream decoders (C and pure Python) against botocore's EventStreamBuffer.

Every test runs on both decoders, and `check` feeds the same reads to both and to botocore:
both must give the same events and raise the same error message; botocore's messages, read
as events, must be what they give. The decoders are stricter than botocore in a few places
(a length that cannot hold the prelude and CRC, a header value cut off by the end of the
headers, a `:message-type`-like header that is not a string): there they raise where
botocore reads on, and the events before the error are botocore's.
"""

from __future__ import annotations

import json
import os
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer, EventStreamMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.transport import eventstream
from loadgen.transport.eventstream import (
    MAX_HEADERS_LENGTH,
    MAX_PAYLOAD_LENGTH,
    Event,
    EventDecoder,
    EventStreamError,
    OtherMessage,
    PayloadPart,
    PyEventStreamDecoder,
    StreamException,
)
from loadgen.transport.eventstream_encode import (
    HeaderType,
    HeaderValue,
    TypedInt,
    encode_exception,
    encode_headers,
    encode_message,
    encode_payload_part,
    frame,
)
from tests.stubs import public_names, stub_names
from tests.test_tokens import PARSERS

C_DECODER = eventstream.CEventStreamDecoder
MAKERS: list[Callable[[], EventDecoder]] = [PyEventStreamDecoder]
if C_DECODER is not None:
    MAKERS.append(C_DECODER)
both = pytest.mark.parametrize("make", MAKERS, ids=["python", "c"][: len(MAKERS)])

KNOWN = (":message-type", ":event-type", ":exception-type", ":error-code", ":error-message")
# Where the decoders refuse what botocore reads on (see the module's docstring).
STRICTER = (
    "below the minimum of 16",
    "does not fit in message length",
    "header runs past the headers",
    "is not a string",
)


def test_the_c_decoder_is_built() -> None:
    """CI builds the extension; without it every read pays the Python scan."""
    if os.environ.get("LOADGEN_PURE_EVENTSTREAM") == "1":
        assert eventstream.EventStreamDecoder is PyEventStreamDecoder
    else:
        assert C_DECODER is not None and eventstream.EventStreamDecoder is C_DECODER


# -- botocore, read as events ---------------------------------------------------------------


class _NotAString(Exception):
    """botocore read a header the decoders refuse: a known name with a non-string value."""


def as_event(message: EventStreamMessage) -> Event:
    """What the decoders must make of a message botocore decoded."""
    headers = message.headers
    for name in KNOWN:
        if name in headers and not isinstance(headers[name], str):
            raise _NotAString(name)
    kind, event_type = headers.get(":message-type"), headers.get(":event-type")
    if kind == "event" and event_type == "PayloadPart":
        return PayloadPart(message.payload)
    if kind == "exception":
        try:
            body = json.loads(message.payload)
        except (ValueError, RecursionError):
            body = None
        body = body if isinstance(body, dict) else {}
        code, text = body.get("ErrorCode"), body.get("Message", body.get("message"))
        return StreamException(
            headers.get(":exception-type") or "",
            code if isinstance(code, str) else None,
            text if isinstance(text, str) else None,
        )
    if kind == "error":
        return StreamException(
            headers.get(":error-code") or "", None, headers.get(":error-message")
        )
    return OtherMessage(kind, event_type, message.payload)


def botocore_reads(reads: Sequence[bytes]) -> tuple[list[Event], bool]:
    """botocore's events from these reads, and whether it raised (or met a header we refuse)."""
    buffer = EventStreamBuffer()
    events: list[Event] = []
    try:
        for data in reads:
            buffer.add_data(data)
            for message in buffer:
                events.append(as_event(message))
    except _NotAString:
        return events, False
    except Exception:  # ParserError, struct.error, KeyError, UnicodeDecodeError: any refusal
        return events, True
    return events, False


def decode(
    make: Callable[[], EventDecoder], reads: Sequence[bytes]
) -> tuple[list[Event], str | None]:
    """The events from these reads, and the error's message if the decoder raised."""
    decoder = make()
    events: list[Event] = []
    try:
        for data in reads:
            events += decoder.feed(data)
    except EventStreamError as error:
        return events + error.events, str(error)
    return events, None


def check(reads: Sequence[bytes]) -> tuple[list[Event], str | None]:
    """Both decoders' answer for these reads, after holding it against botocore's."""
    answers = [decode(make, reads) for make in MAKERS]
    assert all(answer == answers[0] for answer in answers), answers
    events, error = answers[0]
    expected, botocore_raised = botocore_reads(reads)
    assert all(type(event) in (PayloadPart, StreamException, OtherMessage) for event in events)
    if error is None:
        assert not botocore_raised and events == expected
    else:
        assert events == expected[: len(events)]
        if not botocore_raised or events != expected:  # refused where botocore read on
            assert any(reason in error for reason in STRICTER), error
    return events, error


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """data in reads, cut at these offsets."""
    edges = [0, *sorted(min(max(p, 0), len(data)) for p in points), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def framed(block: bytes, payload: bytes = b"") -> bytes:
    """A message around any header block, with correct lengths and CRCs."""
    return frame(block, payload)


def with_prelude(total: int, headers: int, rest: bytes = b"") -> bytes:
    """A prelude of these lengths with its correct CRC, then rest."""
    head = struct.pack(">II", total, headers)
    return head + struct.pack(">I", zlib.crc32(head)) + rest


# -- botocore's own vectors (boto/botocore, tests/unit/test_eventstream.py) -----------------

EMPTY = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2H\xeb}\x98\xc8\xff"
INT8 = b"\x00\x00\x00\x17\x00\x00\x00\x07)\x86\x01X\x04byte\x02\xff\xc2\xf8i\xdc"
INT16 = b"\x00\x00\x00\x19\x00\x00\x00\tq\x0e\x92>\x05short\x03\xff\xff\xb2|\xb6\xcc"
INT32 = (
    b"\x00\x00\x00\x1d\x00\x00\x00\r\x83\xe3\xf0\xe7\x07integer\x04\xff\xff\xff\xff\x8b\x8e\x12\xeb"
)
INT64 = b"\x00\x00\x00\x1e\x00\x00\x00\x0e]J\xdb\x8d\x04long\x05" + b"\xff" * 8 + b"K\xc22\xda"
PAYLOAD_NO_HEADERS = b"\x00\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'}\xc3e96"
PAYLOAD_ONE_STR_HEADER = (
    b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10"
    b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1"
)
ALL_HEADER_TYPES = (
    b"\x00\x00\x00\x62\x00\x00\x00\x52\x03\xb5\xcb\x9c"
    b"\x010\x00\x011\x01\x012\x02\x02\x013\x03\x00\x03"
    b"\x014\x04\x00\x00\x00\x04\x015\x05\x00\x00\x00\x00\x00\x00\x00\x05"
    b"\x016\x06\x00\x05bytes\x017\x07\x00\x04utf8"
    b"\x018\x08\x00\x00\x00\x00\x00\x00\x00\x08\x019\x090123456789abcdef"
    b"\x63\x35\x36\x71"
)
ERROR_EVENT = (
    b"\x00\x00\x00\x52\x00\x00\x00\x42\xbf\x23\x63\x7e"
    b"\x0d:message-type\x07\x00\x05error"
    b"\x0b:error-code\x07\x00\x04code"
    b"\x0e:error-message\x07\x00\x07message"
    b"\x6b\x6c\xea\x3d"
)
INITIAL_RESPONSE = [  # three reads
    b"\x00\x00\x00~\x00\x00\x00O\xc5\xa3\xdd\xc6\r:message-type\x07\x00",
    b"\x05event\x0b:event-type\x07\x00\x10initial-response\r:content-type",
    b'\x07\x00\ttext/json{"InitialResponse": "sometext"}\xf6\x98$\x83',
]
EVENT_ID_INT = [  # two reads; the header is an integer
    b"\x00\x00\x00+\x00\x00\x00\x0e4\x8b\xec{\x08event-id\x04\x00",
    b"\x00\xa0\x0c{'foo':'bar'}\xd3\x89\x02\x85",
]
POSITIVE = {
    "empty": (EMPTY, OtherMessage(None, None, b"")),
    "int8": (INT8, OtherMessage(None, None, b"")),
    "int16": (INT16, OtherMessage(None, None, b"")),
    "int32": (INT32, OtherMessage(None, None, b"")),
    "int64": (INT64, OtherMessage(None, None, b"")),
    "payload, no headers": (PAYLOAD_NO_HEADERS, OtherMessage(None, None, b"{'foo':'bar'}")),
    "payload, a string header": (
        PAYLOAD_ONE_STR_HEADER,
        OtherMessage(None, None, b"{'foo':'bar'}"),
    ),
    "all header types": (ALL_HEADER_TYPES, OtherMessage(None, None, b"")),
    "error event": (ERROR_EVENT, StreamException("code", None, "message")),
}
NEGATIVE = {  # botocore: InvalidPayloadLength, ChecksumMismatch (2), InvalidHeadersLength, DuplicateHeader
    "corrupted length": (
        PAYLOAD_NO_HEADERS.replace(b"\x00", b"\x01", 1),
        "prelude checksum mismatch",
    ),
    "corrupted payload": (
        b"\x00\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'\x8d\xc3e96",
        "message checksum mismatch",
    ),
    "corrupted headers": (
        PAYLOAD_ONE_STR_HEADER.replace(b"content-type", b"content+type"),
        "message checksum mismatch",
    ),
    "corrupted header length": (
        PAYLOAD_ONE_STR_HEADER[:4] + b"\xff\x00\x01\x02" + PAYLOAD_ONE_STR_HEADER[8:],
        "prelude checksum mismatch",
    ),
    "duplicate header": (
        b"\x00\x00\x00\x24\x00\x00\x00\x14\x4b\xb9\x82\xd0"
        b"\x04test\x04asdf\x04test\x04asdf\xf3\xf4\x75\x63",
        "duplicate header 'test'",
    ),
}


@pytest.mark.parametrize("name", list(POSITIVE))
def test_botocore_vectors_decode(name: str) -> None:
    data, event = POSITIVE[name]
    assert check([data]) == ([event], None)


def test_botocore_vectors_decode_from_one_buffer() -> None:
    data = b"".join(data for data, _ in POSITIVE.values())
    assert check([data]) == ([event for _, event in POSITIVE.values()], None)


def test_botocore_vectors_split_into_reads() -> None:
    payload = b'{"InitialResponse": "sometext"}'
    assert check(INITIAL_RESPONSE) == ([OtherMessage("event", "initial-response", payload)], None)
    assert check(EVENT_ID_INT) == ([OtherMessage(None, None, b"{'foo':'bar'}")], None)


@pytest.mark.parametrize("name", list(NEGATIVE))
def test_botocore_negative_vectors_raise(name: str) -> None:
    data, message = NEGATIVE[name]
    assert check([data]) == ([], message)


# -- SageMaker's messages, split everywhere -------------------------------------------------

STREAM = [
    encode_payload_part(b'data: {"token": {"text": "Hello"}}\n\n'),
    encode_payload_part(b""),
    encode_payload_part(bytes(range(256))),
    encode_exception("ModelStreamError", "Model timed out", "ModelInvocationTimeExceeded"),
    encode_exception("InternalStreamFailure", "Internal failure"),
]
STREAM_EVENTS = [
    PayloadPart(b'data: {"token": {"text": "Hello"}}\n\n'),
    PayloadPart(b""),
    PayloadPart(bytes(range(256))),
    StreamException("ModelStreamError", "ModelInvocationTimeExceeded", "Model timed out"),
    StreamException("InternalStreamFailure", None, "Internal failure"),
]


def test_every_split_into_two_reads() -> None:
    data = b"".join(STREAM)
    for point in range(len(data) + 1):
        assert check(cut(data, [point])) == (STREAM_EVENTS, None), point


def test_one_byte_at_a_time() -> None:
    data = b"".join(STREAM)
    assert check([data[i : i + 1] for i in range(len(data))]) == (STREAM_EVENTS, None)


@settings(max_examples=200, deadline=None)
@given(points=st.lists(st.integers(0, 800), max_size=12))
def test_random_splits(points: list[int]) -> None:
    assert check(cut(b"".join(STREAM), points)) == (STREAM_EVENTS, None)


@both
def test_events_come_as_soon_as_their_message_is_complete(make: Callable[[], EventDecoder]) -> None:
    decoder = make()
    first, second = STREAM[0], STREAM[3]
    assert decoder.feed(first[:-1]) == [] and decoder.pending == len(first) - 1
    assert decoder.feed(first[-1:] + second[:20]) == STREAM_EVENTS[:1]
    assert decoder.pending == 20
    assert decoder.feed(second[20:]) == [STREAM_EVENTS[3]] and decoder.pending == 0
    assert type(STREAM_EVENTS[0]) is PayloadPart
    decoder.close()


@both
def test_reads_may_be_any_bytes_like(make: Callable[[], EventDecoder]) -> None:
    decoder = make()
    data = STREAM[0]
    events = decoder.feed(bytearray(data[:30])) + decoder.feed(memoryview(data)[30:])  # type: ignore[arg-type]
    assert events == STREAM_EVENTS[:1] and type(events[0].payload) is bytes  # type: ignore[union-attr]


@both
def test_a_16_mib_payload(make: Callable[[], EventDecoder]) -> None:
    payload = os.urandom(16 * 1024 * 1024)
    data = encode_payload_part(payload) + STREAM[0]
    decoder = make()
    events = []
    for start in range(0, len(data), 65536):
        events += decoder.feed(data[start : start + 65536])
    assert events == [PayloadPart(payload), STREAM_EVENTS[0]]
    assert botocore_reads([data]) == (events, False)


@both
def test_the_largest_message_botocore_takes(make: Callable[[], EventDecoder]) -> None:
    """128 KiB of headers and 24 MiB of payload pass; one byte more of either does not."""
    second = 65536 - 4 - 5  # two bytes-typed headers fill 128 KiB exactly
    block = encode_headers([("a", b"x" * 65535), ("b", b"y" * second)])
    assert len(block) == MAX_HEADERS_LENGTH
    payload = b"z" * MAX_PAYLOAD_LENGTH
    assert make().feed(framed(block, payload)) == [OtherMessage(None, None, payload)]
    too_long = 16 + MAX_HEADERS_LENGTH + MAX_PAYLOAD_LENGTH + 1
    for total, headers, reason in [
        (
            too_long,
            MAX_HEADERS_LENGTH,
            f"payload length {MAX_PAYLOAD_LENGTH + 1} above the maximum",
        ),
        (
            too_long,
            MAX_HEADERS_LENGTH + 1,
            f"headers length {MAX_HEADERS_LENGTH + 1} above the maximum",
        ),
    ]:
        decoder = make()  # the prelude alone is refused: no need to wait for 24 MiB
        with pytest.raises(EventStreamError, match=reason):
            decoder.feed(with_prelude(total, headers))


# -- What SageMaker sends ---------------------------------------------------------------------

EXCEPTIONS: dict[str, tuple[bytes, StreamException]] = {
    "ModelStreamError": (
        encode_exception("ModelStreamError", "Your model timed out", "ModelInvocationTimeExceeded"),
        StreamException("ModelStreamError", "ModelInvocationTimeExceeded", "Your model timed out"),
    ),
    "StreamBroken": (
        encode_exception("ModelStreamError", "connection reset", "StreamBroken"),
        StreamException("ModelStreamError", "StreamBroken", "connection reset"),
    ),
    "InternalStreamFailure": (
        encode_exception("InternalStreamFailure", "Internal failure"),
        StreamException("InternalStreamFailure", None, "Internal failure"),
    ),
    "lower-case message": (
        encode_message(
            [(":message-type", "exception"), (":exception-type", "X")], b'{"message": "m"}'
        ),
        StreamException("X", None, "m"),
    ),
    "payload not JSON": (
        encode_message([(":message-type", "exception"), (":exception-type", "X")], b"oops"),
        StreamException("X", None, None),
    ),
    "JSON not an object": (
        encode_message([(":message-type", "exception"), (":exception-type", "X")], b'["Message"]'),
        StreamException("X", None, None),
    ),
    "no exception type": (
        encode_message([(":message-type", "exception")], b'{"Message": 5, "ErrorCode": "E"}'),
        StreamException("", "E", None),
    ),
    "error message": (
        encode_message(
            [(":message-type", "error"), (":error-code", "Throttled"), (":error-message", "slow")]
        ),
        StreamException("Throttled", None, "slow"),
    ),
    "bare error": (encode_message([(":message-type", "error")]), StreamException("", None, None)),
    "another event type": (
        encode_message([(":message-type", "event"), (":event-type", "Heartbeat")], b"x"),
        OtherMessage("event", "Heartbeat", b"x"),
    ),
    "another message type": (
        encode_message([(":message-type", "ping"), (":event-type", "PayloadPart")], b"y"),
        OtherMessage("ping", "PayloadPart", b"y"),
    ),
    "no message type": (
        encode_message([(":event-type", "PayloadPart")], b"z"),
        OtherMessage(None, "PayloadPart", b"z"),
    ),
}


@pytest.mark.parametrize("name", list(EXCEPTIONS))
def test_messages_other_than_payload_parts(name: str) -> None:
    data, event = EXCEPTIONS[name]
    assert check([STREAM[0], data, STREAM[1]]) == (
        [STREAM_EVENTS[0], event, STREAM_EVENTS[1]],
        None,
    )


def test_a_payload_part_with_more_headers_in_any_order() -> None:
    headers: list[tuple[str, HeaderValue]] = [
        ("id", uuid.UUID(int=7)),
        (":message-type", "event"),
        ("flag", True),
        (":event-type", "PayloadPart"),
        ("n", TypedInt(HeaderType.SHORT, -3)),
    ]
    assert check([encode_message(headers, b"p")]) == ([PayloadPart(b"p")], None)


# -- Malformed bytes -----------------------------------------------------------------------

GOOD = encode_payload_part(b"payload")
MALFORMED: dict[str, tuple[bytes, str]] = {
    "prelude CRC": (GOOD[:8] + b"\x00\x00\x00\x00" + GOOD[12:], "prelude checksum mismatch"),
    "message CRC": (GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "message checksum mismatch"),
    "payload byte": (GOOD[:-6] + b"X" + GOOD[-5:], "message checksum mismatch"),
    "total length 0": (with_prelude(0, 0, b"\x00" * 4), "message length 0 below the minimum of 16"),
    "total length 15": (
        with_prelude(15, 0, b"\x00" * 3),
        "message length 15 below the minimum of 16",
    ),
    "headers longer than the message": (
        with_prelude(20, 5, b"\x00" * 8),
        "headers length 5 does not fit in message length 20",
    ),
    "name runs past": (framed(b"\x05abc"), "header runs past the headers"),
    "no type byte": (framed(b"\x03abc"), "header runs past the headers"),
    "short value": (framed(b"\x01a\x04\x00\x00\x00"), "header runs past the headers"),
    "long value": (framed(b"\x01a\x05" + b"\x00" * 7), "header runs past the headers"),
    "uuid value": (framed(b"\x01a\x09" + b"\x00" * 15), "header runs past the headers"),
    "string length": (framed(b"\x01a\x07\x00"), "header runs past the headers"),
    "string value": (framed(b"\x01a\x07\x00\x05abcd"), "header runs past the headers"),
    "bytes value": (framed(b"\x01a\x06\x01\x00" + b"x" * 255), "header runs past the headers"),
    "type 10": (framed(b"\x01a\x0a"), "header value type 10 unknown"),
    "type 255": (framed(b"\x01a\xff\x00"), "header value type 255 unknown"),
    "name not UTF-8": (framed(b"\x02\xc3\x28\x00"), "header name is not UTF-8"),
    "string not UTF-8": (framed(b"\x01a\x07\x00\x01\xff"), "header string is not UTF-8"),
    "string a surrogate": (framed(b"\x01a\x07\x00\x03\xed\xa0\x80"), "header string is not UTF-8"),
    "duplicate": (
        encode_message([(":message-type", "event"), (":message-type", "event")]),
        "duplicate header ':message-type'",
    ),
    "message type not a string": (
        encode_message([(":message-type", b"event")]),
        "header :message-type is not a string",
    ),
    "event type not a string": (
        encode_message([(":message-type", "event"), (":event-type", 1)]),
        "header :event-type is not a string",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_bytes_raise_after_the_good_events(name: str) -> None:
    data, message = MALFORMED[name]
    assert check([GOOD + GOOD[:3], GOOD[3:] + data + GOOD]) == (
        [PayloadPart(b"payload")] * 2,
        message,
    )


def test_duplicates_among_many_headers() -> None:
    """Forty and more headers: C compares the first 32 names pairwise, then keeps a set."""
    names = [f"h{i}" for i in range(40)]
    many: list[tuple[str, HeaderValue]] = [(name, True) for name in names]
    assert check([encode_message(many)]) == ([OtherMessage(None, None, b"")], None)
    for repeated in ["h0", "h31", "h32", "h39"]:
        data = encode_message([*many, (repeated, False)])
        assert check([data]) == ([], f"duplicate header {repeated!r}")
    early = encode_message([*many[:5], ("h2", 1), *many[5:]])
    assert check([early]) == ([], "duplicate header 'h2'")


@both
def test_a_failed_decoder_stays_failed(make: Callable[[], EventDecoder]) -> None:
    decoder = make()
    with pytest.raises(EventStreamError, match="prelude checksum mismatch"):
        decoder.feed(MALFORMED["prelude CRC"][0])
    assert decoder.pending == 0
    for data in [GOOD, b""]:
        with pytest.raises(EventStreamError, match="the decoder failed earlier") as raised:
            decoder.feed(data)
        assert raised.value.events == []


@both
def test_close_says_whether_a_message_was_cut_short(make: Callable[[], EventDecoder]) -> None:
    decoder = make()
    decoder.feed(GOOD)
    decoder.close()  # nothing pending
    decoder.feed(GOOD[:5])
    with pytest.raises(EventStreamError, match="the stream ended inside a message"):
        decoder.close()
    assert isinstance(EventStreamError("x"), ValueError)


@settings(max_examples=300, deadline=None)
@given(
    block=st.one_of(
        st.binary(max_size=40),
        st.builds(
            lambda good, at, tail: good[:at] + tail,
            st.just(GOOD[12:-11]),
            st.integers(0, 60),
            st.binary(max_size=6),
        ),
    ),
    payload=st.binary(max_size=8),
    points=st.lists(st.integers(0, 200), max_size=3),
)
def test_random_header_blocks_agree_with_botocore(
    block: bytes, payload: bytes, points: list[int]
) -> None:
    """Any bytes as the headers, in a message with correct lengths and CRCs."""
    check(cut(GOOD + framed(block, payload) + GOOD, points))


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 80),
    headers=st.integers(0, 80),
    rest=st.binary(max_size=80),
    points=st.lists(st.integers(0, 200), max_size=3),
)
def test_random_lengths_agree_with_botocore(
    total: int, headers: int, rest: bytes, points: list[int]
) -> None:
    """Any lengths in a prelude whose CRC is right, then anything."""
    check(cut(GOOD + with_prelude(total, headers, rest) + GOOD, points))


@settings(max_examples=300, deadline=None)
@given(
    where=st.integers(0, 10**6),
    byte=st.integers(0, 255),
    points=st.lists(st.integers(0, 400), max_size=4),
)
def test_a_changed_byte_anywhere(where: int, byte: int, points: list[int]) -> None:
    data = bytearray(b"".join(STREAM))
    data[where % len(data)] = byte
    check(cut(bytes(data), points))


# -- Encoding: round trips through both decoders and botocore -------------------------------

NAMES = st.sampled_from([*KNOWN, ":content-type", "x", "", "\u00e9t\u00e9"])
VALUES: st.SearchStrategy[HeaderValue] = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.builds(TypedInt, st.just(HeaderType.BYTE), st.integers(-128, 127)),
    st.builds(TypedInt, st.just(HeaderType.SHORT), st.integers(-(2**15), 2**15 - 1)),
    st.builds(TypedInt, st.just(HeaderType.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.builds(TypedInt, st.just(HeaderType.TIMESTAMP), st.integers(0, 2**62)),
    st.binary(max_size=20),
    st.text(max_size=20),
    st.sampled_from(["event", "PayloadPart", "exception", "error", "ModelStreamError"]),
    st.uuids(),
)


def plain(value: HeaderValue) -> Any:
    """A header value as botocore decodes it."""
    if isinstance(value, TypedInt):
        return value.value
    return value.bytes if isinstance(value, uuid.UUID) else value


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(
        st.tuples(st.lists(st.tuples(NAMES, VALUES), max_size=6), st.binary(max_size=30)),
        max_size=4,
    ),
    points=st.lists(st.integers(0, 600), max_size=4),
)
def test_encoded_messages_round_trip(
    messages: list[tuple[list[tuple[str, HeaderValue]], bytes]], points: list[int]
) -> None:
    data = b"".join(encode_message(headers, payload) for headers, payload in messages)
    check(cut(data, points))  # events as botocore reads them, or the same refusal
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    try:
        decoded = [(message.headers, message.payload) for message in buffer]
    except Exception:  # a repeated name: botocore refuses it too
        assert any(len({n for n, _ in h}) < len(h) for h, _ in messages)
        return
    assert decoded == [({n: plain(v) for n, v in h}, payload) for h, payload in messages]


def test_encoding_refuses_what_cannot_be_sent() -> None:
    for headers in [
        [("x" * 256, True)],
        [("x", "y" * 65536)],
        [("x", 2**63)],
        [("x", TypedInt(HeaderType.BYTE, 128))],
        [("x", TypedInt(HeaderType.STRING, 1))],
    ]:
        with pytest.raises(ValueError):
            encode_message(headers)  # type: ignore[arg-type]


def test_a_payload_part_is_sagemakers() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_payload_part(b"tok"))
    (message,) = list(buffer)
    assert message.headers == {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert message.payload == b"tok"


# -- The C module itself ---------------------------------------------------------------------

needs_c = pytest.mark.skipif(C_DECODER is None, reason="the C extension is not built")


@needs_c
def test_crc32_is_zlibs() -> None:
    from loadgen.transport import _eventstreamc

    data = os.urandom(4096)
    for start in range(9):
        for length in [*range(40), 63, 64, 65, 1000, 4000]:
            piece = data[start : start + length]
            assert _eventstreamc.crc32(piece) == zlib.crc32(piece)
            assert _eventstreamc.crc32(piece, 0xDEADBEEF) == zlib.crc32(piece, 0xDEADBEEF)


@needs_c
def test_the_decoder_checks_what_it_is_given() -> None:
    from loadgen.transport._eventstreamc import Decoder

    other, error = eventstream._other_event, EventStreamError
    for args in [(tuple, 1, error), (PayloadPart, other, ValueError())]:
        with pytest.raises(TypeError):
            Decoder(*args)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a class whose instances have more than tuple's fields
        Decoder(type("Wide", (tuple,), {}), other, error)
    with pytest.raises(TypeError):
        Decoder(PayloadPart, other, error).feed("text")  # type: ignore[arg-type]


@needs_c
def test_the_stub_types_what_the_module_has() -> None:
    """mypy checks callers against _eventstreamc.pyi: it must name exactly the module's names."""
    from loadgen.transport import _eventstreamc

    stub = Path(__file__).resolve().parent.parent / "loadgen/transport/_eventstreamc.pyi"
    assert stub_names(stub) == public_names(_eventstreamc)


# -- attach and read: the streaming call's one call a read ----------------------------------

_TOKEN_EVENTS = [b'data: {"token": {"text": "%d"}}\n\n' % i for i in range(6)]
_OTHER = encode_message([(":message-type", "event"), (":event-type", "Ping")], b"{}")


def _stream(ending: bytes) -> bytes:
    """Token events cut across PayloadParts anywhere, an unknown event among them, and then
    `ending`."""
    text = b"".join(_TOKEN_EVENTS)
    parts = [text[:7], text[7:50], text[50:51], text[51:]]
    first = encode_payload_part(parts[0]) + _OTHER
    return first + b"".join(map(encode_payload_part, parts[1:])) + ending


_ENDINGS = {
    "clean": b"",
    "exception": encode_exception("ModelStreamError", "boom", "StreamBroken"),
    "exception, then garbage": encode_exception("InternalStreamFailure", "x") + b"\0" * 40,
    "bad CRC": encode_payload_part(b"data: {}\n\n")[:-1] + b"\0",
}


@pytest.mark.parametrize("maker", MAKERS)
@pytest.mark.parametrize("parser_class", PARSERS)
@pytest.mark.parametrize("ending", list(_ENDINGS))
@settings(max_examples=40, deadline=None)
@given(points=st.lists(st.integers(0, 400), max_size=5))
def test_read_feeds_and_times_the_attached_parser(
    maker: Callable[[], EventDecoder], parser_class: Any, ending: str, points: list[int]
) -> None:
    """However the reads fall, with either decoder and either parser: every token event fed
    and timed, in order, by the read that completed it; a StreamException kept and nothing
    after it read; bad bytes make the decoder broken, never raise."""
    data = _stream(_ENDINGS[ending])
    edges = [0, *sorted(min(p, len(data)) for p in points), len(data)]
    decoder, parser = maker(), parser_class()
    decoder.attach(parser)
    before = time.monotonic_ns()
    for a, b in zip(edges, edges[1:], strict=False):
        decoder.read(data[a:b])
    after = time.monotonic_ns()
    assert decoder.exception == {
        "exception": StreamException("ModelStreamError", "StreamBroken", "boom"),
        "exception, then garbage": StreamException("InternalStreamFailure", None, "x"),
    }.get(ending)
    assert decoder.broken == (ending == "bad CRC")
    assert parser.tokens == len(_TOKEN_EVENTS) and parser.parts == 4
    if ending == "clean":  # timed on the monotonic clock, one gap per later token event
        assert before <= parser.first_token_ns <= parser.last_token_ns <= after
        gaps = parser.gaps_us()
        assert len(gaps) == len(_TOKEN_EVENTS) - 1 and all(gap >= 0 for gap in gaps)
        assert sum(gaps) <= (parser.last_token_ns - parser.first_token_ns) // 1000


@pytest.mark.parametrize("parser_class", PARSERS)
def test_a_reads_tokens_share_its_time(parser_class: Any) -> None:
    parser = parser_class()
    assert (parser.first_token_ns, list(parser.gaps_us())) == (0, [])  # none came yet
    parser.time(1, 5_000_000)
    parser.time(3, 7_500_000)  # three in one read: a gap, then two of 0
    parser.time(0, 9_000_000)  # nothing came: nothing changes
    parser.time(1, 9_000_999)
    assert (parser.first_token_ns, parser.last_token_ns) == (5_000_000, 9_000_999)
    assert list(parser.gaps_us()) == [2500, 0, 0, 1500]
