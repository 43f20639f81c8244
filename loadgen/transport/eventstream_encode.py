"""Writing AWS event streams: what the mock endpoint and the fault servers send.

`encode_message(headers, payload)` makes one message with any of botocore's header value
types; `encode_payload_part` and `encode_exception` make the messages SageMaker sends on
InvokeEndpointWithResponseStream. eventstream.py decodes them.
"""

from __future__ import annotations

import enum
import json
import struct
import uuid
from collections.abc import Iterable
from typing import NamedTuple
from zlib import crc32

from loadgen.transport.eventstream import MIN_MESSAGE_LENGTH

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class HeaderType(enum.IntEnum):
    """A header value's type byte."""

    TRUE = 0
    FALSE = 1
    BYTE = 2
    SHORT = 3
    INTEGER = 4
    LONG = 5
    BYTES = 6
    STRING = 7
    TIMESTAMP = 8  # milliseconds since the epoch, as a long
    UUID = 9


class TypedInt(NamedTuple):
    """An integer header value of a type other than LONG (BYTE, SHORT, INTEGER, TIMESTAMP)."""

    type: HeaderType
    value: int


# bool: TRUE/FALSE, int: LONG, bytes: BYTES, str: STRING, uuid.UUID: UUID.
HeaderValue = bool | int | bytes | str | uuid.UUID | TypedInt

_INT_FORMATS = {
    HeaderType.BYTE: struct.Struct(">b"),
    HeaderType.SHORT: struct.Struct(">h"),
    HeaderType.INTEGER: struct.Struct(">i"),
    HeaderType.LONG: struct.Struct(">q"),
    HeaderType.TIMESTAMP: struct.Struct(">q"),
}


def _encode_value(value: HeaderValue) -> bytes:
    if isinstance(value, bool):
        return bytes([HeaderType.TRUE if value else HeaderType.FALSE])
    if isinstance(value, TypedInt | int):
        kind, number = value if isinstance(value, TypedInt) else (HeaderType.LONG, value)
        if kind not in _INT_FORMATS:
            raise ValueError(f"{kind!r} is not an integer type")
        try:
            return bytes([kind]) + _INT_FORMATS[kind].pack(number)
        except struct.error:
            raise ValueError(f"{number} does not fit in a {kind.name}") from None
    if isinstance(value, uuid.UUID):
        return bytes([HeaderType.UUID]) + value.bytes
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if len(raw) > 0xFFFF:
        raise ValueError(f"a header value of {len(raw)} bytes; at most 65535")
    kind = HeaderType.STRING if isinstance(value, str) else HeaderType.BYTES
    return bytes([kind]) + _U16.pack(len(raw)) + raw


def encode_headers(headers: Iterable[tuple[str, HeaderValue]]) -> bytes:
    """The header block, in the order given (duplicates are not refused: tests need them)."""
    parts = []
    for name, value in headers:
        raw_name = name.encode()
        if len(raw_name) > 255:
            raise ValueError(f"a header name of {len(raw_name)} bytes; at most 255")
        parts.append(bytes([len(raw_name)]) + raw_name + _encode_value(value))
    return b"".join(parts)


def frame(block: bytes, payload: bytes) -> bytes:
    """A message around an encoded header block; limits are not checked (fault servers
    send what the decoder must refuse)."""
    prelude = _U32.pack(MIN_MESSAGE_LENGTH + len(block) + len(payload)) + _U32.pack(len(block))
    head = prelude + _U32.pack(crc32(prelude)) + block
    return head + payload + _U32.pack(crc32(payload, crc32(head)))


def encode_message(headers: Iterable[tuple[str, HeaderValue]], payload: bytes = b"") -> bytes:
    """One event-stream message with these headers and payload."""
    return frame(encode_headers(headers), payload)


# The headers SageMaker sends on each part of the response, encoded once.
_PAYLOAD_PART_BLOCK = encode_headers(
    [
        (":event-type", "PayloadPart"),
        (":content-type", "application/octet-stream"),
        (":message-type", "event"),
    ]
)


def encode_payload_part(payload: bytes) -> bytes:
    """A PayloadPart message as SageMaker sends it."""
    return frame(_PAYLOAD_PART_BLOCK, payload)


def encode_exception(kind: str, message: str, error_code: str | None = None) -> bytes:
    """An exception message as SageMaker ends a failed stream: ModelStreamError (with an
    ErrorCode such as ModelInvocationTimeExceeded or StreamBroken), InternalStreamFailure."""
    body: dict[str, str] = {"Message": message}
    if error_code is not None:
        body["ErrorCode"] = error_code
    headers: list[tuple[str, HeaderValue]] = [
        (":exception-type", kind),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ]
    return encode_message(headers, json.dumps(body).encode())
