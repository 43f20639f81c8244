"""RequestEncoder.encode through the C builder (`_sigv4c.build`) against the pure Python path.

Both encoders run on one injected clock and one credential source; every request's bytes
must be equal. Under LOADGEN_PURE_SIGV4=1 (or without the extension) both sides are Python
and the tests still check that path; the count of C-built requests then is zero.
"""

from __future__ import annotations

import os
import random
import string
from collections.abc import Callable
from typing import Any

import pytest

from loadgen.transport.base import Request, Target
from loadgen.transport.credentials import CredentialSource
from loadgen.transport.encode import JOIN_LIMIT, BuildPlan, RequestEncoder
from loadgen.transport.sigv4 import Credentials, SigV4Signer

DAY = 86_400
MIDNIGHT = 1_700_006_400  # 2023-11-15T00:00:00Z
# Every character str.split() takes for whitespace in ASCII, and visible ASCII around them.
WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
VISIBLE = string.ascii_letters + string.digits + string.punctuation
C_BUILDS = SigV4Signer("us-east-1").builder is not None


class Clock:
    """The injected clock: the test sets `now`."""

    def __init__(self) -> None:
        self.now = float(MIDNIGHT)

    def __call__(self) -> float:
        return self.now


class Rotating:
    """A credential source whose credentials the test replaces, as a refresh does."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def current(self) -> Credentials:
        return self.credentials


class Counting:
    """Wraps `_sigv4c.build`: how many calls returned bytes."""

    def __init__(self, build: Callable[..., Any]) -> None:
        self.build = build
        self.built = 0

    def __call__(self, *args: Any) -> Any:
        result = self.build(*args)
        self.built += result is not None
        return result


def pair(
    source: CredentialSource | Rotating, clock: Clock
) -> tuple[RequestEncoder, RequestEncoder]:
    """(the encoder as run, with the C builder if built; the same with native=False)."""
    made = [
        RequestEncoder(
            "runtime.sagemaker.eu-west-1.amazonaws.com",
            "eu-west-1",
            source,  # type: ignore[arg-type]
            clock=clock,
            native=native,
        )
        for native in (True, False)
    ]
    assert made[1]._build is None
    return made[0], made[1]


def random_targets(rng: random.Random) -> list[Target]:
    targets = [Target(label="plain", endpoint_name="ep")]
    for index in range(8):
        maybe = lambda text: text if rng.random() < 0.5 else None  # noqa: E731
        targets.append(
            Target(
                label=f"t{index}",
                endpoint_name=f"endpoint-{index}",
                content_type=rng.choice(["application/json", "text/csv", "a/b;  c=d "]),
                accept=maybe("application/json"),
                target_variant=maybe(f"variant-{index}"),
                target_model=maybe("model.tar.gz"),
                target_container_hostname=maybe("c1"),
                inference_component=maybe("ic"),
            )
        )
    return targets


def random_attributes(rng: random.Random) -> str:
    """Visible ASCII with whitespace runs at the start, in the middle and at the end."""
    pieces = []
    for _ in range(rng.randint(0, 6)):
        if rng.random() < 0.6:
            pieces.append("".join(rng.choices(WHITESPACE, k=rng.randint(1, 4))))
        pieces.append("".join(rng.choices(VISIBLE, k=rng.randint(1, 40))))
    if rng.random() < 0.4:
        pieces.append("".join(rng.choices(" \t", k=rng.randint(1, 5))))
    return "".join(pieces) or rng.choice(["", " ", "\t \x1f", "trace_id=x"])


def random_timestamp(rng: random.Random) -> float:
    """Mostly on either side of whole seconds and of midnight (a new signing key)."""
    base = MIDNIGHT + rng.choice([0, 0, 1, DAY, -1]) + rng.randint(-2, 2)
    return base + rng.choice([0.0, 1e-6, 0.25, 0.5, 0.999_999, rng.random()])


def test_build_equals_the_python_path() -> None:
    rng = random.Random(20241128)
    clock = Clock()
    tokens = [None, "FwoGZXIvYXdzEXAMPLE" * 14, "tok=en/+"]
    source = Rotating(Credentials("AKIDEXAMPLE", "secret0", tokens[1]))
    native, pure = pair(source, clock)
    assert native._build is not None or not C_BUILDS
    counting = native._build = Counting(native._build) if native._build else None
    targets = random_targets(rng)
    # bodies repeat, as a data set's do: the second sighting of one is signed in C
    bodies = [b"", b"{}", *(rng.randbytes(rng.randint(1, 3000)) for _ in range(20))]
    bodies += [b"x" * (JOIN_LIMIT - 1), b"y" * JOIN_LIMIT, b"z" * (JOIN_LIMIT + 1)]
    count = 4000
    for index in range(count):
        if rng.random() < 0.01:  # refreshed credentials: a new object, maybe a new token
            token = rng.choice(tokens)
            secret = f"secret{rng.randint(0, 2)}"
            source.credentials = Credentials("AKIDEXAMPLE", secret, token)
        if rng.random() < 0.2:
            clock.now = random_timestamp(rng)
        body = rng.choice(bodies) if rng.random() < 0.95 else rng.randbytes(rng.randint(0, 200))
        request = Request(rng.choice(targets), body, f"t{index}", random_attributes(rng))
        expected = pure.encode(request)
        assert native.encode(request) == expected, (index, request)
        if len(body) > JOIN_LIMIT:
            assert expected[1] is body
    if counting is not None:  # most requests went through C, not all
        assert count * 0.5 < counting.built < count, counting.built


@pytest.mark.parametrize("token", [None, "session-token"])
def test_non_ascii_and_odd_bodies_fall_back(token: str | None) -> None:
    clock = Clock()
    clock.now = MIDNIGHT - 0.5
    native, pure = pair(CredentialSource.static("AK", "secret", token), clock)
    target = Target(label="ep", endpoint_name="ep", accept="application/json")
    counting = native._build = Counting(native._build) if native._build else None
    cases: list[tuple[str, Any]] = [
        ("trace=1", b"{}"),
        ("trace=1", b"{}"),  # the plan and the body's hash are there now: C
        ("caf\u00e9  au\tlait ", b"{}"),  # latin-1, sent as such, hashed as UTF-8
        ("\u00a0nbsp\u00a0", b"{}"),  # whitespace to str.split() beyond ASCII
        ("\u2003em\u3000space\u0085", b"{}"),
        ("x\u00e9", b"{}"),
        ("", b"{}"),  # no attributes header at all
        ("   ", b"{}"),  # sent as is, signed as ""
        ("trace=2", bytearray(b"{}")),
        ("trace=3", b""),
    ]
    for attributes, body in cases:
        request = Request(target, body, "t", attributes)
        try:
            expected: Any = pure.encode(request)
        except UnicodeEncodeError as exc:  # not latin-1: neither side can send it
            expected = type(exc)
        try:
            got: Any = native.encode(request)
        except UnicodeEncodeError as exc:
            got = type(exc)
        assert got == expected, attributes
    if counting is not None:  # trace=1 the second time, "   " and the empty body
        assert counting.built == 3


needs_builder = pytest.mark.skipif(not C_BUILDS, reason="no C builder (not built, or pure)")


@needs_builder
def test_plan_is_made_once_per_second_and_credentials() -> None:
    clock = Clock()
    source = Rotating(Credentials("AK", "secret", None))
    native, _ = pair(source, clock)
    target = Target(label="ep", endpoint_name="ep")
    request = Request(target, b"{}", "t", "trace=1")
    native.encode(request)
    cached = native._prepared[id(target)]
    plan = cached.plan
    assert plan is not None and plan.second == MIDNIGHT and plan.credentials is source.credentials
    clock.now = MIDNIGHT + 0.999_999
    native.encode(request)
    assert cached.plan is plan
    clock.now = MIDNIGHT + 1.0
    native.encode(request)
    assert cached.plan is not plan and cached.plan.second == MIDNIGHT + 1
    plan = cached.plan
    source.credentials = Credentials("AK", "secret", None)  # equal, but a refresh's new object
    native.encode(request)
    assert cached.plan is not plan and cached.plan.credentials is source.credentials


@needs_builder
def test_build_refuses_what_it_leaves_to_python() -> None:
    clock = Clock()
    source = Rotating(Credentials("AK", "secret", "token"))
    native, _ = pair(source, clock)
    target = Target(label="ep", endpoint_name="ep")
    native.encode(Request(target, b"{}", "t", "trace=1"))  # makes the plan, hashes b"{}"
    plan = native._prepared[id(target)].plan
    build = native._build
    assert build is not None and plan is not None
    now, credentials = clock.now, source.credentials
    assert build(plan, "trace=1", b"{}", now, credentials) is not None
    assert build(plan, "trace=1", b"{}", int(now), credentials) is not None
    for args in [
        (None, "trace=1", b"{}", now, credentials),
        (plan, "trace=1", b"{}", now + 1, credentials),
        (plan, "trace=1", b"{}", now - 1e-6, credentials),
        (plan, "trace=1", b"{}", float("nan"), credentials),
        (plan, "trace=1", b"{}", now, Credentials("AK", "secret", "token")),
        (plan, "", b"{}", now, credentials),
        (plan, "caf\u00e9", b"{}", now, credentials),
        (plan, type("Sub", (str,), {})("trace=1"), b"{}", now, credentials),
        (plan, "trace=1", bytearray(b"{}"), now, credentials),
        (plan, "trace=1", b"not hashed yet", now, credentials),
    ]:
        assert build(*args) is None, args
    assert build(tuple(plan), "trace=1", b"{}", now, credentials) == build(
        plan, "trace=1", b"{}", now, credentials
    )  # C reads the fields by index: a plain tuple of them builds the same bytes
    broken = [
        plan[:-1],
        list(plan),
        plan._replace(hashes=None),  # not a dict of hashes
        plan._replace(creq_state=plan.creq_state[:31]),  # a state that is not 32 bytes
        plan._replace(head="head"),  # str where bytes go
        plan._replace(join_limit=float(plan.join_limit)),
    ]
    for bad in broken:
        with pytest.raises(TypeError):
            build(bad, "trace=1", b"{}", now, credentials)
    with pytest.raises(TypeError):
        build(plan, "trace=1", b"{}", "now", credentials)
    with pytest.raises(TypeError):
        build(plan, "trace=1", b"{}", now)


def test_plan_fields_are_the_c_enum() -> None:
    """BuildPlan's names are _sigv4c.c's PLAN_* entries, in the order C reads them."""
    _sigv4c = pytest.importorskip("loadgen.transport._sigv4c")
    assert BuildPlan._fields == _sigv4c.PLAN_FIELDS
    assert len(BuildPlan._fields) == 14


def test_pure_environment_has_no_builder() -> None:
    """LOADGEN_PURE_SIGV4=1 turns the builder off along with the rest of the C signing."""
    if os.environ.get("LOADGEN_PURE_SIGV4") == "1":
        assert not C_BUILDS
    assert SigV4Signer("us-east-1", native=False).builder is None
