"""What streaming calls add to an endpoint's numbers: time to the response head and to the
first token, the gaps between tokens, time per output token, and the tokens themselves.

Only successful streams count here (a failed one is an error, its partial tokens are not
output). TTFB and TTFT have two histograms, as latency does: from the intended start (the
open loop's, coordinated-omission corrected) and from the send. The gaps and TPOT are
between the stream's own events, so they have one.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from loadgen.histograms import new_histogram, record_value
from loadgen.transport.base import StreamResult

_HISTOGRAMS = ("ttfb", "ttfb_service", "ttft", "ttft_service", "itl", "tpot")


@dataclass(frozen=True)
class StreamState:
    """StreamStats between processes: histograms encoded, in _HISTOGRAMS order."""

    histograms: tuple[str, ...]
    streams: int
    output_tokens: int


class StreamStats:
    __slots__ = (*_HISTOGRAMS, "streams", "output_tokens")

    def __init__(self) -> None:
        for name in _HISTOGRAMS:
            setattr(self, name, new_histogram())
        self.streams = 0  # successful streams
        self.output_tokens = 0

    ttfb: HdrHistogram
    ttfb_service: HdrHistogram
    ttft: HdrHistogram
    ttft_service: HdrHistogram
    itl: HdrHistogram
    tpot: HdrHistogram

    def add(self, result: StreamResult, intended_ns: int, sent_ns: int, done_ns: int) -> None:
        """One successful stream; times in µs, as every histogram here holds them."""
        self.streams += 1
        self.output_tokens += result.tokens
        record_value(self.ttfb, (result.head_ns - intended_ns) // 1000)
        record_value(self.ttfb_service, (result.head_ns - sent_ns) // 1000)
        first_ns = result.first_token_ns
        if not first_ns:
            return
        record_value(self.ttft, (first_ns - intended_ns) // 1000)
        record_value(self.ttft_service, (first_ns - sent_ns) // 1000)
        itl = self.itl
        for gap_us in result.gaps_us or ():
            record_value(itl, gap_us)
        if result.tokens > 1:  # as vLLM's benchmark: the time after the first token, shared
            record_value(self.tpot, (done_ns - first_ns) // 1000 // (result.tokens - 1))

    def to_state(self) -> StreamState:
        encoded = tuple(getattr(self, name).encode().decode("ascii") for name in _HISTOGRAMS)
        return StreamState(encoded, self.streams, self.output_tokens)

    def merge_state(self, state: StreamState) -> None:
        if state.streams:
            for name, encoded in zip(_HISTOGRAMS, state.histograms, strict=True):
                getattr(self, name).decode_and_add(encoded)
        self.streams += state.streams
        self.output_tokens += state.output_tokens
