"""One streaming call's body, read as it arrives: event-stream messages, their PayloadParts
read as token events, each timed on arrival. Both transports use it, so they count alike.

Tokens that arrive in one read share its time: a gap is what the client saw between two
token events, as vLLM's benchmark and llmperf take it.

A read costs one call into the decoder (`feed_tokens`): with the C extension, its messages,
CRCs, SSE events and JSON are read in C and only the token count comes back. Gaps are kept
in an array of µs, recorded into the histograms in one C call per stream (histograms.py).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable

from loadgen import api
from loadgen.transport.base import Outcome, StreamResult
from loadgen.transport.eventstream import EventStreamDecoder, EventStreamError, StreamException
from loadgen.transport.tokens import StreamFormat, TokenParser


class StreamReader:
    """Times and counts one stream; `outcome` ends it."""

    __slots__ = (
        "_clock",
        "_decoder",
        "_feed",
        "_parser",
        "result",
        "_gaps",
        "exception",
        "broken",
    )

    def __init__(self, stream_format: str, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._decoder = decoder = EventStreamDecoder()
        self._feed = decoder.feed_tokens
        self._parser = TokenParser(StreamFormat(stream_format))  # type: ignore[call-arg]
        self.result = StreamResult()
        self._gaps = array("q")  # µs
        self.exception: StreamException | None = None  # the stream ended with this message
        self.broken = False  # bytes that are not an event stream: a ProtocolError

    def head(self) -> None:
        """The response head arrived (its echo with it)."""
        self.result.head_ns = self._clock()

    def data(self, chunk: bytes) -> None:
        """Body bytes off the wire, cut anywhere."""
        if self.broken:
            return
        try:
            tokens = self._feed(chunk, self._parser)
        except EventStreamError:
            self.broken = True
            return
        if tokens > 0:
            self._tokens(tokens)
        elif tokens < 0:
            self.exception = self._decoder.exception

    def part(self, payload: bytes) -> None:
        """One PayloadPart (botocore has decoded the messages): its token events, timed now."""
        tokens = self._parser.feed(payload)
        if tokens:
            self._tokens(tokens)

    def _tokens(self, tokens: int) -> None:
        result = self.result
        now_ns = self._clock()
        gaps = self._gaps
        if result.first_token_ns:
            gaps.append((now_ns - result.last_token_ns) // 1000)
        else:
            result.first_token_ns = now_ns
        if tokens > 1:
            gaps.extend([0] * (tokens - 1))  # the rest of this read: no time between them
        result.last_token_ns = now_ns
        result.tokens += tokens

    def outcome(self, status: int, variant: str | None, echoed: str | None) -> Outcome:
        """How the stream ended, once its response is complete."""
        if self.broken:
            return Outcome(status, api.PROTOCOL_ERROR, variant, echoed)
        exception = self.exception
        if exception is not None:
            return Outcome(
                status,
                exception.kind or api.PROTOCOL_ERROR,
                variant,
                echoed,
                stream_error_code=exception.error_code,
            )
        tail = self._parser.close()  # a last event without its blank line
        if tail:
            self._tokens(tail)
        result = self.result
        parser = self._parser
        # raw chunks time the stream but are no tokens; a reported count overrides ours
        result.tokens = parser.output_tokens or 0
        result.parts = parser.parts
        result.gaps_us = self._gaps
        return Outcome(status, None, variant, echoed, stream=result)
