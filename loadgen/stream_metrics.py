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

from loadgen.histograms import new_histogram, record_all, record_value
from loadgen.scenario import GoodputLimits
from loadgen.transport.base import StreamResult

_HISTOGRAMS = ("ttfb", "ttfb_service", "ttft", "ttft_service", "itl", "tpot")


@dataclass(frozen=True)
class Goodput:
    """Limits every good request meets (vLLM's goodput): a successful stream within each."""

    ttft_us: int | None = None
    tpot_us: int | None = None
    latency_us: int | None = None  # end to end, from the intended start

    @classmethod
    def of(cls, limits: GoodputLimits | None) -> Goodput | None:
        if limits is None:
            return None

        def us(ms: float | None) -> int | None:
            return None if ms is None else round(ms * 1000)

        return cls(us(limits.ttft_ms), us(limits.tpot_ms), us(limits.latency_ms))


@dataclass(frozen=True)
class StreamState:
    """StreamStats between processes: histograms encoded, in _HISTOGRAMS order."""

    histograms: tuple[str, ...]
    streams: int
    output_tokens: int
    good: int | None


class StreamStats:
    __slots__ = (*_HISTOGRAMS, "streams", "output_tokens", "goodput", "good")

    def __init__(self, goodput: Goodput | None = None) -> None:
        for name in _HISTOGRAMS:
            setattr(self, name, new_histogram())
        self.streams = 0  # successful streams
        self.output_tokens = 0
        self.goodput = goodput
        self.good: int | None = None if goodput is None else 0  # streams within every limit

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
        ttft_us = tpot_us = None
        if first_ns:
            ttft_us = (first_ns - intended_ns) // 1000
            record_value(self.ttft, ttft_us)
            record_value(self.ttft_service, (first_ns - sent_ns) // 1000)
            if result.gaps_us is not None:
                record_all(self.itl, result.gaps_us)
            if result.tokens > 1:  # as vLLM's benchmark: the time after the first token, shared
                tpot_us = (done_ns - first_ns) // 1000 // (result.tokens - 1)
                record_value(self.tpot, tpot_us)
        goodput = self.goodput
        if goodput is not None and self.good is not None:
            latency_us = (done_ns - intended_ns) // 1000
            if (
                _within(ttft_us, goodput.ttft_us)
                and _within(
                    0 if ttft_us is not None and tpot_us is None else tpot_us, goodput.tpot_us
                )
                and _within(latency_us, goodput.latency_us)
            ):
                self.good += 1

    def to_state(self) -> StreamState:
        encoded = tuple(getattr(self, name).encode().decode("ascii") for name in _HISTOGRAMS)
        return StreamState(encoded, self.streams, self.output_tokens, self.good)

    def merge_state(self, state: StreamState) -> None:
        if state.streams:
            for name, encoded in zip(_HISTOGRAMS, state.histograms, strict=True):
                getattr(self, name).decode_and_add(encoded)
        self.streams += state.streams
        self.output_tokens += state.output_tokens
        if state.good is not None:
            self.good = (self.good or 0) + state.good


def _within(value_us: int | None, limit_us: int | None) -> bool:
    """No limit is met by anything; a limit is not met by a value that never came (a stream
    with no token has no TTFT, nor TPOT; one with a single token has a TPOT of 0)."""
    if limit_us is None:
        return True
    return value_us is not None and value_us <= limit_us
