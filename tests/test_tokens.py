"""TokenParser on what TGI, LMI and OpenAI-style servers stream, cut into PayloadParts anywhere.

Each stream's expected counts are written out by hand; then every way of cutting it (every
split point into two parts, one byte a part, random cuts) must give the same counts, and
the token events must come out of the payload that completes them. Every run goes through
both parsers, the Python reference and the C one, which must agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.transport import tokens
from loadgen.transport.tokens import (
    CTokenParser,
    PyTokenParser,
    StreamFormat,
    TokenCounter,
    TokenParser,
)

SSE, JSONL, RAW = StreamFormat.SSE, StreamFormat.JSONL, StreamFormat.RAW
# test_build.py checks the extension is built where a compiler is
PARSERS: list[type[TokenCounter]] = [PyTokenParser, *([CTokenParser] if CTokenParser else [])]


class Counts(NamedTuple):
    """What a parser knows at the end of a stream."""

    tokens: int  # the sum of feed()'s and close()'s answers
    events: int
    malformed: int
    done: bool
    reported: int | None
    output_tokens: int | None


def run(format: StreamFormat, parts: Sequence[bytes]) -> Counts:
    """The counts at the end, the same from every parser."""
    first, *others = [run_one(parser, format, parts) for parser in PARSERS]
    assert all(counts == first for counts in others), (first, others)
    return first


def run_one(
    parser_class: type[TokenCounter], format: StreamFormat, parts: Sequence[bytes]
) -> Counts:
    parser = parser_class(format)  # type: ignore[call-arg]
    found = sum(parser.feed(part) for part in parts) + parser.close()
    assert format is RAW or found == parser.tokens
    assert parser.parts == len(parts) and parser.pending == 0
    return Counts(
        found,
        parser.events,
        parser.malformed,
        parser.done,
        parser.reported_tokens,
        parser.output_tokens,
    )


def sse(*events: Any, end: bytes = b"\n\n", prefix: bytes = b"data: ") -> bytes:
    """SSE events with these JSON values (bytes are sent as they are)."""
    return b"".join(
        prefix + (e if isinstance(e, bytes) else json.dumps(e).encode()) + end for e in events
    )


def jsonl(*values: Any) -> bytes:
    return b"".join(json.dumps(value).encode() + b"\n" for value in values)


def tgi(text: str, index: int, special: bool = False, **last: Any) -> dict[str, Any]:
    token = {"id": 100 + index, "text": text, "logprob": -0.25, "special": special}
    event: dict[str, Any] = {
        "index": index,
        "token": token,
        "generated_text": None,
        "details": None,
    }
    return event | last


def chat(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def completion(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
    }


USAGE = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}}

STREAMS: dict[str, tuple[StreamFormat, bytes, Counts]] = {
    "TGI": (
        SSE,
        sse(
            tgi("Deep", 1),
            tgi(" Learning", 2),
            tgi("</s>", 3, True, generated_text="Deep Learning", details=None),
            prefix=b"data:",
        ),
        Counts(3, 3, 0, False, None, 3),
    ),
    "TGI with details": (
        SSE,
        sse(
            tgi("Hi", 1),
            tgi("", 2, True, generated_text="Hi", details={"generated_tokens": 2}),
            prefix=b"data:",
        ),
        Counts(2, 2, 0, False, 2, 2),  # the last token's text is empty; generated_text is not
    ),
    "vLLM chat": (
        SSE,
        sse(
            chat({"role": "assistant", "content": ""}),  # the role-only first chunk
            chat({"content": "Hello"}),
            chat({"content": ","}),
            chat({"content": " world"}),
            chat({}, finish="stop"),
            USAGE,
            b"[DONE]",
        ),
        Counts(3, 6, 0, True, 7, 7),
    ),
    "vLLM chat, reasoning": (
        SSE,
        sse(
            chat({"role": "assistant"}),
            chat({"reasoning_content": "Think"}),
            chat({"reasoning": "ing"}),
            chat({"content": "Yes", "reasoning_content": None}),
            chat({"content": None}, finish="stop"),
            b"[DONE]",
        ),
        Counts(3, 5, 0, True, None, 3),
    ),
    "vLLM completions": (
        SSE,
        sse(completion("The"), completion(" end"), completion("", "length"), USAGE, b"[DONE]"),
        Counts(2, 4, 0, True, 7, 7),
    ),
    "LMI jsonlines": (
        JSONL,
        jsonl(
            {"token": {"id": 304, "text": "Deep ", "log_prob": -0.05}},
            {"token": {"id": 11157, "text": "Learning", "log_prob": -1.3}},
            {
                "token": {"id": 278, "text": " is", "log_prob": -0.01},
                "generated_text": "Deep Learning is",
                "details": {"finish_reason": "length", "generated_tokens": 3, "inputs": "?"},
            },
        ),
        Counts(3, 3, 0, False, 3, 3),
    ),
    "LMI error": (
        JSONL,
        jsonl(
            {"token": {"id": 304, "text": "A"}},
            {
                "token": {"id": -1, "text": "", "log_prob": -1, "special_token": True},
                "generated_text": "",
                "details": {"finish_reason": "error", "generated_tokens": None, "inputs": None},
            },
        ),
        Counts(1, 2, 0, False, None, 1),
    ),
    "LMI SSE": (
        SSE,
        sse({"token": {"id": 1, "text": "a"}}, {"token": {"id": 2, "text": "b"}}),
        Counts(2, 2, 0, False, None, 2),
    ),
    "LMI dynamic batch": (
        JSONL,
        jsonl({"outputs": ["This"]}, {"outputs": [""]}, {"outputs": ["is"]}),
        Counts(2, 3, 0, False, None, 2),
    ),
    "generated_text alone": (
        JSONL,
        jsonl({"generated_text": "all of it"}),
        Counts(1, 1, 0, False, None, 1),
    ),
    "CRLF": (
        SSE,
        sse(chat({"content": "a"}), chat({"content": "b"}), b"[DONE]", end=b"\r\n\r\n"),
        Counts(2, 2, 0, True, None, 2),
    ),
    "CRLF lines": (
        JSONL,
        jsonl({"token": {"text": "a"}}).replace(b"\n", b"\r\n") * 2,
        Counts(2, 2, 0, False, None, 2),
    ),
    "comments and other fields": (
        SSE,
        b": ping\n\nevent: message\nid: 1\nretry: 10\ndata: "
        + json.dumps(chat({"content": "x"})).encode()
        + b"\n\n:keep-alive\n\nevent: empty\n\ndata:\n\ndata\n\n",
        Counts(1, 1, 0, False, None, 1),
    ),
    "data on two lines": (
        SSE,
        b'data: {"token":\ndata: {"text": "two lines"}}\n\n',
        Counts(1, 1, 0, False, None, 1),
    ),
    "malformed": (
        SSE,
        sse(
            chat({"content": "a"}),
            b"{not json",
            b"\xff\xfe",
            b"[" * 100_000,
            chat({"content": "b"}),
        ),
        Counts(2, 5, 3, False, None, 2),
    ),
    "JSON, no object": (
        SSE,
        sse(b"42", b'"text"', b"null", b'[{"token": {"text": "a"}}]'),
        Counts(0, 4, 0, False, None, 0),
    ),
    "odd usage": (
        SSE,
        sse(
            {"usage": {"completion_tokens": True}},
            {"usage": {"completion_tokens": -1}},
            {"usage": {"completion_tokens": 2.0}},
            {"usage": {"completion_tokens": 5}},
            {"usage": None, "details": None},
        ),
        Counts(0, 5, 0, False, 5, 5),
    ),
    "no trailing newline": (
        JSONL,
        jsonl({"token": {"text": "a"}}) + json.dumps({"token": {"text": "b"}}).encode(),
        Counts(2, 2, 0, False, None, 2),
    ),
    "no trailing blank line": (
        SSE,
        sse(chat({"content": "a"})) + b"data: " + json.dumps(chat({"content": "b"})).encode(),
        Counts(2, 2, 0, False, None, 2),
    ),
    "[DONE] with no blank line": (SSE, b"data: [DONE]", Counts(0, 0, 0, True, None, 0)),
    "empty data, CRLF": (SSE, b"data:\r\n\n", Counts(0, 0, 0, False, None, 0)),
    "DONE with spaces": (SSE, b"data:  [DONE] \n\n", Counts(0, 0, 0, True, None, 0)),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_whole_streams(name: str) -> None:
    format, data, expected = STREAMS[name]
    assert run(format, [data]) == expected


@pytest.mark.parametrize("name", list(STREAMS))
def test_every_split_point(name: str) -> None:
    format, data, expected = STREAMS[name]
    if len(data) > 10_000:
        points = list(range(0, 300)) + list(range(len(data) - 300, len(data) + 1))
    else:
        points = list(range(len(data) + 1))
    for point in points:
        assert run(format, [data[:point], data[point:]]) == expected, point


@pytest.mark.parametrize("name", [name for name in STREAMS if len(STREAMS[name][1]) < 10_000])
def test_one_byte_a_part(name: str) -> None:
    format, data, expected = STREAMS[name]
    assert run(format, [data[i : i + 1] for i in range(len(data))]) == expected


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(list(STREAMS)), points=st.lists(st.integers(0, 3000), max_size=10))
def test_random_parts(name: str, points: list[int]) -> None:
    format, data, expected = STREAMS[name]
    edges = [0, *sorted(min(p, len(data)) for p in points), len(data)]
    assert run(format, [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]) == expected


@pytest.mark.parametrize("name", list(STREAMS))
def test_one_event_a_part(name: str) -> None:
    """The usual PayloadPart: one whole event (the parser's shortcut)."""
    format, data, expected = STREAMS[name]
    end = b"\n\n" if format is SSE else b"\n"
    parts = [part + end for part in data.split(end)]
    parts[-1] = parts[-1][: -len(end)]
    assert b"".join(parts) == data
    assert run(format, parts) == expected


PIECES = [
    b"data: ",
    b"data:",
    b"data",
    b": ping",
    b"event: x",
    b"id: 7",
    b"\n",
    b"\n\n",
    b"\r\n",
    b"\r",
    b" ",
    b"[DONE]",
    b'{"token": {"text": "a"}}',
    b'{"choices": [{"delta": {"content": "b"}}]}',
    b'{"usage": {"completion_tokens": 3}}',
    b"{oops",
    b"\xff",
]


@settings(max_examples=500, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=30),
    points=st.lists(st.integers(0, 400), max_size=4),
    format=st.sampled_from([SSE, JSONL]),
)
def test_any_bytes_give_the_same_counts_however_cut(
    pieces: list[bytes], points: list[int], format: StreamFormat
) -> None:
    data = b"".join(pieces)
    whole = run(format, [data])
    edges = [0, *sorted(min(p, len(data)) for p in points), len(data)]
    assert run(format, [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]) == whole
    assert run(format, [data[i : i + 1] for i in range(len(data))]) == whole


JSON_TEXTS = st.one_of(
    st.text(alphabet=' \t\n\r\x0b\x0c\u00a0{}[]":,0123456789.eE+-truefalsn\\u', max_size=20),
    st.builds(
        lambda before, value, after: before + json.dumps(value) + after,
        st.text(alphabet=" \t\n\r\x0b\u00a0\u2028x", max_size=3),
        st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=3), children, max_size=3)
            ),
            max_leaves=8,
        ),
        st.text(alphabet=" \t\n\r\x0b\u00a0\u2028x", max_size=3),
    ),
)


@settings(max_examples=500, deadline=None)
@given(text=JSON_TEXTS)
def test_loads_is_json_loads(text: str) -> None:
    """The shortcut around json.loads takes and refuses exactly what json.loads does."""
    data = text.encode()
    try:
        expected: Any = json.loads(data)
    except ValueError:
        expected = ValueError
    try:
        got: Any = tokens._loads(data)
    except ValueError:
        got = ValueError
    assert got == expected


@pytest.mark.parametrize("parser_class", PARSERS)
def test_each_token_is_found_in_the_part_that_completes_it(
    parser_class: type[TokenCounter],
) -> None:
    """What the caller timestamps: TTFT at the first non-zero answer, a gap at each next."""
    events = [chat({"role": "assistant"}), chat({"content": "a"}), chat({"content": "b"})]
    data = sse(*events, b"[DONE]")
    first = data.index(b"\n\n") + 2  # the role-only chunk: no token
    second = data.index(b"\n\n", first) + 2
    parser = parser_class()  # type: ignore[call-arg]
    assert parser.feed(data[: second - 1]) == 0  # the blank line is not complete yet
    assert parser.feed(data[second - 1 : second + 10]) == 1
    assert parser.feed(data[second + 10 :]) == 1 and parser.done
    assert parser.close() == 0


@pytest.mark.parametrize("parser_class", PARSERS)
def test_many_events_in_one_part_and_one_event_in_many(parser_class: type[TokenCounter]) -> None:
    parser = parser_class()  # type: ignore[call-arg]
    assert parser.feed(sse(*(chat({"content": str(i)}) for i in range(5)))) == 5
    data = sse(chat({"content": "x" * 5000}))
    assert sum(parser.feed(data[i : i + 7]) for i in range(0, len(data), 7)) == 1
    assert parser.tokens == 6 and parser.pending == 0


@pytest.mark.parametrize("parser_class", PARSERS)
def test_raw_chunks(parser_class: type[TokenCounter]) -> None:
    parser = parser_class(RAW)  # type: ignore[call-arg]
    assert [parser.feed(part) for part in [b"abc", b"", b"\n\n", b"data: [DONE]\n\n"]] == [
        1,
        0,
        1,
        1,
    ]
    assert parser.close() == 0
    assert (parser.events, parser.tokens, parser.output_tokens, parser.done) == (3, 0, None, False)


def test_the_formats_are_the_scenarios_names() -> None:
    assert [StreamFormat(name) for name in ["sse", "jsonl", "raw"]] == [SSE, JSONL, RAW]
    assert all(parser().format is SSE for parser in PARSERS)  # type: ignore[call-arg]
    assert TokenParser is (CTokenParser or PyTokenParser)


# -- the C parser's JSON reader against json.loads and the rule ------------------------------

KEYS = st.sampled_from(
    [
        "token",
        "text",
        "choices",
        "delta",
        "content",
        "reasoning_content",
        "reasoning",
        "message",
        "outputs",
        "generated_text",
        "usage",
        "completion_tokens",
        "details",
        "generated_tokens",
        "role",
        "x",
        "",
    ]
)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.integers(10**17, 10**20)  # past 18 digits the C reader asks Python
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "a", "é", "\u2028", "\x00", "😀", "\ud800"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
LEAVES: list[Any] = [None, True, False, -1, 0, 3, 1.0, "", "a", "é", [], {}]
# the shapes the rule looks for, each with a leaf where it looks
SHAPES: list[Any] = [
    lambda v: {"token": {"text": v}},
    lambda v: {"choices": [{"delta": {"content": v}}]},
    lambda v: {"choices": [{"delta": {"role": "assistant", "reasoning_content": v}}]},
    lambda v: {"choices": [{"delta": {"reasoning": v}}]},
    lambda v: {"choices": [{"text": v}, {"text": "b"}]},
    lambda v: {"choices": [{"message": {"content": v}}]},
    lambda v: {"outputs": ["", v]},
    lambda v: {"generated_text": v},
    lambda v: {"usage": {"completion_tokens": v}},
    lambda v: {"details": {"generated_tokens": v}},
    lambda v: {"usage": {"completion_tokens": 9}, "details": {"generated_tokens": v}},
]
DOCUMENTS = st.one_of(
    VALUES,
    st.builds(lambda shape, leaf: shape(leaf), st.sampled_from(SHAPES), st.sampled_from(LEAVES)),
)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("leaf", LEAVES, ids=repr)
def test_the_c_reader_reads_each_place_the_rule_looks(shape: Any, leaf: Any) -> None:
    """Each shape with each leaf, alone, after its own kind (a repeated key: the last wins)
    and after a key the rule ignores; run() holds the parsers to each other."""
    text = json.dumps(shape(leaf))
    inner = text[1:-1]
    for document in [text, "{" + inner + ", " + inner + "}", '{"x": {"token": 1}, ' + inner + "}"]:
        found, reported = tokens.classify(document.encode())
        expected = Counts(found, 1, 0, False, reported, found if reported is None else reported)
        assert run(JSONL, [document.encode()]) == expected, document
    repeated = "{" + json.dumps(shape("a"))[1:-1] + ", " + inner + "}"  # the leaf wins
    assert run(JSONL, [repeated.encode()]) == run(JSONL, [text.encode()])


# json.dumps of those, then bent: repeated keys, escapes in keys, raw UTF-8, bad bytes
BENDS = st.sampled_from(
    [
        lambda t: t,
        lambda t: t.replace('"token"', '"tok\\u0065n"'),
        lambda t: t.replace('{"', '{"text": "", "', 1),
        lambda t: t.replace("}", ', "text": "z"}', 1),
        lambda t: t.replace("}", ', "content": 1}', 1),
        lambda t: t.replace("}", ', "completion_tokens": -0}', 1),
        lambda t: t.replace("}", ', "generated_tokens": 2.0}', 1),
        lambda t: t.replace(", ", ",\t\r\n"),
        lambda t: t.replace('"a"', '"\x01"'),
        lambda t: t.replace('"a"', '"\\x"'),
        lambda t: t.replace("0", "00", 1),
        lambda t: t.replace("1", "1.", 1),
        lambda t: t.replace("]", ",]", 1),
        lambda t: t + " x",
        lambda t: "\u00a0" + t,
        lambda t: "[" * 300 + t + "]" * 300,
        lambda t: '{"choices": [' * 150 + t + "]}" * 150,
    ]
)


@settings(max_examples=1500, deadline=None)
@given(
    value=DOCUMENTS,
    top=st.sampled_from(["bare", "token", "choices", "outputs", "usage", "details"]),
    bend=BENDS,
    ascii_only=st.booleans(),
    tail=st.sampled_from([b"", b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80"]),
)
def test_the_c_reader_judges_any_json_as_the_rule_does(
    value: Any, top: str, bend: Any, ascii_only: bool, tail: bytes
) -> None:
    """Each value as one JSON line and one SSE event: the same token, count and malformed
    from both parsers (run() compares them), and from classify."""
    if top == "token":
        value = {"token": value}
    elif top == "choices":
        value = {"choices": [value]}
    elif top != "bare":
        value = {top: value}
    text = bend(json.dumps(value, ensure_ascii=ascii_only, allow_nan=True))
    data = text.encode("utf-8", "surrogatepass").replace(b"\n", b" ") + tail
    line = run(JSONL, [data + b"\n"])
    found, reported = tokens.classify(data)
    assert (line.tokens, line.malformed, line.reported) == (max(found, 0), int(found < 0), reported)
    assert run(SSE, [b"data: " + data + b"\n\n"]) == line


def test_the_c_parser_is_built() -> None:
    """CI builds the extension; without it every event pays json.loads."""
    if os.environ.get("LOADGEN_PURE_EVENTSTREAM") == "1":
        assert TokenParser is PyTokenParser
    else:
        assert CTokenParser is not None and TokenParser is CTokenParser
