"""Token events from a streamed response's bytes (its PayloadParts), incrementally.

`TokenParser(format)` is fed each PayloadPart's payload as it arrives; `feed` returns how many
token events that payload completed, so the caller can timestamp the first one (TTFT) and
each gap (inter-token latency). PayloadPart boundaries are wherever the container's writes
and SageMaker's buffering fell: an event or a line may span many parts, and a part may hold
many. Nothing here raises on what the container sends.

Formats (the scenario's `stream_format`):

- `sse` (default): Server-Sent Events, as TGI, LMI (`option.output_formatter=sse`) and the
  OpenAI-compatible servers (vLLM, SGLang, LMI's chat API) send them: `data:` lines, an event
  ends at a blank line (lines end in LF or CRLF; a lone CR is not taken for a line end), the
  data lines of one event are joined with LF, the one space after `data:` is dropped,
  comments (`:`) and other fields (`event:`, `id:`, `retry:`) are ignored, an event without
  data is none. `data: [DONE]` ends the stream (`done`).
- `jsonl`: one JSON value per line (LMI's default `jsonlines`); blank lines are skipped.
- `raw`: each non-empty PayloadPart is one chunk; `feed` returns 1 for it and no token is
  counted (`output_tokens` is None): for containers whose output is not made of tokens.

What counts (one token at most per event, as vLLM's benchmark_serving, llmperf and GuideLLM
count a streamed chunk that carries text; an event with empty text is no token):

- TGI and LMI rolling batch: `{"token": {"text": "..."}}`. TGI's last event also carries
  `generated_text`; it is still one token.
- OpenAI-style chat: `choices[0].delta.content`, or `reasoning_content`/`reasoning` (the
  reasoning models' tokens are generated tokens too, and in `usage.completion_tokens`). The
  first chunk with only `role` and the last with `finish_reason` and no content are not
  tokens. Tool-call deltas are not counted (the usage override fixes the total).
- OpenAI-style completions: `choices[0].text`; `choices[0].message.content` for a whole
  answer sent as one event.
- LMI dynamic batch: `{"outputs": ["..."]}`; a bare `{"generated_text": "..."}`.

vLLM's newer benchmark counts every chunk that has `choices`, even with empty content; this
module keeps to the rule above (an empty delta is no token), as llmperf and GuideLLM do.

The count a container reports overrides the counted events for the request's total
(`output_tokens`): `usage.completion_tokens` (OpenAI-style, the last one seen) or
`details.generated_tokens` (TGI with details, LMI). A data event or line that is not valid
JSON (or not UTF-8) is a non-token event counted in `malformed`.

Two implementations count alike: `PyTokenParser` here, the reference, and the C one in
_tokensc.c (the event-stream decoder feeds it each PayloadPart without making a Python object
of it), used when the extension is built and LOADGEN_PURE_EVENTSTREAM is not 1. `classify`
is the rule for one event; the C parser reads the JSON itself and leaves to `classify` only
what it cannot settle cheaply (an escaped key, a huge count, deep nesting).
"""

from __future__ import annotations

import enum
import os
from array import array
from json import JSONDecoder
from typing import Any, Protocol, cast

_DONE = b"[DONE]"
_JSON_SPACE = " \t\n\r"
# json.loads without its wrapper: the same values and refusals, ~1.5 µs less an event
_raw_decode = JSONDecoder().raw_decode


class StreamFormat(enum.Enum):
    """How a streamed response's bytes are cut into events."""

    SSE = "sse"
    JSONL = "jsonl"
    RAW = "raw"


# Looking up an enum member costs ~0.1 µs in Python 3.11: the per-event paths use these.
_SSE, _JSONL, _RAW = StreamFormat.SSE, StreamFormat.JSONL, StreamFormat.RAW


def _has_text(value: object) -> bool:
    return type(value) is str and value != ""


def _count(value: object) -> int | None:
    """A reported token count: a non-negative int (not a bool), else None."""
    return value if type(value) is int and value >= 0 else None


class TokenCounter(Protocol):
    """What both implementations offer (read-only to their users)."""

    @property
    def format(self) -> StreamFormat: ...
    @property
    def done(self) -> bool: ...
    @property
    def reported_tokens(self) -> int | None: ...
    @property
    def tokens(self) -> int: ...
    @property
    def events(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    @property
    def parts(self) -> int:
        """Payloads fed."""
        ...

    @property
    def output_tokens(self) -> int | None: ...

    @property
    def first_token_ns(self) -> int:
        """When the first token event came (monotonic ns); 0: none came."""
        ...

    @property
    def last_token_ns(self) -> int: ...

    def time(self, count: int, now_ns: int, /) -> None:
        """`count` token events arrived at now_ns: a read's tokens share its time."""
        ...

    def gaps_us(self) -> array[int]:
        """The µs between consecutive token events, one per gap (0 within a read)."""
        ...

    @property
    def pending(self) -> int:
        """Bytes held after the last line end."""
        ...

    def feed(self, payload: bytes, /) -> int: ...

    def close(self) -> int: ...


def _output_tokens(parser: TokenCounter) -> int | None:
    """The request's output tokens: the reported count, else the token events; None for raw
    chunks."""
    if parser.format is _RAW:
        return None
    return parser.tokens if parser.reported_tokens is None else parser.reported_tokens


class PyTokenParser:
    """One stream's token events; `feed` each PayloadPart's payload, `close` at the end."""

    __slots__ = (
        "format",
        "done",
        "reported_tokens",
        "tokens",
        "events",
        "malformed",
        "parts",
        "first_token_ns",
        "last_token_ns",
        "_gaps",
        "_tail",
        "_data",
    )

    def __init__(self, format: StreamFormat = StreamFormat.SSE) -> None:
        self.format = format
        # -- what the stream said
        self.done = False  # saw `data: [DONE]`
        self.reported_tokens: int | None = None  # usage.completion_tokens, details.generated_tokens
        # -- counts
        self.tokens = 0  # token events (sse, jsonl)
        self.events = 0  # events with data, JSON lines, or raw chunks ([DONE] is none)
        self.malformed = 0  # events or lines that are not JSON
        self.parts = 0  # payloads fed
        # -- when the token events came
        self.first_token_ns = 0
        self.last_token_ns = 0
        self._gaps = array("q")
        # -- the unfinished part
        self._tail = bytearray()  # the bytes after the last line end
        self._data: list[bytes] = []  # the data lines of an SSE event not ended yet

    output_tokens = property(_output_tokens)

    @property
    def pending(self) -> int:
        return len(self._tail)

    def time(self, count: int, now_ns: int) -> None:
        if count <= 0:
            return
        gaps = self._gaps
        if self.first_token_ns:
            gaps.append((now_ns - self.last_token_ns) // 1000)
        else:
            self.first_token_ns = now_ns
        if count > 1:
            gaps.extend([0] * (count - 1))  # the rest of this read: no time between them
        self.last_token_ns = now_ns

    def gaps_us(self) -> array[int]:
        return array("q", self._gaps)

    def feed(self, payload: bytes) -> int:
        """Token events (raw: chunks) completed by this payload."""
        self.parts += 1
        if self.format is _RAW:
            if not payload:
                return 0
            self.events += 1
            return 1
        tail = self._tail
        if (
            not tail
            and payload[-2:] == b"\n\n"
            and payload.find(b"\n") == len(payload) - 2
            and payload[-3:-2] != b"\r"
            and self.format is _SSE
            and payload.startswith(b"data:")
        ):  # the usual part: one whole single-line event, as `_lines` would read it
            self._data.append(payload[6:-2] if payload[5:6] == b" " else payload[5:-2])
            return self._event()
        if b"\n" not in payload:  # no line ends here: keep it (no copy of the rest)
            tail += payload
            return 0
        if tail:
            tail += payload
            payload = bytes(tail)
            tail.clear()
        lines = payload.split(b"\n")
        last = lines.pop()
        if last:
            tail += last
        return self._lines(lines)

    def close(self) -> int:
        """The stream ended: a last line without its line end is read, and an SSE event
        without its blank line is ended. Returns the token events that completed."""
        found = 0
        if self._tail:
            line = bytes(self._tail)
            self._tail.clear()
            found += self._lines([line])
        if self._data:
            found += self._event()
        return found

    def _lines(self, lines: list[bytes]) -> int:
        found = 0
        if self.format is _JSONL:
            for line in lines:
                if line.strip():
                    found += self._json(line)
            return found
        data = self._data
        for line in lines:
            if line[-1:] == b"\r":
                line = line[:-1]
            if not line:  # a blank line ends the event
                if data:
                    found += self._event()
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line == b"data":  # a field without a colon has an empty value
                data.append(b"")
            # comments (":...") and other fields are ignored
        return found

    def _event(self) -> int:
        """The SSE event whose data lines are gathered."""
        data = self._data
        text = data[0] if len(data) == 1 else b"\n".join(data)
        data.clear()
        if not text:
            return 0  # no data: no event
        if text == _DONE or (len(text) < 16 and text.strip() == _DONE):
            self.done = True
            return 0
        return self._json(text)

    def _json(self, text: bytes) -> int:
        """One event's JSON: 1 if it carries generated text, else 0."""
        self.events += 1
        found, reported = classify(text)
        if reported is not None:
            self.reported_tokens = reported
        if found < 0:
            self.malformed += 1
            return 0
        self.tokens += found
        return found


def classify(text: bytes) -> tuple[int, int | None]:
    """One event's JSON: (1 if it carries generated text, 0 if not, -1 if it is not JSON or
    not UTF-8; the token count it reports, or None)."""
    try:
        value: Any = _loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, nesting
        return -1, None
    if type(value) is not dict:
        return 0, None
    reported = None
    usage = value.get("usage")
    if type(usage) is dict and (count := _count(usage.get("completion_tokens"))) is not None:
        reported = count
    details = value.get("details")
    if type(details) is dict and (count := _count(details.get("generated_tokens"))) is not None:
        reported = count
    return _has_token(value), reported


def _has_token(event: dict[str, Any]) -> int:
    token = event.get("token")
    if type(token) is dict and _has_text(token.get("text")):
        return 1  # TGI, LMI
    choices = event.get("choices")
    if type(choices) is list and choices and type(choice := choices[0]) is dict:
        delta = choice.get("delta")
        if type(delta) is dict and (
            _has_text(delta.get("content"))
            or _has_text(delta.get("reasoning_content"))
            or _has_text(delta.get("reasoning"))
        ):
            return 1  # OpenAI-style chat
        if _has_text(choice.get("text")):
            return 1  # OpenAI-style completions
        message = choice.get("message")
        if type(message) is dict and _has_text(message.get("content")):
            return 1
    outputs = event.get("outputs")
    if type(outputs) is list and any(_has_text(output) for output in outputs):
        return 1  # LMI dynamic batch
    return 1 if _has_text(event.get("generated_text")) else 0


def _loads(data: bytes) -> Any:
    """json.loads of UTF-8 bytes: JSON whitespace around one value, else ValueError."""
    text = data.decode()
    start = 0
    if text[:1] in _JSON_SPACE:  # "" too: raw_decode then refuses it
        start = len(text) - len(text.lstrip(_JSON_SPACE))
    value, end = _raw_decode(text, start)
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        raise ValueError("extra data")
    return value


_FORMAT_CODES = {_SSE: 0, _JSONL: 1, _RAW: 2}  # _tokensc.c's FORMAT_*


def _load_c_parser() -> type[TokenCounter] | None:
    """The C parser's class, or None: not built, or LOADGEN_PURE_EVENTSTREAM=1."""
    if os.environ.get("LOADGEN_PURE_EVENTSTREAM") == "1":
        return None
    try:
        from loadgen.transport._eventstreamc import Tokens
    except ImportError:
        return None

    class CTokenParser(Tokens):
        """The C parser, made and read as PyTokenParser is."""

        __slots__ = ("format",)
        format: StreamFormat

        def __new__(cls, format: StreamFormat = StreamFormat.SSE) -> CTokenParser:
            parser = cast(CTokenParser, super().__new__(cls, _FORMAT_CODES[format], classify))
            parser.format = format
            return parser

        @property
        def output_tokens(self) -> int | None:
            return _output_tokens(self)

    return CTokenParser


CTokenParser = _load_c_parser()
# A new parser for each stream: C when it was built, else the Python one.
TokenParser: type[TokenCounter] = CTokenParser or PyTokenParser
