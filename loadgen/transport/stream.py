"""One streaming call's body, read as it arrives: event-stream messages, their PayloadParts
read as token events, each timed on arrival. Both transports use it, so they count alike.

Tokens that arrive in one read share its time: a gap is what the client saw between two
token events, as vLLM's benchmark and llmperf take it.

A read costs one call into the decoder (`read`): with the C extension, its messages, CRCs,
SSE events, JSON and the tokens' times are all handled in C. Gaps are kept as an array of
µs, recorded into the histograms in one C call per stream (histograms.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loadgen import api
from loadgen.transport.base import Outcome, StreamResult
from loadgen.transport.eventstream import EventStreamDecoder
from loadgen.transport.tokens import StreamFormat, TokenParser


class StreamReader:
    """Times and counts one stream; `outcome` ends it."""

    __slots__ = ("_decoder", "_parser", "result", "data")

    def __init__(self, stream_format: str) -> None:
        self._decoder = decoder = EventStreamDecoder()
        self._parser = parser = TokenParser(StreamFormat(stream_format))  # type: ignore[call-arg]
        decoder.attach(parser)
        # Body bytes off the wire, cut anywhere: one call into the decoder, no Python frame.
        self.data: Callable[[bytes], None] = decoder.read
        self.result = StreamResult()

    def head(self) -> None:
        """The response head arrived (its echo with it)."""
        self.result.head_ns = time.monotonic_ns()

    def part(self, payload: bytes) -> None:
        """One PayloadPart (botocore has decoded the messages): its token events, timed now."""
        parser = self._parser
        tokens = parser.feed(payload)
        if tokens:
            parser.time(tokens, time.monotonic_ns())

    def outcome(self, status: int, variant: str | None, echoed: str | None) -> Outcome:
        """How the stream ended, once its response is complete."""
        decoder = self._decoder
        if decoder.broken:
            return Outcome(status, api.PROTOCOL_ERROR, variant, echoed)
        exception = decoder.exception
        if exception is not None:
            return Outcome(
                status,
                exception.kind or api.PROTOCOL_ERROR,
                variant,
                echoed,
                stream_error_code=exception.error_code,
            )
        parser = self._parser
        tail = parser.close()  # a last event without its blank line
        if tail:
            parser.time(tail, time.monotonic_ns())
        result = self.result
        # raw chunks time the stream but are no tokens; a reported count overrides ours
        result.tokens = parser.output_tokens or 0
        result.parts = parser.parts
        result.first_token_ns = parser.first_token_ns
        result.last_token_ns = parser.last_token_ns
        result.gaps_us = parser.gaps_us()
        return Outcome(status, None, variant, echoed, stream=result)
