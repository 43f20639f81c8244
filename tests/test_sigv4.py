"""Our SigV4 signer against botocore's SigV4Auth, byte for byte, on ~3000 randomized requests."""

from __future__ import annotations

import calendar
import datetime
import hashlib
import json
import random
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import aiohttp.web
import botocore.auth
import pytest
from aiobotocore.session import get_session
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from loadgen import api
from loadgen.transport import sigv4
from loadgen.transport.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    SigV4Signer,
    canonical_request,
    canonical_uri_and_query,
)

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"]
CASES = 3000

OPTIONAL_HEADERS = [
    api.H_TARGET_VARIANT,
    api.H_TARGET_MODEL,
    api.H_TARGET_CONTAINER,
    api.H_INFERENCE_ID,
    "X-Amzn-SageMaker-Enable-Explanations",
    api.H_INFERENCE_COMPONENT,
    "X-Amzn-SageMaker-Session-Id",
]
# Headers botocore never signs; the signer must skip them too.
UNSIGNED = [
    ("User-Agent", "loadgen/0.1 aiohttp"),
    ("Expect", "100-continue"),
    ("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"),
    ("Connection", "keep-alive"),
]
# Midnights (UTC) at day, month, year and leap-day boundaries.
BOUNDARIES = [
    calendar.timegm((2023, 12, 31, 0, 0, 0)),
    calendar.timegm((2024, 1, 1, 0, 0, 0)),
    calendar.timegm((2024, 2, 29, 0, 0, 0)),
    calendar.timegm((2024, 3, 1, 0, 0, 0)),
    calendar.timegm((2025, 7, 1, 0, 0, 0)),
    calendar.timegm((2025, 1, 1, 0, 0, 0)),
    calendar.timegm((2038, 1, 19, 0, 0, 0)),
]


@dataclass
class Case:
    method: str
    scheme: str
    host: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    credentials: Credentials
    timestamp: float


def botocore_sign(
    region: str,
    case: Case,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[AWSRequest, list[tuple[str, str]]]:
    """Sign `case` with botocore's SigV4Auth at `case.timestamp`; returns the request and its new headers."""
    now = datetime.datetime.fromtimestamp(case.timestamp, datetime.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    request = AWSRequest(
        method=case.method, url=f"{case.scheme}://{case.host}{case.path}", data=case.body
    )
    for name, value in case.headers:
        request.headers[name] = value  # appends, so repeated headers survive
    before = {name.lower() for name in request.headers.keys()}
    creds = case.credentials
    botocore.auth.SigV4Auth(
        BotoCredentials(creds.access_key, creds.secret_key, creds.token), "sagemaker", region
    ).add_auth(request)
    added = [(name, value) for name, value in request.headers.items() if name.lower() not in before]
    return request, added


def _visible_ascii(rng: random.Random, size: int) -> str:
    text = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(size))
    if rng.random() < 0.5:
        text = " " * rng.randint(1, 3) + text.replace("=", "  =   ") + " " * rng.randint(1, 3)
    return text[: api.MAX_CUSTOM_ATTRIBUTES]


def _endpoint_name(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    parts = [rng.choice(alnum)]
    while len("".join(parts)) < rng.randint(1, 63):
        parts.append("-" * rng.choice([0, 0, 1, 2]) + rng.choice(alnum))
    name = "".join(parts)
    while len(name) > 63 or name.endswith("-"):
        name = name[:-1]
    assert api.ENDPOINT_NAME_RE.fullmatch(name)
    return name


def _random_case(rng: random.Random, region: str, bodies: list[bytes], secrets: list[str]) -> Case:
    host, scheme = rng.choice(
        [
            (f"runtime.sagemaker.{region}.amazonaws.com", "https"),
            ("127.0.0.1:8080", "http"),
            ("localhost:49152", "http"),
            ("[::1]:8443", "https"),
        ]
    )
    name = _endpoint_name(rng)
    path = rng.choice(
        [f"/endpoints/{name}/invocations", f"/endpoints/{name}/invocations-response-stream"]
    )

    kind = rng.random()
    if kind < 0.4:
        body = rng.choice(bodies)  # a repeated body: the hash cache must hit
    elif kind < 0.5:
        body = bytes(rng.choice(bodies))  # same content, another object
    elif kind < 0.7:
        body = rng.randbytes(rng.randint(0, 4096))
    else:
        body = json.dumps({"inputs": _visible_ascii(rng, rng.randint(0, 2000))}).encode()

    headers: list[tuple[str, str]] = []
    if rng.random() < 0.9:
        headers.append(
            (
                "Content-Type",
                rng.choice(["application/json", " text/csv ", "application/x-npy;  v=1"]),
            )
        )
    if rng.random() < 0.6:
        headers.append(
            ("Accept", rng.choice(["application/json", "*/*", "text/csv,  application/json"]))
        )
    if rng.random() < 0.9:
        headers.append((api.H_CUSTOM_ATTRIBUTES, _visible_ascii(rng, rng.randint(0, 1024))))
    for header in OPTIONAL_HEADERS:
        if rng.random() < 0.3:
            value = "true" if "Explanations" in header else _endpoint_name(rng)
            headers.append((header, value))
    if rng.random() < 0.3:
        headers.append(("Content-Length", str(len(body))))
    if rng.random() < 0.3:
        headers.append(rng.choice(UNSIGNED))
    if rng.random() < 0.05:  # a repeated header: values joined with "," in order
        headers.append((api.H_CUSTOM_ATTRIBUTES, _visible_ascii(rng, rng.randint(0, 30))))
    rng.shuffle(headers)
    headers = [(rng.choice([name, name.lower(), name.upper()]), value) for name, value in headers]

    token = rng.choice(
        [
            None,
            None,
            "",
            "FwoGZXIvYXdzE" + "".join(rng.choices(string.ascii_letters + "+/=", k=300)),
        ]
    )
    credentials = Credentials(
        access_key=rng.choice(
            ["AKIDEXAMPLE", "ASIA" + "".join(rng.choices(string.ascii_uppercase, k=16))]
        ),
        secret_key=rng.choice(secrets),
        token=token,
    )
    boundary = rng.choice(BOUNDARIES)
    offset_us = rng.choice(
        [-100_000, -1, 0, 1, 999_999, rng.randint(-86_400_000_000, 86_400_000_000)]
    )
    timestamp = (boundary * 1_000_000 + offset_us) / 1_000_000
    return Case(
        rng.choice(["POST", "POST", "post"]),
        scheme,
        host,
        path,
        headers,
        body,
        credentials,
        timestamp,
    )


def _cases(seed: int) -> Iterator[tuple[str, Case]]:
    rng = random.Random(seed)
    bodies = [b"", b"{}", rng.randbytes(1000), json.dumps({"x": list(range(100))}).encode()]
    secrets = [
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "".join(rng.choices(string.printable[:94], k=40)),
    ]
    for index in range(CASES):
        region = REGIONS[index % len(REGIONS)]
        yield region, _random_case(rng, region, bodies, secrets)


def test_matches_botocore_on_random_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    # one instance per region across all days: the key cache must switch days
    signers = {region: SigV4Signer(region) for region in REGIONS}
    for region, case in _cases(seed=20240229):
        signer = signers[region]
        ours = signer.sign(
            case.method,
            case.host,
            case.path,
            case.headers,
            case.body,
            case.credentials,
            case.timestamp,
        )
        request, theirs = botocore_sign(region, case, monkeypatch)
        assert ours == theirs, (case.path, case.host, case.headers, case.timestamp)
        assert "X-Amz-Content-SHA256" not in request.headers


@pytest.mark.parametrize("region", REGIONS)
def test_midnight_sequence_switches_key(region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Just before and after midnight, in order and back again, with one signer."""
    signer = SigV4Signer(region)
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
    path = "/endpoints/my-endpoint/invocations-response-stream"
    seen_dates = set()
    for boundary in BOUNDARIES:
        for timestamp in (
            boundary - 0.1,
            boundary + 0.0,
            boundary - 0.1,
            boundary + 86_399.9,
            boundary + 86_400.0,
        ):
            case = Case(
                "POST",
                "https",
                f"runtime.sagemaker.{region}.amazonaws.com",
                path,
                [("Content-Type", "application/json")],
                b'{"a": 1}',
                creds,
                timestamp,
            )
            ours = signer.sign(
                case.method, case.host, case.path, case.headers, case.body, creds, timestamp
            )
            _, theirs = botocore_sign(region, case, monkeypatch)
            assert ours == theirs
            seen_dates.add(ours[0][1][:8])
    assert len(signer._keys) <= 2  # only the newest two days are kept
    expected = {
        datetime.datetime.fromtimestamp(b + delta, datetime.UTC).strftime("%Y%m%d")
        for b in BOUNDARIES
        for delta in (-1, 0, 86_400)
    }
    assert seen_dates == expected


def test_odd_paths_and_queries_match_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = SigV4Signer("us-east-1")
    creds = Credentials("AKIDEXAMPLE", "secret")
    paths = [
        "/",
        "",
        "/endpoints/a/../b/./invocations",
        "//endpoints//x//invocations/",
        "/endpoints/with space/invocations",
        "/endpoints/%41b/invocations",
        "/endpoints/caf\u00e9/invocations",
        "/endpoints/x/invocations?b=2&a=1&a=0&c",
        "/endpoints/x/invocations?",
        "/e~x_y.z-w!$'()*+,;=:@/invocations",
    ]
    for path in paths:
        case = Case(
            "POST",
            "https",
            "runtime.sagemaker.us-east-1.amazonaws.com",
            path,
            [],
            b"x",
            creds,
            1_700_000_000.5,
        )
        ours = signer.sign(
            case.method, case.host, path or "/", case.headers, case.body, creds, case.timestamp
        )
        _, theirs = botocore_sign("us-east-1", case, monkeypatch)
        assert ours == theirs, path


def test_explicit_content_sha256_header_is_signed_as_payload_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = SigV4Signer("us-east-1")
    creds = Credentials("AKIDEXAMPLE", "secret")
    headers = [("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"), ("Content-Type", "application/json")]
    case = Case(
        "POST",
        "https",
        "runtime.sagemaker.us-east-1.amazonaws.com",
        "/endpoints/e/invocations",
        headers,
        b"{}",
        creds,
        1_700_000_000.0,
    )
    ours = signer.sign(case.method, case.host, case.path, headers, case.body, creds, case.timestamp)
    _, theirs = botocore_sign("us-east-1", case, monkeypatch)
    assert ours == theirs


def test_canonical_request_matches_botocore() -> None:
    region = "us-east-1"
    request = AWSRequest(
        method="POST",
        url="https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/ep/invocations",
        data=b'{"a": 1}',
        headers={
            "Content-Type": "application/json",
            api.H_CUSTOM_ATTRIBUTES: "  a   b ",
            "User-Agent": "x",
        },
    )
    request.context["timestamp"] = "20240229T235959Z"
    request.headers["X-Amz-Date"] = "20240229T235959Z"
    auth = botocore.auth.SigV4Auth(BotoCredentials("AKID", "secret"), "sagemaker", region)
    expected = auth.canonical_request(request)
    headers = [(name, value) for name, value in request.headers.items()]
    headers.append(("Host", "runtime.sagemaker.us-east-1.amazonaws.com"))
    ours = canonical_request(
        "POST", "/endpoints/ep/invocations", headers, hashlib.sha256(b'{"a": 1}').hexdigest()
    )
    assert ours == expected
    signer = SigV4Signer(region)
    timestamp = calendar.timegm((2024, 2, 29, 23, 59, 59)) + 0.9
    via_signer = signer.canonical_request(
        "POST",
        "runtime.sagemaker.us-east-1.amazonaws.com",
        "/endpoints/ep/invocations",
        [
            ("Content-Type", "application/json"),
            (api.H_CUSTOM_ATTRIBUTES, "  a   b "),
            ("User-Agent", "x"),
        ],
        b'{"a": 1}',
        Credentials("AKID", "secret"),
        timestamp,
    )
    assert via_signer == expected


def test_canonical_uri_helpers() -> None:
    assert canonical_uri_and_query("/endpoints/e/invocations") == ("/endpoints/e/invocations", "")
    assert canonical_uri_and_query("") == ("/", "")
    assert SigV4Signer("us-east-1")._payload_hash(b"") == EMPTY_SHA256


def test_reserved_headers_are_rejected() -> None:
    signer = SigV4Signer("us-east-1")
    for name in ("Host", "x-amz-date", "X-Amz-Security-Token", "Authorization"):
        with pytest.raises(ValueError) as excinfo:
            signer.sign("POST", "h", "/", [(name, "v")], b"", Credentials("AK", "SECRET"), 0.0)
        assert "SECRET" not in str(excinfo.value)


def test_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sigv4, "_MAX_BODY_CACHE_ENTRIES", 256)
    signer = SigV4Signer("us-east-1")
    creds = Credentials("AK", "secret")
    for index in range(1000):
        signer.sign(
            "POST",
            "h",
            f"/endpoints/e{index}/invocations",
            [],
            str(index).encode() * 10,
            creds,
            index * 86_400.0,
        )
    assert len(signer._bodies) <= 256
    assert len(signer._paths) <= 256
    assert len(signer._keys) <= 2


def test_a_dataset_of_thousands_of_bodies_is_hashed_once_each() -> None:
    signer = SigV4Signer("us-east-1")
    bodies = [b'{"row": %d}' % index for index in range(5000)]
    for body in bodies * 2:
        signer.sign("POST", "h", "/endpoints/e/invocations", [], body, Credentials("A", "s"), 0.0)
    assert len(signer._bodies) == 5000
    assert all(signer._bodies[body] == hashlib.sha256(body).hexdigest() for body in bodies)


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-secret", "session-token-value")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "AKIDEXAMPLE" in text
        assert "wJalrXUtnFEMI-secret" not in text
        assert "session-token-value" not in text


# -- a real aiobotocore request -------------------------------------------------------


@dataclass
class Captured:
    method: str
    raw_path: str
    headers: list[tuple[str, str]]
    body: bytes


@pytest.fixture
async def recorder() -> Iterator[tuple[str, list[Captured]]]:
    """An HTTP server on 127.0.0.1:<free port> that records each request and answers 200 {}."""
    seen: list[Captured] = []

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(
            Captured(
                request.method,
                request.raw_path,
                list(request.headers.items()),
                await request.read(),
            )
        )
        return aiohttp.web.json_response({})

    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def _resign(captured: Captured, region: str, credentials: Credentials) -> tuple[str, str]:
    """(aiobotocore's Authorization, ours for the same signed headers at its X-Amz-Date)."""
    headers = dict((name.lower(), value) for name, value in captured.headers)
    authorization = headers["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    to_sign: Sequence[tuple[str, str]] = [
        (name, value)
        for name, value in captured.headers
        if name.lower() in signed
        and name.lower() not in ("host", "x-amz-date", "x-amz-security-token")
    ]
    stamp = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    timestamp = float(calendar.timegm(stamp.timetuple()))
    ours = SigV4Signer(region).sign(
        captured.method,
        headers["host"],
        captured.raw_path,
        to_sign,
        captured.body,
        credentials,
        timestamp,
    )
    assert ours[0] == ("X-Amz-Date", headers["x-amz-date"])
    if credentials.token:
        assert ours[1] == ("X-Amz-Security-Token", headers["x-amz-security-token"])
    return authorization, ours[-1][1]


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLETOKEN=="])
async def test_matches_a_real_aiobotocore_request(
    recorder: tuple[str, list[Captured]],
    token: str | None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    url, seen = recorder
    region = "eu-west-1"
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    async with get_session().create_client(
        "sagemaker-runtime",
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=token,
    ) as client:
        await client.invoke_endpoint(
            EndpointName="my-endpoint-1",
            Body=b'{"inputs": "  hello   world "}',
            ContentType="application/json",
            Accept="application/json",
            CustomAttributes="  trace=abc   x=1 ",
            TargetVariant="variant-a",
            TargetModel="model.tar.gz",
            TargetContainerHostname="c1",
            InferenceId="inf-1",
            EnableExplanations="`true`",
            InferenceComponentName="ic-1",
        )
        await client.invoke_endpoint(EndpointName="e", Body=b"")
        response = await client.invoke_endpoint_with_response_stream(
            EndpointName="stream-ep", Body=b'{"inputs": "hi"}', ContentType="application/json"
        )
        response["Body"].close()
    assert len(seen) == 3
    for captured in seen:
        assert not any(name.lower() == "x-amz-content-sha256" for name, _ in captured.headers)
        theirs, ours = _resign(captured, region, credentials)
        assert ours == theirs
    assert seen[0].raw_path == "/endpoints/my-endpoint-1/invocations"
    assert seen[2].raw_path == "/endpoints/stream-ep/invocations-response-stream"


def test_signing_template_gives_what_sign_gives() -> None:
    """sign_template (the fast transport's per-request path) against sign, which the tests
    above hold to botocore: dates, days, keys, tokens, whitespace and % in values."""
    rng = random.Random(11)
    signer = SigV4Signer("us-east-1")
    names = ["Content-Type", "Accept", "X-Amzn-SageMaker-Target-Variant", "User-Agent"]
    dynamic_sets = [
        ["X-Amzn-SageMaker-Custom-Attributes"],
        [],
        ["X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id"],
    ]
    base = 1_700_000_000.0
    checked = 0
    for _ in range(500):
        static = [
            (name, rng.choice(["application/json", " a  b ", "x%20y", "100%"]))
            for name in rng.sample(names, rng.randint(0, len(names)))
        ]
        dynamic = rng.choice(dynamic_sets)
        token = rng.choice([None, "tok"])
        path = rng.choice(["/endpoints/a/invocations", "/endpoints/a b/invocations"])
        template = signer.template("POST", "h:81", path, static, dynamic, token)
        assert template is not None
        for _ in range(4):
            values = [rng.choice(["trace=abc", " a  b\tc ", "", "50%s"]) for _ in dynamic]
            body = rng.choice([b"", b"{}", b"x" * 100])
            timestamp = base + rng.choice([0, 0.5, 1, 86_400, -86_400, 2.3])
            credentials = rng.choice(
                [
                    Credentials("AK", "sk", token),
                    Credentials("AK2", "sk", token),
                    Credentials("AK", "sk2", token),
                    Credentials("AK", "sk", "other"),  # not the template's token
                ]
            )
            full = signer.sign(
                "POST",
                "h:81",
                path,
                [*static, *zip(dynamic, values, strict=True)],
                body,
                credentials,
                timestamp,
            )
            ours = signer.sign_template(template, values, body, credentials, timestamp)
            assert ours == (full[0][1], full[-1][1])
            checked += 1
    assert checked == 2000
    # Headers a template cannot hold: a dynamic one repeating a static one, or unsigned.
    assert signer.template("POST", "h", "/p", [("Accept", "a")], ["Accept"], None) is None
    assert signer.template("POST", "h", "/p", [], ["User-Agent"], None) is None
