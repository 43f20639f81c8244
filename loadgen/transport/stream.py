"""One streaming call's body, read as it arrives: event-stream messages, their PayloadParts
read as token events, each timed on arrival. Both transports use it, so they count alike.

Tokens that arrive in one read share its time: a gap is what the client saw between two
token events, as vLLM's benchmark and llmperf take it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loadgen import api
from loadgen.transport.base import Outcome, StreamResult
from loadgen.transport.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    PayloadPart,
    StreamException,
)
from loadgen.transport.tokens import StreamFormat, TokenParser


class StreamReader:
    """Times and counts one stream; `outcome` ends it."""

    __slots__ = ("_clock", "_decoder", "_parser", "result", "_gaps", "exception", "broken")

    def __init__(self, stream_format: str, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._decoder = EventStreamDecoder()
        self._parser = TokenParser(StreamFormat(stream_format))
        self.result = StreamResult()
        self._gaps: list[int] = []
        self.exception: StreamException | None = None  # the stream ended with this message
        self.broken = False  # bytes that are not an event stream: a ProtocolError

    def head(self) -> None:
        """The response head arrived (its echo with it)."""
        self.result.head_ns = self._clock()

    def data(self, chunk: bytes) -> None:
        """Body bytes off the wire, cut anywhere."""
        if self.broken or self.exception is not None:
            return
        try:
            events = self._decoder.feed(chunk)
        except EventStreamError as exc:
            events = exc.events or []
            self.broken = True
        for event in events:
            if type(event) is PayloadPart:
                self.part(event.payload)
            elif type(event) is StreamException:
                self.exception = event
                return

    def part(self, payload: bytes) -> None:
        """One PayloadPart: its token events, timed now."""
        result = self.result
        result.parts += 1
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
        # raw chunks time the stream but are no tokens; a reported count overrides ours
        result.tokens = self._parser.output_tokens or 0
        result.gaps_us = self._gaps
        return Outcome(status, None, variant, echoed, stream=result)
