"""AWS event stream (`application/vnd.amazon.eventstream`) decoding, incrementally.

InvokeEndpointWithResponseStream answers with a stream of messages; network reads split them
at any byte. A message is a 12-byte prelude (u32 total length, u32 headers length, CRC32 of
those 8 bytes), headers (`[u8 name length][name][u8 type][value]`), the payload and a CRC32
of everything before it, all big-endian. SageMaker sends `:message-type` event with
`:event-type` PayloadPart (the payload: the model's raw bytes) and ends a failed stream with
`:message-type` exception, `:exception-type` ModelStreamError (JSON Message and ErrorCode) or
InternalStreamFailure (JSON Message).

`EventStreamDecoder()` makes a decoder whose `feed(data)` keeps the bytes of an incomplete
message and returns the events completed so far: `PayloadPart`, `StreamException` or
`OtherMessage`; `pending` counts the bytes held and `close()` raises if the stream ended
inside a message. `attach(parser)` then `read(data)` is the streaming call's way, one call a
read: each PayloadPart's payload goes to the token parser (tokens.py; from the C decoder to
the C parser no Python object is made), and the token events it completed are timed now
(`parser.time`); other events are passed over. A StreamException ends the stream (kept in
`exception`), bad bytes set `broken`; after either, nothing more is read.

Two implementations give the same events and the same errors: the C extension
`_eventstreamc` (scanning, both CRCs and the few headers that matter in one call per read)
and `PyEventStreamDecoder` here, the reference, used when the extension is not built or
LOADGEN_PURE_EVENTSTREAM=1. tests/test_eventstream.py holds both against botocore's
EventStreamBuffer on the same bytes. eventstream_encode.py writes such streams.

Anything malformed raises `EventStreamError` (a ValueError): a bad CRC, a length below the
minimum or above botocore's limits (128 KiB of headers, 24 MiB of payload), a header that runs
past the headers, an unknown value type, a name or string that is not UTF-8, a repeated header.
A decoder that raised is unusable: every later feed raises again.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple, Protocol
from zlib import crc32

PRELUDE_LENGTH = 12
MIN_MESSAGE_LENGTH = 16  # a prelude and the message CRC
MAX_HEADERS_LENGTH = 128 * 1024  # botocore's limits
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024


# -- Events ---------------------------------------------------------------------------------


class PayloadPart(NamedTuple):
    """A piece of the model's response, raw bytes cut wherever the model's writes fell."""

    payload: bytes


class StreamException(NamedTuple):
    """The endpoint ended the stream with an error message instead of more PayloadParts."""

    # An `exception` message's :exception-type (ModelStreamError, InternalStreamFailure), or an
    # `error` message's :error-code; "" when the message lacks it. botocore's Error Code.
    kind: str
    error_code: str | None  # the JSON payload's ErrorCode (ModelInvocationTimeExceeded, ...)
    message: str | None  # the JSON payload's Message, or an `error` message's :error-message


class OtherMessage(NamedTuple):
    """Any other message (another event type, an unknown message type): kept, not dropped."""

    message_type: str | None
    event_type: str | None
    payload: bytes


Event = PayloadPart | StreamException | OtherMessage


class EventStreamError(ValueError):
    """The bytes are not a valid event stream; the decoder that raised it is unusable."""

    def __init__(self, message: str, events: list[Event] | None = None) -> None:
        super().__init__(message)
        # The events that the same feed completed before the bad message: nothing is lost.
        self.events: list[Event] = [] if events is None else events


class PayloadSink(Protocol):
    """A token parser, as read() sees it."""

    def feed(self, payload: bytes, /) -> int: ...

    def time(self, count: int, now_ns: int, /) -> None: ...


class EventDecoder(Protocol):
    """What both implementations offer."""

    def feed(self, data: bytes, /) -> list[Event]:
        """The events completed by these bytes; an incomplete message's bytes are kept."""
        ...

    def attach(self, parser: PayloadSink, /) -> None:
        """The token parser read() feeds."""
        ...

    def read(self, data: bytes, /) -> None:
        """A streaming call's body bytes: its PayloadParts fed, its token events timed."""
        ...

    @property
    def exception(self) -> StreamException | None:
        """read(): the StreamException that ended the stream."""
        ...

    @property
    def broken(self) -> bool:
        """read(): the bytes were not an event stream."""
        ...

    @property
    def pending(self) -> int:
        """Bytes held of a message not complete yet."""
        ...

    def close(self) -> None:
        """The stream ended: raises EventStreamError when a message was cut short."""
        ...


def _other_event(
    message_type: str | None,
    event_type: str | None,
    exception_type: str | None,
    error_code: str | None,
    error_message: str | None,
    payload: bytes,
) -> Event:
    """The event of any message but a PayloadPart; C calls it too (they are rare)."""
    if message_type == "exception":
        code = text = None
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict):
            found = body.get("ErrorCode")
            code = found if isinstance(found, str) else None
            found = body.get("Message", body.get("message"))  # botocore reads both
            text = found if isinstance(found, str) else None
        return StreamException(exception_type or "", code, text)
    if message_type == "error":
        return StreamException(error_code or "", None, error_message)
    return OtherMessage(message_type, event_type, payload)


# -- The pure Python decoder: the reference -------------------------------------------------

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")

# Bytes of a value, by type byte: true, false, byte, short, integer, long, bytes, string,
# timestamp, uuid (botocore's types); None: a u16 length comes first.
_VALUE_SIZES: tuple[int | None, ...] = (0, 0, 1, 2, 4, 8, None, None, 8, 16)
_STRING = 7
# The headers read, by their index in _Kinds; all must be strings.
_KNOWN = {
    ":message-type": 0,
    ":event-type": 1,
    ":exception-type": 2,
    ":error-code": 3,
    ":error-message": 4,
}


class _Kinds(NamedTuple):
    """The values of the headers that decide the event, or None when absent."""

    message_type: str | None
    event_type: str | None
    exception_type: str | None
    error_code: str | None
    error_message: str | None


def _check_prelude(data: bytes, pos: int) -> tuple[int, int, int]:
    """(total length, headers length, prelude CRC) of the message at pos, checked."""
    total, headers_length, crc = _PRELUDE.unpack_from(data, pos)
    if crc32(data[pos : pos + 8]) != crc:
        raise EventStreamError("prelude checksum mismatch")
    if total < MIN_MESSAGE_LENGTH:
        raise EventStreamError(f"message length {total} below the minimum of {MIN_MESSAGE_LENGTH}")
    if headers_length > MAX_HEADERS_LENGTH:
        raise EventStreamError(
            f"headers length {headers_length} above the maximum of {MAX_HEADERS_LENGTH}"
        )
    payload_length = total - headers_length - MIN_MESSAGE_LENGTH
    if payload_length < 0:
        raise EventStreamError(
            f"headers length {headers_length} does not fit in message length {total}"
        )
    if payload_length > MAX_PAYLOAD_LENGTH:
        raise EventStreamError(
            f"payload length {payload_length} above the maximum of {MAX_PAYLOAD_LENGTH}"
        )
    return total, headers_length, crc


def _read_headers(block: bytes) -> _Kinds:
    """Every header checked; the values of those in _KNOWN. The C scan follows these steps in
    this order, so both raise the same message for the same bytes."""
    found: list[str | None] = [None] * len(_KNOWN)
    seen: set[str] = set()
    pos, end = 0, len(block)
    while pos < end:
        name_length = block[pos]
        pos += 1
        if end - pos < name_length:
            raise EventStreamError("header runs past the headers")
        raw_name = block[pos : pos + name_length]
        pos += name_length
        if pos >= end:
            raise EventStreamError("header runs past the headers")
        value_type = block[pos]
        pos += 1
        if value_type >= len(_VALUE_SIZES):
            raise EventStreamError(f"header value type {value_type} unknown")
        size = _VALUE_SIZES[value_type]
        if size is None:
            if end - pos < 2:
                raise EventStreamError("header runs past the headers")
            size = _U16.unpack_from(block, pos)[0]
            pos += 2
        if end - pos < size:
            raise EventStreamError("header runs past the headers")
        value = block[pos : pos + size]
        pos += size
        try:
            name = raw_name.decode()
        except UnicodeDecodeError:
            raise EventStreamError("header name is not UTF-8") from None
        text = None
        if value_type == _STRING:
            try:
                text = value.decode()
            except UnicodeDecodeError:
                raise EventStreamError("header string is not UTF-8") from None
        if name in seen:
            raise EventStreamError(f"duplicate header {name!r}")
        seen.add(name)
        index = _KNOWN.get(name)
        if index is not None:
            if value_type != _STRING:
                raise EventStreamError(f"header {name} is not a string")
            found[index] = text
    return _Kinds(*found)


class PyEventStreamDecoder:
    """The pure Python decoder: the reference the C one must match, and the fallback."""

    __slots__ = (
        "_buffer",
        "_need",
        "_failed",
        "_block",
        "_kinds",
        "_is_part",
        "_parser",
        "exception",
        "broken",
    )

    def __init__(self) -> None:
        self._buffer = bytearray()  # the start of a message not complete yet
        self._need = PRELUDE_LENGTH  # bytes the buffer must hold before it is scanned again
        self._failed = False
        # A stream's messages repeat one header block: the last one and what it said.
        self._block = b""
        self._kinds = _Kinds(None, None, None, None, None)
        self._is_part = False
        self._parser: PayloadSink | None = None
        self.exception: StreamException | None = None
        self.broken = False

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def attach(self, parser: PayloadSink) -> None:
        self._parser = parser

    def read(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            raise RuntimeError("read() before attach()")
        if self.broken or self.exception is not None:
            return
        error = None
        try:
            events = self.feed(data)
        except EventStreamError as exc:  # what came before the bad message is read, as in C
            events, error = exc.events, exc
        found = 0
        for event in events:
            if type(event) is PayloadPart:
                found += parser.feed(event.payload)
            elif type(event) is StreamException:
                self.exception = event
                return  # what follows it is never read
        if error is not None:
            self.broken = True
        elif found:
            parser.time(found, time.monotonic_ns())

    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            raise EventStreamError("the decoder failed earlier")
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return []
            data = bytes(buffer)
            buffer.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        events: list[Event] = []
        try:
            pos = self._scan(data, events)
        except EventStreamError as error:
            self._failed = True
            error.events = events
            raise
        if pos < len(data):
            buffer += memoryview(data)[pos:]
        return events

    def close(self) -> None:
        if self._buffer:
            self._failed = True
            self._buffer.clear()
            raise EventStreamError("the stream ended inside a message")

    def _scan(self, data: bytes, events: list[Event]) -> int:
        """Decodes the whole messages in data into events; returns where the rest starts."""
        view = memoryview(data)
        end = len(data)
        pos = 0
        while end - pos >= PRELUDE_LENGTH:
            total, headers_length, crc = _check_prelude(data, pos)
            if end - pos < total:
                self._need = total
                return pos
            stop = pos + total - 4  # the message CRC's offset
            if crc32(view[pos + 8 : stop], crc) != _U32.unpack_from(data, stop)[0]:
                raise EventStreamError("message checksum mismatch")
            headers_end = pos + PRELUDE_LENGTH + headers_length
            block = data[pos + PRELUDE_LENGTH : headers_end]
            if block != self._block:
                kinds = _read_headers(block)
                self._block, self._kinds = block, kinds
                self._is_part = kinds.message_type == "event" and kinds.event_type == "PayloadPart"
            if self._is_part:
                events.append(PayloadPart(data[headers_end:stop]))
            else:
                events.append(_other_event(*self._kinds, data[headers_end:stop]))
            pos = stop + 4
        self._need = PRELUDE_LENGTH
        return pos


def _load_c_decoder() -> Callable[[], EventDecoder] | None:
    """The C decoder's maker, or None: not built, or LOADGEN_PURE_EVENTSTREAM=1."""
    if os.environ.get("LOADGEN_PURE_EVENTSTREAM") == "1":
        return None
    try:
        from loadgen.transport._eventstreamc import Decoder
    except ImportError:
        return None
    return partial(Decoder, PayloadPart, _other_event, EventStreamError)


CEventStreamDecoder = _load_c_decoder()
# A new decoder for each stream: C when it was built, else the Python one.
EventStreamDecoder: Callable[[], EventDecoder] = CEventStreamDecoder or PyEventStreamDecoder
