"""The C extension `_sigv4c` against hashlib and hmac, with both compression functions.

This machine's compression function (SHA-NI where the CPU has it) is tested in-process; the
portable one in a subprocess started with LOADGEN_SHA256_PORTABLE=1, which the module reads
when it is first imported.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from loadgen.transport.sigv4 import Credentials, SigV4Signer
from tests.stubs import public_names, stub_names

try:
    from loadgen.transport import _sigv4c
except ImportError:
    _sigv4c = None

ROOT = Path(__file__).resolve().parent.parent
needs_extension = pytest.mark.skipif(_sigv4c is None, reason="_sigv4c not built")

# Keys around HMAC's 64-byte block (longer ones are hashed first); SigV4's are 32 bytes.
KEY_LENGTHS = [0, 1, 31, 32, 33, 63, 64, 65, 100, 200]
# Lengths either side of where the padding needs a second block (55/56) and of a block (64).
BOUNDARIES = [55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129]


def _reference(key: bytes, prefix: bytes, creq: bytes) -> str:
    message = prefix + hashlib.sha256(creq).hexdigest().encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_against_hashlib(module: ModuleType) -> int:
    """Compare `module` with hashlib and hmac on fixed and random inputs; the number checked."""
    rng = random.Random(20240229)
    checked = 0
    lengths = [*range(301), *(rng.randint(301, 20_000) for _ in range(20)), 1 << 16]
    for length in lengths:
        data = rng.randbytes(length)
        assert module.sha256_hex(data) == hashlib.sha256(data).hexdigest(), length
        text = "".join(rng.choices("aZ9 %\n\u00e9\u20ac", k=length // 2))
        assert module.sha256_hex(text) == hashlib.sha256(text.encode()).hexdigest(), length
        checked += 2
    # The inner hash is over 64 key bytes + prefix + 64 hex digits: prefixes of 0..140 bytes
    # cross its padding boundaries, canonical requests of 0..200 bytes cross theirs.
    cases = [(rng.choice(KEY_LENGTHS), size, rng.randint(0, 700)) for size in range(141)]
    cases += [(rng.choice(KEY_LENGTHS), rng.randint(0, 140), size) for size in range(201)]
    cases += [(key, 76, size) for key in KEY_LENGTHS for size in BOUNDARIES]
    cases += [(32, rng.randint(0, 300), rng.randint(0, 5000)) for _ in range(200)]
    for key_length, prefix_length, creq_length in cases:
        key = rng.randbytes(key_length)
        prefix = rng.randbytes(prefix_length)
        creq = rng.randbytes(creq_length)
        states = module.hmac_key(key)
        assert len(states) == 64
        expected = _reference(key, prefix, creq)
        assert module.sign(states, prefix, creq) == expected, (key_length, prefix_length)
        text_prefix = prefix.hex()[:prefix_length]
        text_creq = "".join(rng.choices("POST/\n:;=,\u00e9", k=creq_length))
        expected = _reference(key, text_prefix.encode(), text_creq.encode())
        assert module.sign(states, text_prefix, text_creq) == expected, (key_length, creq_length)
        checked += 2
    return checked


def test_extension_is_built() -> None:
    """Fails, rather than skips, when the optional build fell back to hashlib silently."""
    assert _sigv4c is not None, "loadgen.transport._sigv4c did not build; is a C compiler there?"
    assert _sigv4c.implementation() in {"sha-ni", "portable"}


@needs_extension
def test_uses_sha_ni_when_the_cpu_has_it() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or os.environ.get("LOADGEN_SHA256_PORTABLE") == "1":
        pytest.skip("no /proc/cpuinfo, or the portable code is forced")
    has_sha = any(
        line.startswith("flags") and "sha_ni" in line.split()
        for line in cpuinfo.read_text().splitlines()
    )
    assert _sigv4c.implementation() == ("sha-ni" if has_sha else "portable")


@needs_extension
def test_matches_hashlib() -> None:
    assert check_against_hashlib(_sigv4c) == 2 * (301 + 21) + 2 * (141 + 201 + 110 + 200)


@needs_extension
def test_portable_compression_matches_hashlib() -> None:
    code = (
        "from loadgen.transport import _sigv4c\n"
        "from tests.test_sigv4c import check_against_hashlib\n"
        "print(_sigv4c.implementation(), check_against_hashlib(_sigv4c))\n"
    )
    env = {**os.environ, "LOADGEN_SHA256_PORTABLE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["portable", str(2 * (301 + 21) + 2 * (141 + 201 + 110 + 200))]


@needs_extension
def test_bad_arguments_raise() -> None:
    states = _sigv4c.hmac_key(b"k" * 32)
    for call in (
        lambda: _sigv4c.sha256_hex(123),
        lambda: _sigv4c.sha256_hex(bytearray(b"x")),
        lambda: _sigv4c.sha256_hex(),
        lambda: _sigv4c.sha256_hex(b"a", b"b"),
        lambda: _sigv4c.hmac_key("key"),
        lambda: _sigv4c.sign(states, "prefix"),
        lambda: _sigv4c.sign(states.hex(), "prefix", "creq"),
        lambda: _sigv4c.sign(states, None, "creq"),
        lambda: _sigv4c.sign(states, "prefix", memoryview(b"creq")),
    ):
        with pytest.raises(TypeError):
            call()
    for wrong in (b"", states[:63], states + b"\0"):
        with pytest.raises(ValueError):
            _sigv4c.sign(wrong, "prefix", "creq")
    with pytest.raises(UnicodeEncodeError):
        _sigv4c.sha256_hex("\ud800")  # a lone surrogate, which str.encode() refuses too


def test_signer_paths_agree() -> None:
    """The signer with the extension and with hashlib: the same headers, template or not."""
    native, pure = SigV4Signer("eu-west-1"), SigV4Signer("eu-west-1", native=False)
    assert pure.implementation == "hashlib"
    if _sigv4c is not None and os.environ.get("LOADGEN_PURE_SIGV4") != "1":
        assert native.implementation == f"c/{_sigv4c.implementation()}"
    rng = random.Random(5)
    dynamic = ["X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id"]
    for index in range(200):
        token = rng.choice([None, "t" * rng.randint(1, 1200)])
        credentials = Credentials("AK", f"secret{index % 3}", token)
        static = [("Content-Type", "application/json"), ("Accept", "x" * rng.randint(0, 200))]
        names = dynamic[: rng.randint(0, 2)]
        values = ["v\u00e9 " * rng.randint(0, 80) for _ in names]
        body = rng.randbytes(rng.randint(0, 300))
        timestamp = 1_700_000_000 + rng.randint(0, 3 * 86_400)
        headers = [*static, *zip(names, values, strict=True)]
        expected = pure.sign("POST", "h", "/p", headers, body, credentials, timestamp)
        got = native.sign("POST", "h", "/p", headers, body, credentials, timestamp)
        assert got == expected
        for signer in (native, pure):
            template = signer.template("POST", "h", "/p", static, names, token)
            assert template is not None
            signed = signer.sign_template(template, values, body, credentials, timestamp)
            assert signed == (expected[0][1], expected[-1][1])


@needs_extension
def test_midstate() -> None:
    """The SHA-256 state after whole blocks only; chains; is hmac_key's inner half for a key."""
    rng = random.Random(11)
    data = rng.randbytes(64 * 5 + 17)
    iv = bytes.fromhex("6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19")
    assert _sigv4c.midstate(b"", data[:63]) == iv
    assert _sigv4c.midstate(iv, b"") == iv
    whole = _sigv4c.midstate(b"", data)
    assert _sigv4c.midstate(b"", data[:320]) == whole
    assert _sigv4c.midstate(_sigv4c.midstate(b"", data[:128]), data[128:]) == whole
    key = rng.randbytes(32)
    ipad = bytes(byte ^ 0x36 for byte in key.ljust(64, b"\0"))
    assert _sigv4c.midstate(b"", ipad) == _sigv4c.hmac_key(key)[:32]
    for bad_state in (b"x" * 31, b"x" * 33):
        with pytest.raises(ValueError):
            _sigv4c.midstate(bad_state, data)
    with pytest.raises(TypeError):
        _sigv4c.midstate(None, data)


@needs_extension
def test_the_stub_types_what_the_module_has() -> None:
    """mypy checks callers against _sigv4c.pyi: it must name exactly the module's names."""
    assert stub_names(ROOT / "loadgen/transport/_sigv4c.pyi") == public_names(_sigv4c)
