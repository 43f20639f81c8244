"""The mock's InvokeEndpointWithResponseStream: tokens on their own clock, as an LLM
container streams them, framed as SageMaker frames them (event-stream PayloadParts).

Each token's event (a TGI-style SSE event, or an LMI-style JSON line) is cut into one to
three PayloadParts at random places, as real containers' writes fall: a reader that
assumed one event per part would miscount. The last token's event carries TGI's
`details.generated_tokens`; SSE ends with `data: [DONE]`.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from loadgen import api
from loadgen.mock.capacity import Copies
from loadgen.mock.config import MockStream
from loadgen.transport.eventstream_encode import encode_exception, encode_payload_part

if TYPE_CHECKING:
    from loadgen.mock.server import MockStats

CONTENT_TYPES = {"sse": "text/event-stream", "jsonl": "application/jsonlines"}
H_STREAM_CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"


class Streamer:
    """Serves stream calls by `config`; counts them in `stats`."""

    def __init__(
        self,
        config: MockStream,
        seed: int | None,
        stats: MockStats,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._config = config
        self._sleep = sleep  # the mock's FineSleeper: token gaps to the microsecond
        self._stats = stats
        self._random = random.Random(None if seed is None else f"{seed}:stream")
        self._ttft = config.ttft_ms.lognormal()
        self._itl = config.itl_ms.lognormal()

    def _delay_s(self, params: tuple[float | None, float]) -> float:
        mu, sigma = params
        if mu is None:
            return 0.0
        return self._random.lognormvariate(mu, sigma) / 1000.0

    async def respond(
        self, request: web.Request, variant: str, echo: str, copies: Copies | None = None
    ) -> web.StreamResponse:
        """With `copies`, the stream waits for a model copy (before its head, as a container
        answers once it runs) and holds it for all its tokens: their times are drawn first."""
        config = self._config
        delays = None
        if copies is not None:
            delays = [self._delay_s(self._ttft)]
            delays += [self._delay_s(self._itl) for _ in range(config.tokens - 1)]
            busy_s = sum(delays)
            await self._sleep(copies.admit(busy_s) - busy_s)
        headers = {
            "Content-Type": api.EVENT_STREAM_CONTENT_TYPE,
            H_STREAM_CONTENT_TYPE: CONTENT_TYPES[config.format],
            api.H_INVOKED_VARIANT: variant,
        }
        if echo:
            headers[api.H_CUSTOM_ATTRIBUTES] = echo
        response = web.StreamResponse(headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)  # the head, and the echo, before any token
        stats = self._stats
        stats.streams += 1
        tokens = config.tokens
        fail_after = None
        if config.stream_error_rate and self._random.random() < config.stream_error_rate:
            fail_after = self._random.randrange(tokens)  # tokens sent before the error
        await self._sleep(delays[0] if delays else self._delay_s(self._ttft))
        for index in range(tokens):
            if index:
                await self._sleep(delays[index] if delays else self._delay_s(self._itl))
            if index == fail_after:
                stats.stream_errors += 1
                await response.write(
                    encode_exception(
                        "ModelStreamError",
                        "Model invocation exceeded the time limit.",
                        "ModelInvocationTimeExceeded",
                    )
                )
                break
            last = index == tokens - 1
            await response.write(self._parts(token_event(config.format, index, last, tokens)))
            stats.stream_tokens += 1
        else:
            if config.format == "sse":
                await response.write(self._parts(b"data: [DONE]\n\n"))
        await response.write_eof()
        return response

    def _parts(self, event: bytes) -> bytes:
        """`event` as one to three PayloadParts, cut at random places."""
        cuts = sorted(self._random.sample(range(1, len(event)), k=self._random.randrange(3)))
        bounds = [0, *cuts, len(event)]
        return b"".join(
            encode_payload_part(event[start:end]) for start, end in itertools.pairwise(bounds)
        )


def token_event(stream_format: str, index: int, last: bool, tokens: int) -> bytes:
    """Token `index` as TGI's SSE event or LMI's JSON line; the last one says how many."""
    token = {"id": 1000 + index, "text": f" tok{index}", "logprob": -0.5, "special": False}
    event: dict[str, object] = {"index": index + 1, "token": token}
    if last:
        event["generated_text"] = "".join(f" tok{i}" for i in range(tokens))
        event["details"] = {"finish_reason": "length", "generated_tokens": tokens}
    line = json.dumps(event, separators=(",", ":")).encode()
    return b"data:" + line + b"\n\n" if stream_format == "sse" else line + b"\n"
