"""Events/s of the stream decoders: event stream (C, pure Python, botocore) and token parsing.

The event stream is 100,000 PayloadParts of ~60 bytes each (token events, as TGI sends them
through SageMaker), encoded as SageMaker encodes them, and read three ways: one message a
read (a live token stream), 16 KiB reads (a backlog; messages cut at the edges), and every
message cut in two (each read completes one message and starts the next). Each decoder gets
the same reads: the C extension, the pure Python decoder and botocore's EventStreamBuffer
(reading the event type of each message, as a caller must), and the streaming call's whole
read (`attach` + `read`: decoding, token parsing and timing in one call) with C. The token
rows feed each token parser (C, pure Python) one payload at a time: TGI-style SSE,
OpenAI-style chat SSE (~190 bytes) and LMI JSON lines, beside json.loads of the same JSON
alone, what the Python parser cannot go below.

Medians of --repeats runs taken in turns, so a noisy stretch of a shared machine slows every
row rather than one. Run: python bench/eventstream.py [--count N] [--repeats R].
Not a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable

from botocore.eventstream import EventStreamBuffer

from loadgen.transport.eventstream import CEventStreamDecoder, EventDecoder, PyEventStreamDecoder
from loadgen.transport.eventstream_encode import encode_payload_part
from loadgen.transport.tokens import CTokenParser, PyTokenParser, StreamFormat, TokenCounter

WORDS = [" the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", "."]
READ_SIZE = 16 * 1024


def tgi_payloads(count: int) -> list[bytes]:
    """TGI-style SSE token events of ~60 bytes."""
    return [
        b"data:"
        + json.dumps(
            {"token": {"id": 1000 + i % 30000, "text": WORDS[i % 10], "logprob": -0.25}},
            separators=(",", ":"),
        ).encode()
        + b"\n\n"
        for i in range(count)
    ]


def chat_payloads(count: int) -> list[bytes]:
    """vLLM-style chat completion chunks, as SSE events."""
    return [
        b"data: "
        + json.dumps(
            {
                "id": "chatcmpl-8a7b3c",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": WORDS[i % 10]},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            },
            separators=(",", ":"),
        ).encode()
        + b"\n\n"
        for i in range(count)
    ]


def lmi_payloads(count: int) -> list[bytes]:
    """LMI jsonlines token events."""
    return [
        json.dumps({"token": {"id": 1000 + i, "text": WORDS[i % 10], "log_prob": -0.25}}).encode()
        + b"\n"
        for i in range(count)
    ]


def readings(messages: list[bytes]) -> dict[str, list[bytes]]:
    """The same stream cut into reads three ways."""
    stream = b"".join(messages)
    rng = random.Random(13)
    cut_in_two: list[bytes] = []
    carry = b""
    for message in messages:
        point = rng.randrange(1, len(message))
        cut_in_two.append(carry + message[:point])
        carry = message[point:]
    cut_in_two.append(carry)
    return {
        "one message a read": messages,
        "16 KiB reads": [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)],
        "messages cut in two": cut_in_two,
    }


def ours(make: Callable[[], EventDecoder]) -> Callable[[list[bytes]], int]:
    def run(reads: list[bytes]) -> int:
        decoder = make()
        feed = decoder.feed
        events = 0
        for data in reads:
            events += len(feed(data))
        decoder.close()
        return events

    return run


def whole_read(reads: list[bytes]) -> int:
    """A streaming call's reads as StreamReader gives them: decoded, parsed and timed."""
    assert CEventStreamDecoder is not None and CTokenParser is not None
    decoder, parser = CEventStreamDecoder(), CTokenParser(StreamFormat.SSE)  # type: ignore[call-arg]
    decoder.attach(parser)
    read = decoder.read
    for data in reads:
        read(data)
    return parser.parts


def botocore(reads: list[bytes]) -> int:
    buffer = EventStreamBuffer()
    parts = 0
    for data in reads:
        buffer.add_data(data)
        for message in buffer:
            parts += message.headers.get(":event-type") == "PayloadPart"
    return parts


def tokens(parser_class: type[TokenCounter], format: StreamFormat) -> Callable[[list[bytes]], int]:
    def run(payloads: list[bytes]) -> int:
        parser = parser_class(format)  # type: ignore[call-arg]
        feed = parser.feed
        found = 0
        for payload in payloads:
            found += feed(payload)
        return found + parser.close()

    return run


def json_floor(payloads: list[bytes]) -> int:
    """json.loads of each event's JSON, and nothing else."""
    loads = json.loads
    for payload in payloads:
        loads(payload[5:] if payload[:5] == b"data:" else payload)
    return len(payloads)


Row = tuple[str, str, Callable[[list[bytes]], int], list[bytes]]


def medians(rows: list[Row], repeats: int, expected: int) -> list[float]:
    """Median events/s of each row, the repeats taken in turns."""
    samples: list[list[float]] = [[] for _ in rows]
    for _ in range(repeats):
        for index, (group, name, run, data) in enumerate(rows):
            start = time.perf_counter()
            found = run(data)
            elapsed = time.perf_counter() - start
            assert found == expected, (group, name, found)
            samples[index].append(expected / elapsed)
    return [statistics.median(sample) for sample in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="events per run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    count = args.count

    tgi = tgi_payloads(count)
    messages = [encode_payload_part(payload) for payload in tgi]
    size = sum(map(len, messages)) / count
    print(
        f"event stream: {count:,} PayloadParts, payloads of {sum(map(len, tgi)) / count:.0f} "
        f"bytes ({size:.0f} a message), median of {args.repeats} runs in turns"
    )
    decoders: list[tuple[str, Callable[[list[bytes]], int]]] = []
    if CEventStreamDecoder is not None:
        decoders.append(("C", ours(CEventStreamDecoder)))
        decoders.append(("C read", whole_read))
    else:
        print("(the C extension is not built or LOADGEN_PURE_EVENTSTREAM=1: no C rows)")
    decoders += [("Python", ours(PyEventStreamDecoder)), ("botocore", botocore)]
    rows: list[Row] = [
        (reads_name, name, run, reads)
        for reads_name, reads in readings(messages).items()
        for name, run in decoders
    ]
    rates = medians(rows, args.repeats, count)
    print(f"{'reads':22s} {'decoder':9s} {'events/s':>12s} {'µs/event':>9s}  vs botocore")
    print("(C read: decoding, token parsing and timing, as a streaming call reads)")
    base = {
        group: rate
        for (group, name, _, _), rate in zip(rows, rates, strict=True)
        if name == "botocore"
    }
    for (group, name, _, _), rate in zip(rows, rates, strict=True):
        print(f"{group:22s} {name:9s} {rate:12,.0f} {1e6 / rate:9.2f}  {rate / base[group]:7.1f}x")

    chat, lmi = chat_payloads(count), lmi_payloads(count)
    print(
        f"\ntoken parsing: {count:,} events, one a payload, median of {args.repeats} runs in turns"
    )
    parsers: list[tuple[str, type[TokenCounter]]] = [("Python", PyTokenParser)]
    if CTokenParser is not None:
        parsers.insert(0, ("C", CTokenParser))
    token_rows: list[Row] = []
    for group, format, payloads in [
        (f"sse, TGI ({len(tgi[0])} B)", StreamFormat.SSE, tgi),
        (f"sse, chat ({len(chat[0])} B)", StreamFormat.SSE, chat),
        (f"jsonl, LMI ({len(lmi[0])} B)", StreamFormat.JSONL, lmi),
    ]:
        token_rows += [(group, name, tokens(cls, format), payloads) for name, cls in parsers]
        token_rows.append((group, "json.loads", json_floor, payloads))
    rates = medians(token_rows, args.repeats, count)
    print(f"{'events':22s} {'parser':11s} {'events/s':>12s} {'µs/event':>9s}")
    for (group, name, _, _), rate in zip(token_rows, rates, strict=True):
        print(f"{group:22s} {name:11s} {rate:12,.0f} {1e6 / rate:9.2f}")


if __name__ == "__main__":
    main()
