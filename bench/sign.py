"""µs per SigV4 signature: loadgen's SigV4Signer vs botocore's SigV4Auth (median of 5 repeats).

Our signer is timed twice, hashing with the C extension `_sigv4c` and with hashlib, both for
`sign` (every header per call) and `sign_template` (the fast transport's path without C).
The `encode` rows are the fast transport's whole request bytes, signature included: one
`_sigv4c.build` call per request, or (native=False) sign_template and formatting in Python.
Run: python bench/sign.py [--count N]. Not a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from functools import partial

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from loadgen import api
from loadgen.transport.base import Request, Target
from loadgen.transport.credentials import CredentialSource
from loadgen.transport.encode import RequestEncoder
from loadgen.transport.sigv4 import Credentials, SigV4Signer

REGION = "us-east-1"
HOST = f"runtime.sagemaker.{REGION}.amazonaws.com"
PATH = api.invocation_path("my-endpoint")
BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog", "parameters": {"max_new_tokens": 64}}'
KEY = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN" * 10)


def _headers() -> list[tuple[str, str]]:
    """A typical request: a fresh trace ID in CustomAttributes every time."""
    return [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        (api.H_CUSTOM_ATTRIBUTES, f"trace_id={uuid.uuid4().hex}"),
        (api.H_TARGET_VARIANT, "variant-a"),
        ("Content-Length", str(len(BODY))),
    ]


def ours(count: int, native: bool) -> float:
    signer = SigV4Signer(REGION, native=native)
    credentials = Credentials(*KEY)
    headers = [_headers() for _ in range(count)]
    start = time.perf_counter()
    for request_headers in headers:
        signer.sign("POST", HOST, PATH, request_headers, BODY, credentials, time.time())
    return time.perf_counter() - start


def ours_template(count: int, native: bool) -> float:
    """The same requests through a template with CustomAttributes as its one dynamic header."""
    signer = SigV4Signer(REGION, native=native)
    credentials = Credentials(*KEY)
    static = [pair for pair in _headers() if pair[0] != api.H_CUSTOM_ATTRIBUTES]
    template = signer.template("POST", HOST, PATH, static, [api.H_CUSTOM_ATTRIBUTES], KEY[2])
    assert template is not None
    values = [[f"trace_id={uuid.uuid4().hex}"] for _ in range(count)]
    start = time.perf_counter()
    for request_values in values:
        signer.sign_template(template, request_values, BODY, credentials, time.time())
    return time.perf_counter() - start


def transport_encode(count: int, native: bool) -> float:
    """RequestEncoder.encode of the same requests: Target with Accept and TargetVariant."""
    encoder = RequestEncoder(HOST, REGION, CredentialSource.static(*KEY), native=native)
    target = Target("ep", "my-endpoint", accept="application/json", target_variant="variant-a")
    ids = [uuid.uuid4().hex for _ in range(count)]
    requests = [Request(target, BODY, trace, f"trace_id={trace}") for trace in ids]
    encode = encoder.encode
    encode(requests[0])
    start = time.perf_counter()
    for request in requests:
        encode(request)
    return time.perf_counter() - start


def botocore(count: int) -> float:
    auth = SigV4Auth(BotoCredentials(*KEY), api.SIGNING_NAME, REGION)
    requests = [
        AWSRequest(method="POST", url=f"https://{HOST}{PATH}", headers=dict(_headers()), data=BODY)
        for _ in range(count)
    ]
    start = time.perf_counter()
    for request in requests:
        auth.add_auth(request)
    return time.perf_counter() - start


def median_us(
    runs: list[tuple[str, Callable[[int], float], int]], repeats: int = 5
) -> list[tuple[str, float]]:
    """(name, median µs per call) of each (name, run, count); the repeats take turns, so
    a noisy stretch of a shared machine slows every row rather than one."""
    for _, run, count in runs:
        run(min(count, 1000))  # warm caches and imports
    samples: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for _ in range(repeats):
        for name, run, count in runs:
            samples[name].append(run(count) / count * 1e6)
    return [(name, statistics.median(times)) for name, times in samples.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="signatures per repeat")
    args = parser.parse_args()
    native = SigV4Signer(REGION).implementation
    count = args.count
    rows = median_us(
        [
            (f"encode, {native} build", partial(transport_encode, native=True), count),
            ("encode, hashlib", partial(transport_encode, native=False), count),
            (f"sign_template, {native}", partial(ours_template, native=True), count),
            ("sign_template, hashlib", partial(ours_template, native=False), count),
            (f"sign, {native}", partial(ours, native=True), count),
            ("sign, hashlib", partial(ours, native=False), count),
            ("botocore SigV4Auth", botocore, max(count // 10, 100)),
        ]
    )
    slow = rows[-1][1]
    for name, us in rows:
        print(f"{name:28s} {us:8.2f} µs/signature   botocore/this {slow / us:6.1f}x")
    if native == "hashlib":
        print("(the C extension is not built or LOADGEN_PURE_SIGV4=1: both rows use hashlib)")


if __name__ == "__main__":
    main()
