"""µs per SigV4 signature: loadgen's SigV4Signer vs botocore's SigV4Auth (median of 5 repeats).

Run: python bench/sign.py [--count N]. Not a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from loadgen import api
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


def ours(count: int) -> float:
    signer = SigV4Signer(REGION)
    credentials = Credentials(*KEY)
    headers = [_headers() for _ in range(count)]
    start = time.perf_counter()
    for request_headers in headers:
        signer.sign("POST", HOST, PATH, request_headers, BODY, credentials, time.time())
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


def median_us(run: Callable[[int], float], count: int, repeats: int = 5) -> float:
    run(min(count, 1000))  # warm caches and imports
    return statistics.median(run(count) for _ in range(repeats)) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="signatures per repeat")
    args = parser.parse_args()
    fast = median_us(ours, args.count)
    slow = median_us(botocore, max(args.count // 10, 100))
    print(f"loadgen SigV4Signer: {fast:8.2f} µs/signature")
    print(f"botocore SigV4Auth:  {slow:8.2f} µs/signature")
    print(f"ratio:               {slow / fast:8.1f}x")


if __name__ == "__main__":
    main()
