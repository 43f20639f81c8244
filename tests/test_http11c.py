"""The C parser of whole 2xx responses against httptools, the reference it shortcuts.

Whenever `parse_simple` answers, httptools must read the same bytes as exactly one complete
response with the same status, echo, variant, error type, keep-alive and body length, field
by field and by name. When it declines (None), httptools gets the bytes: so it must not
decline the usual responses.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.transport import _http11c, http11
from loadgen.transport._http11c import Simple
from tests.stubs import public_names, stub_names

parse_simple = http11.parse_simple


FIELDS = ("status", "echoed", "variant", "error_type", "keep_alive", "body_length")


def test_the_parser_is_built() -> None:
    """CI builds the extension; without it every response pays httptools' callbacks."""
    assert parse_simple is _http11c.parse_simple


def test_simple_is_a_tuple_with_named_fields() -> None:
    simple = _http11c.Simple((200, "t=1", "AllTraffic", None, True, 2))
    assert Simple._fields == Simple.__match_args__ == FIELDS
    assert isinstance(simple, tuple) and simple == (200, "t=1", "AllTraffic", None, True, 2)
    assert [getattr(simple, name) for name in FIELDS] == list(simple)
    assert repr(simple) == (
        "Simple(status=200, echoed='t=1', variant='AllTraffic', error_type=None,"
        " keep_alive=True, body_length=2)"
    )
    for wrong in [(), (1, 2, 3, 4, 5), (1, 2, 3, 4, 5, 6, 7)]:  # the fields would read past it
        with pytest.raises(TypeError):
            Simple(wrong)
    with pytest.raises(AttributeError):
        simple.status = 201  # type: ignore[misc]


class Reference:
    """What httptools makes of some bytes, read the way HTTP11Connection reads them."""

    def __init__(self, data: bytes) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.keep_alive = True
        self.status = 0
        self.body_length = 0
        self.messages = 0
        self.parser = httptools.HttpResponseParser(self)
        try:
            self.parser.feed_data(data)
            self.error = False
        except httptools.HttpParserError:
            self.error = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body_length += len(body)

    def on_message_complete(self) -> None:
        self.messages += 1

    def fields(self) -> dict[str, Any]:
        """What parse_simple must answer, by field name."""

        def get(
            name: bytes,
        ) -> str | None:  # header values as latin-1 str, as the connection keeps them
            value = self.headers.get(name)
            return None if value is None else value.decode("latin-1")

        return {
            "status": self.status,
            "echoed": get(b"x-amzn-sagemaker-custom-attributes"),
            "variant": get(b"x-amzn-invoked-production-variant"),
            "error_type": get(b"x-amzn-errortype"),
            "keep_alive": self.keep_alive,
            "body_length": self.body_length,
        }


def check(data: bytes) -> Any:
    """parse_simple's answer, after checking it against httptools."""
    assert parse_simple is not None
    simple = parse_simple(data)
    if simple is not None:
        reference = Reference(data)
        assert not reference.error and reference.messages == 1, data
        assert type(simple) is Simple
        expected = reference.fields()
        assert {name: getattr(simple, name) for name in Simple._fields} == expected, data
        assert simple == Simple(expected.values()), data  # the same values in the same order
    return simple


def response(
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b'{"predictions": [0.5]}',
    length: int | None = None,
) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    for name, value in headers if headers is not None else []:
        lines.append(f"{name}: {value}")
    if length is not None or headers is None:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


USUAL = {
    "nginx": b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 23:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 22\r\nConnection: keep-alive\r\n"
    b"X-Amzn-SageMaker-Custom-Attributes: trace=abc\r\n"
    b"X-Amzn-Invoked-Production-Variant: AllTraffic\r\n\r\n" + b'{"predictions": [0.5]}',
    "sagemaker": b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: 5e4c3c9e-1111-2222-3333-444455556666\r\n"
    b"X-Amzn-Invoked-Production-Variant: blue\r\nx-amzn-sagemaker-custom-attributes: t=1\r\n"
    b"Date: Sat, 28 Nov 2026 23:00:00 GMT\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    "aiohttp mock": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"X-Amzn-SageMaker-Custom-Attributes: trace=1\r\nContent-Length: 0\r\n"
    b"Date: Sat, 28 Nov 2026 23:00:00 GMT\r\nServer: Python/3.11 aiohttp/3.9\r\n\r\n",
    "close": response(headers=[("Connection", "close")], length=22),
    "no reason": b"HTTP/1.1 201\r\nContent-Length: 1\r\n\r\nx",
}


@pytest.mark.parametrize("name", list(USUAL))
def test_the_usual_responses_are_parsed_in_one_call(name: str) -> None:
    assert check(USUAL[name]) is not None


DECLINED = {
    "split body": USUAL["nginx"][:-3],
    "split head": USUAL["nginx"][:40],
    "extra bytes": USUAL["nginx"] + b"HTTP/1.1 200 OK\r\n",
    "body longer than announced": response(body=b"x" * 50, length=5, headers=[]),
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    "no length": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello",
    "error status": response("503 Service Unavailable", [("X-Amzn-ErrorType", "x")], length=2),
    "no content": b"HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "bare LF": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "space before colon": b"HTTP/1.1 200 OK\r\nX :v\r\nContent-Length: 0\r\n\r\n",
    "control char": b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n",
    "folded": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "two lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    "signed length": b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
    "upgrade": b"HTTP/1.1 200 OK\r\nConnection: upgrade\r\nContent-Length: 0\r\n\r\n",
    "garbage": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
}


@pytest.mark.parametrize("name", list(DECLINED))
def test_anything_else_goes_to_httptools(name: str) -> None:
    assert check(DECLINED[name]) is None


def test_values_are_taken_as_httptools_gives_them() -> None:
    data = response(
        headers=[
            ("x-AMZN-sagemaker-CUSTOM-attributes", "\t  a b  "),  # leading OWS dropped only
            ("X-Amzn-Invoked-Production-Variant", ""),
            ("X-Amzn-Invoked-Production-Variant", "second"),  # the last one wins
            ("Content-Length", "007"),
        ],
        body=b"1234567",
    )
    assert check(data) == (200, "a b  ", "second", None, True, 7)
    obs_text = b"HTTP/1.1 299 \xe9t\xe9\r\nX-Amzn-SageMaker-Custom-Attributes: \x80\xff\r\n"
    assert check(obs_text + b"Content-Length: 0\r\n\r\n") == (299, "\x80\xff", None, None, True, 0)


def test_a_repeated_variant_name_is_one_str() -> None:
    """The last variant's str is reused while it repeats, and never for a different name."""

    def variant_of(name: bytes) -> Any:
        head = b"HTTP/1.1 200 OK\r\nX-Amzn-Invoked-Production-Variant: " + name
        simple = check(head + b"\r\nContent-Length: 0\r\n\r\n")
        assert simple is not None
        return simple.variant

    first = variant_of(b"AllTraffic")
    assert variant_of(b"AllTraffic") is first
    names = [b"B", b"AllTraffiC", b"\xe9", b"\xc3\xa9", b"", b"AllTraffic", b"AllTraffic "]
    assert [variant_of(name) for name in names] == [name.decode("latin-1") for name in names]


NAMES = [
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-Invoked-Production-Variant",
    "X-Amzn-ErrorType",
    "Content-Length",
    "Connection",
    "Transfer-Encoding",
    "Content-Type",
    "Server",
    "X-Amzn-SageMaker-Custom-Attribute",  # one letter short of the echo header
]


def spelled(rng: random.Random, name: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


STATUSES = ["200 OK", "201 Created", "204 No Content", "299", "404 Nope"]
VALUES = [" ", "\t", "a", "Z", "0", "7", "=", ",", "close", "keep-alive"]
LENGTH_DELTAS = [0, 0, 0, -1, 1, None]
MUTATIONS = [None, None, "truncate", "byte", "extra"]


def build(
    rng: random.Random,
    status: str,
    headers: list[tuple[str, str]],
    body: bytes,
    length_delta: int | None,
    mutation: str | None,
    where: int,
    byte: int,
) -> bytes:
    """A response from these parts, header names in random case, then maybe broken."""
    headers = [(spelled(rng, name), value) for name, value in headers]
    if length_delta is not None:
        headers.append(("Content-Length", str(max(len(body) + length_delta, 0))))
    data = response(status, headers, body)
    if mutation == "truncate":
        data = data[: where % (len(data) + 1)]
    elif mutation == "byte":
        index = where % len(data)
        data = data[:index] + bytes([byte]) + data[index + 1 :]
    elif mutation == "extra":
        data += b"x"
    return data


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    status=st.sampled_from(STATUSES),
    headers=st.lists(
        st.tuples(
            st.sampled_from(NAMES), st.lists(st.sampled_from(VALUES), max_size=6).map("".join)
        ),
        max_size=8,
    ),
    body=st.binary(max_size=40),
    length_delta=st.sampled_from(LENGTH_DELTAS),
    mutation=st.sampled_from(MUTATIONS),
    where=st.integers(0, 400),
    byte=st.integers(0, 255),
)
def test_random_responses_agree_with_httptools(seed: int, **parts: Any) -> None:
    check(build(random.Random(seed), **parts))  # any answer it gives must be httptools'


def test_seeded_random_responses_agree_and_many_are_answered() -> None:
    """The same responses from a fixed seed: agreement on nothing would prove nothing."""
    answered = 0
    for seed in range(6000):
        rng = random.Random(seed)
        headers = [
            (rng.choice(NAMES), "".join(rng.choices(VALUES, k=rng.randrange(7))))
            for _ in range(rng.randrange(9))
        ]
        data = build(
            rng,
            rng.choice(STATUSES),
            headers,
            rng.randbytes(rng.randrange(41)),
            rng.choice(LENGTH_DELTAS),
            rng.choice(MUTATIONS),
            rng.randrange(401),
            rng.randrange(256),
        )
        answered += check(data) is not None
    assert answered >= 150, answered


def test_the_stub_types_what_the_module_has() -> None:
    """mypy checks callers against _http11c.pyi: it must name exactly the module's names."""
    stub = Path(__file__).resolve().parent.parent / "loadgen/transport/_http11c.pyi"
    assert stub_names(stub) == public_names(_http11c)
