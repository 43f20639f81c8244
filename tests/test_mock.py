"""The mock endpoint, driven by the real clients: aiobotocore, and aiohttp for raw requests."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from multidict import CIMultiDict

from loadgen import api
from loadgen.mock.config import MockConfig
from loadgen.mock.server import Behaviour, Dice, MockServer, behaviour_of, start_mock
from loadgen.mock.verify import MISMATCH_MESSAGE, SignatureVerifier, parse_authorization

ACCESS_KEY = "AKIDMOCKEXAMPLE"
SECRET_KEY = "mock-secret-key-do-not-echo"
NO_DELAY = {"median": 0.0, "p99": 0.0}

StartMock = Callable[..., Awaitable[MockServer]]


@pytest.fixture
async def mock() -> AsyncIterator[StartMock]:
    """Starts mocks from config keyword arguments, all closed at the end."""
    servers: list[MockServer] = []

    async def start(*, container: bool = False, **config: Any) -> MockServer:
        config.setdefault("latency_ms", NO_DELAY)
        server = await start_mock(MockConfig(**config), container=container)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@asynccontextmanager
async def sagemaker(
    server: MockServer,
    secret_key: str = SECRET_KEY,
    session_token: str | None = None,
    region: str = "us-east-1",
) -> AsyncIterator[Any]:
    session = get_session()
    async with session.create_client(
        "sagemaker-runtime",
        region_name=region,
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=AioConfig(retries={"total_max_attempts": 1}),
    ) as client:
        yield client


async def invoke(client: Any, endpoint: str = "my-endpoint", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("Body", b'{"x": 1}')
    kwargs.setdefault("ContentType", "application/json")
    response: dict[str, Any] = await client.invoke_endpoint(EndpointName=endpoint, **kwargs)
    response["BodyBytes"] = await response["Body"].read()
    return response


async def raw_post(
    http: aiohttp.ClientSession,
    server: MockServer,
    endpoint: str = "my-endpoint",
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    # aiohttp warns about large raw bytes bodies; a BytesIO still sends a Content-Length.
    data = io.BytesIO(body) if len(body) > 1024 * 1024 else body
    async with http.post(
        f"{server.url}{api.invocation_path(endpoint)}", data=data, headers=headers or {}
    ) as response:
        return response.status, dict(response.headers), await response.read()


def error_code(headers: dict[str, str]) -> str | None:
    return api.error_code_from(headers.get(api.H_ERROR_TYPE), None)


# --- success and echo ----------------------------------------------------------------


async def test_success_echoes_body_attributes_and_variant(mock: StartMock) -> None:
    server = await mock()
    async with sagemaker(server) as client:
        response = await invoke(
            client, Body=b'{"in": [1, 2]}', Accept="text/csv", CustomAttributes="trace-id=abc{1}"
        )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["BodyBytes"] == b'{"in": [1, 2]}'
    assert response["ContentType"] == "text/csv"
    assert response["CustomAttributes"] == "trace-id=abc{1}"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert server.stats.requests == {("my-endpoint", "AllTraffic"): 1}


async def test_echo_format_wraps_attributes_verbatim(mock: StartMock) -> None:
    server = await mock(echo="Trace ID: {custom_attributes}")
    async with sagemaker(server) as client:
        response = await invoke(client, CustomAttributes="{0} {custom_attributes} %s")
    assert response["CustomAttributes"] == "Trace ID: {0} {custom_attributes} %s"


async def test_empty_echo_format_sends_no_header(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock(echo="")
    async with sagemaker(server) as client:
        response = await invoke(client, CustomAttributes="abc")
    assert "CustomAttributes" not in response
    status, headers, _ = await raw_post(http, server, headers={api.H_CUSTOM_ATTRIBUTES: "abc"})
    assert status == 200
    assert api.H_CUSTOM_ATTRIBUTES not in headers


async def test_no_attributes_no_echo_and_default_content_type(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock(echo="Trace ID: {custom_attributes}")
    status, headers, body = await raw_post(http, server, body=b"raw")
    assert status == 200
    assert body == b"raw"
    assert headers["Content-Type"] == "application/json"
    assert api.H_CUSTOM_ATTRIBUTES not in headers


async def test_port_zero_reports_the_bound_port(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock()
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    async with http.get(f"{server.url}/ping") as response:
        assert response.status == 200


# --- variants -------------------------------------------------------------------------


async def test_variant_weights_are_honoured(mock: StartMock, http: aiohttp.ClientSession) -> None:
    server = await mock(seed=7, variants=[{"name": "A", "weight": 3}, {"name": "B", "weight": 1}])
    seen = {"A": 0, "B": 0}
    for _ in range(1000):
        _, headers, _ = await raw_post(http, server)
        seen[headers[api.H_INVOKED_VARIANT]] += 1
    assert 700 <= seen["A"] <= 800, seen
    assert seen["A"] + seen["B"] == 1000
    assert server.stats.requests == {
        ("my-endpoint", "A"): seen["A"],
        ("my-endpoint", "B"): seen["B"],
    }


async def test_same_seed_same_variant_sequence(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    variants = [{"name": "A"}, {"name": "B"}]
    sequences = []
    for _ in range(2):
        server = await mock(seed=11, variants=variants)
        sequence = []
        for _ in range(50):
            _, headers, _ = await raw_post(http, server)
            sequence.append(headers[api.H_INVOKED_VARIANT])
        sequences.append(sequence)
    assert sequences[0] == sequences[1]
    assert set(sequences[0]) == {"A", "B"}


async def test_target_variant_is_honoured(mock: StartMock) -> None:
    server = await mock(variants=[{"name": "A", "weight": 100}, {"name": "B", "weight": 0.01}])
    async with sagemaker(server) as client:
        for _ in range(5):
            response = await invoke(client, TargetVariant="B")
            assert response["InvokedProductionVariant"] == "B"
    assert server.stats.requests == {("my-endpoint", "B"): 5}


async def test_any_target_variant_accepted_when_variants_not_configured(mock: StartMock) -> None:
    server = await mock()
    async with sagemaker(server) as client:
        response = await invoke(client, TargetVariant="Canary")
    assert response["InvokedProductionVariant"] == "Canary"


@pytest.mark.parametrize(
    "config",
    [
        {"variants": [{"name": "A"}, {"name": "B"}]},
        {"endpoints": {"my-endpoint": {"variants": [{"name": "AllTraffic"}]}}},
    ],
    ids=["top-level", "per-endpoint"],
)
async def test_unknown_target_variant_rejected_when_variants_configured(
    mock: StartMock, config: dict[str, Any]
) -> None:
    server = await mock(**config)
    async with sagemaker(server) as client:
        with pytest.raises(ClientError) as caught:
            await invoke(client, TargetVariant="Nope")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert server.stats.requests == {}


async def test_endpoint_override_applies_to_that_endpoint_only(mock: StartMock) -> None:
    server = await mock(
        endpoints={"broken": {"errors": {"ModelError": 1.0}, "variants": [{"name": "V1"}]}}
    )
    async with sagemaker(server) as client:
        ok = await invoke(client, endpoint="fine")
        with pytest.raises(ClientError) as caught:
            await invoke(client, endpoint="broken")
    assert ok["InvokedProductionVariant"] == "AllTraffic"
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert server.stats.requests == {("fine", "AllTraffic"): 1, ("broken", "V1"): 1}


# --- injected errors ------------------------------------------------------------------


async def test_model_error_carries_original_status_through_aiobotocore(mock: StartMock) -> None:
    server = await mock(errors={"ModelError": 1.0}, region="eu-west-1")
    async with sagemaker(server, region="eu-west-1") as client:
        with pytest.raises(ClientError) as caught:
            await invoke(client, endpoint="ep-1", CustomAttributes="abc")
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 500
    assert response["OriginalMessage"]
    assert response["LogStreamArn"] == (
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep-1"
    )
    assert "Received server error (500)" in response["Error"]["Message"]
    # Errors come from the service, not the model: no echo.
    assert api.H_CUSTOM_ATTRIBUTES.lower() not in response["ResponseMetadata"]["HTTPHeaders"]
    assert server.stats.injected_errors == {"ModelError": 1}


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("ServiceUnavailable", 503), ("InternalFailure", 500)],
)
async def test_injected_error_status(
    mock: StartMock, http: aiohttp.ClientSession, code: str, status: int
) -> None:
    server = await mock(errors={code: 1.0})
    async with sagemaker(server) as client:
        with pytest.raises(ClientError) as caught:
            await invoke(client)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    raw_status, headers, body = await raw_post(http, server)
    assert raw_status == status
    assert headers[api.H_ERROR_TYPE].startswith(f"{code}:")
    assert error_code(headers) == code
    assert json.loads(body)["message"]


async def test_error_rate_one_fails_every_request(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock(error_rate=1.0)
    statuses = [(await raw_post(http, server))[0] for _ in range(50)]
    assert statuses == [424] * 50
    assert server.stats.injected_errors == {"ModelError": 50}


async def test_error_probabilities_are_drawn_once_per_request(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock(seed=3, errors={"ThrottlingException": 0.25, "ServiceUnavailable": 0.25})
    for _ in range(800):
        await raw_post(http, server)
    injected = server.stats.injected_errors
    assert 150 <= injected["ThrottlingException"] <= 250, injected
    assert 150 <= injected["ServiceUnavailable"] <= 250, injected
    assert server.stats.total_requests() == 800


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "attributes",
    ["x" * 1025, "caf\u00e9", "tab\there"],
    ids=["1025-chars", "non-ascii", "control-char"],
)
async def test_invalid_custom_attributes_rejected(
    mock: StartMock, http: aiohttp.ClientSession, attributes: str
) -> None:
    server = await mock()
    status, headers, body = await raw_post(
        http, server, headers={api.H_CUSTOM_ATTRIBUTES: attributes}
    )
    assert (status, error_code(headers)) == (400, "ValidationError")
    assert "CustomAttributes" in json.loads(body)["message"]
    assert server.stats.validation_errors == 1


async def test_custom_attributes_of_1024_chars_accepted(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock()
    attributes = "y" * 1024
    status, headers, _ = await raw_post(http, server, headers={api.H_CUSTOM_ATTRIBUTES: attributes})
    assert status == 200
    assert headers[api.H_CUSTOM_ATTRIBUTES] == attributes


async def test_invalid_endpoint_name_rejected(mock: StartMock, http: aiohttp.ClientSession) -> None:
    server = await mock()
    for name in ("bad_name", "a" * 64, "-lead"):
        status, headers, _ = await raw_post(http, server, endpoint=name)
        assert (status, error_code(headers)) == (400, "ValidationError"), name


async def test_body_limit_is_six_mib(mock: StartMock, http: aiohttp.ClientSession) -> None:
    server = await mock()
    status, _, body = await raw_post(http, server, body=b"a" * api.MAX_BODY_BYTES)
    assert status == 200
    assert len(body) == api.MAX_BODY_BYTES
    status, headers, _ = await raw_post(http, server, body=b"a" * (api.MAX_BODY_BYTES + 1))
    assert (status, error_code(headers)) == (400, "ValidationError")


async def test_chunked_body_over_limit_rejected(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(7):
            yield b"b" * (1024 * 1024)

    async with http.post(f"{server.url}{api.invocation_path('ep')}", data=chunks()) as response:
        assert response.status == 400
        assert error_code(dict(response.headers)) == "ValidationError"


# --- SigV4 ----------------------------------------------------------------------------


@pytest.mark.parametrize("session_token", [None, "FQoGZXIvYXdzEXAMPLETOKEN=="])
async def test_correct_signature_accepted(mock: StartMock, session_token: str | None) -> None:
    server = await mock(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-west-2")
    async with sagemaker(server, session_token=session_token, region="us-west-2") as client:
        response = await invoke(client, CustomAttributes="sig-ok", TargetVariant="X")
    assert response["CustomAttributes"] == "sig-ok"
    assert server.stats.signature_failures == 0


async def test_wrong_secret_rejected_with_invalid_signature(mock: StartMock) -> None:
    server = await mock(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    async with sagemaker(server, secret_key="not-the-secret") as client:
        with pytest.raises(ClientError) as caught:
            await invoke(client)
    response = caught.value.response
    assert response["Error"]["Code"] == "InvalidSignatureException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Message"] == MISMATCH_MESSAGE
    assert SECRET_KEY not in json.dumps(response, default=str)
    assert server.stats.signature_failures == 1
    assert server.stats.requests == {}


async def test_wrong_region_rejected(mock: StartMock) -> None:
    server = await mock(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1")
    async with sagemaker(server, region="eu-central-1") as client:
        with pytest.raises(ClientError) as caught:
            await invoke(client)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


async def test_unsigned_and_unknown_key_rejected(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    status, headers, _ = await raw_post(http, server)
    assert (status, error_code(headers)) == (403, "InvalidSignatureException")
    forged = (
        "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20240101/us-east-1/sagemaker/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    status, headers, _ = await raw_post(
        http, server, headers={"Authorization": forged, "X-Amz-Date": "20240101T000000Z"}
    )
    assert (status, error_code(headers)) == (403, "InvalidSignatureException")
    assert server.stats.signature_failures == 2


def signed_headers_for(body: bytes, secret_key: str = SECRET_KEY) -> CIMultiDict[str]:
    """Headers of a request signed by botocore, as the mock would receive them."""
    request = AWSRequest(
        method="POST",
        url="http://localhost:8080/endpoints/ep/invocations",
        headers={"Content-Type": "application/json", api.H_CUSTOM_ATTRIBUTES: "a  b"},
        data=body,
    )
    SigV4Auth(Credentials(ACCESS_KEY, secret_key), "sagemaker", "us-east-1").add_auth(request)
    return CIMultiDict({**request.headers, "Host": "localhost:8080"})


def test_verifier_against_botocore_signed_requests() -> None:
    verifier = SignatureVerifier(ACCESS_KEY, SECRET_KEY, "us-east-1")

    def problem(headers: CIMultiDict[str], body: bytes = b"{}") -> str | None:
        path = "/endpoints/ep/invocations"
        return verifier.problem(method="POST", raw_path=path, headers=headers, body=body)

    headers = signed_headers_for(b"{}")
    assert problem(headers) is None
    assert problem(headers, body=b"{ }") == MISMATCH_MESSAGE
    assert problem(CIMultiDict({**headers, "Content-Type": "text/csv"})) == MISMATCH_MESSAGE
    assert problem(CIMultiDict({**headers, "Host": "localhost:8081"})) == MISMATCH_MESSAGE
    # Headers outside SignedHeaders may change freely.
    assert problem(CIMultiDict({**headers, "User-Agent": "other"})) is None
    assert problem(signed_headers_for(b"{}", secret_key="wrong")) == MISMATCH_MESSAGE
    assert SECRET_KEY not in repr(verifier)


def test_parse_authorization() -> None:
    value = (
        "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sagemaker/aws4_request, "
        "SignedHeaders=Host;X-Amz-Date, Signature=abc"
    )
    assert parse_authorization(value) == (
        "AKID/20240101/us-east-1/sagemaker/aws4_request",
        ["host", "x-amz-date"],
        "abc",
    )
    assert parse_authorization("Bearer xyz") is None
    assert parse_authorization("AWS4-HMAC-SHA256 Credential=a, Signature=b") is None


# --- latency --------------------------------------------------------------------------


def test_latency_draws_follow_median_and_p99() -> None:
    behaviour = behaviour_of(MockConfig(latency_ms={"median": 20, "p99": 80}).latency_ms, {})
    dice = Dice(seed=1)
    draws = sorted(dice.delay_s(behaviour) * 1000 for _ in range(20_000))
    assert 19.0 <= draws[len(draws) // 2] <= 21.0
    assert 72.0 <= draws[int(len(draws) * 0.99)] <= 88.0


def test_zero_median_means_no_delay() -> None:
    behaviour = behaviour_of(MockConfig(latency_ms=NO_DELAY).latency_ms, {})
    assert behaviour == Behaviour(mu=None, sigma=0.0, errors=())
    assert Dice(seed=None).delay_s(behaviour) == 0.0


async def test_measured_latency_median(mock: StartMock, http: aiohttp.ClientSession) -> None:
    """A median of 60 ms measured by a client in the mock's own loop: seed 5's 200 draws have
    a median of 59.7 ms, which no request beats; a loaded machine adds its lag (+17 ms seen
    at a 20 ms median, which a 35 ms bound could not take), but not the 119 ms of a delay
    slept twice, the 240 of the p99 taken for the median, or the 0 of none."""
    server = await mock(seed=5, latency_ms={"median": 60, "p99": 240})

    async def timed() -> float:
        started = time.perf_counter()
        await raw_post(http, server)
        return (time.perf_counter() - started) * 1000

    # Connections are opened first so that their set-up is not measured; 20 at a time
    # keeps the test short without loading the loop enough to skew it.
    await asyncio.gather(*(timed() for _ in range(20)))
    samples: list[float] = []
    for _ in range(10):
        samples += await asyncio.gather(*(timed() for _ in range(20)))
    median = statistics.median(samples)
    assert 58.0 <= median <= 100.0, median  # 58: a timer may round down to its millisecond


async def test_variant_latency_overrides_endpoint(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock(
        latency_ms={"median": 0, "p99": 0},
        variants=[{"name": "slow", "latency_ms": {"median": 60, "p99": 60}}],
    )
    started = time.perf_counter()
    await raw_post(http, server)
    assert time.perf_counter() - started >= 0.055


# --- container mode -------------------------------------------------------------------


async def test_container_mode_ping_and_invocations(
    mock: StartMock, http: aiohttp.ClientSession
) -> None:
    server = await mock(container=True, echo="Trace ID: {custom_attributes}")
    async with http.get(f"{server.url}/ping") as response:
        assert response.status == 200
    async with http.post(
        f"{server.url}/invocations",
        data=b"[1,2,3]",
        headers={api.H_CUSTOM_ATTRIBUTES: "t-1", "Accept": "text/plain"},
    ) as response:
        assert response.status == 200
        assert await response.read() == b"[1,2,3]"
        assert response.headers[api.H_CUSTOM_ATTRIBUTES] == "Trace ID: t-1"
        assert response.headers["Content-Type"] == "text/plain"
    async with http.post(f"{server.url}{api.invocation_path('ep')}", data=b"x") as response:
        assert response.status == 404
    assert server.stats.total_requests() == 1


# --- the blocking CLI entry point -----------------------------------------------------


def test_serve_prints_url_and_exits_cleanly_on_sigint() -> None:
    script = (
        "from loadgen.mock.config import MockConfig\n"
        "from loadgen.mock.server import serve\n"
        "serve(MockConfig(), '127.0.0.1', 0)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("mock endpoint listening on http://127.0.0.1:"), line
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
