"""InvokeEndpoint as bytes: each Request signed and encoded, each response mapped to an Outcome.

The request line and every header a target always sends are encoded once per Target; per
request only the custom attributes, Content-Length and signature headers are formatted,
in one C call (`_sigv4c.build`) when the extension is built. No I/O here: the transport
writes what `RequestEncoder.encode` returns.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import floor
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from loadgen import api
from loadgen.transport.base import Outcome, Request, Target, error_for_status
from loadgen.transport.http11 import ProtocolViolation, ReadTimeout, Response, header_lines
from loadgen.transport.sigv4 import SigningTemplate, SigV4Signer

if TYPE_CHECKING:
    from loadgen.transport.credentials import CredentialSource
    from loadgen.transport.sigv4 import Credentials

USER_AGENT = "loadgen/0.1"

# Bodies up to this size are joined with the head into one write; larger ones go out
# with writelines so a 6 MiB payload is not copied.
JOIN_LIMIT = 64 * 1024
# Targets are built once per run; this only bounds a caller that builds them per request.
_MAX_PREPARED = 1024
_CUSTOM_ATTRIBUTES_LINE = f"{api.H_CUSTOM_ATTRIBUTES}: "

# A request's bytes, and its body when larger than JOIN_LIMIT (written separately), or None.
Encoded = tuple[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: scheme, host and port of the endpoint URL, and the Host header."""

    scheme: str
    host: str
    port: int
    host_header: str

    @classmethod
    def parse(cls, endpoint_url: str) -> Origin:
        parts = urlsplit(endpoint_url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"endpoint_url must be http:// or https://, got {endpoint_url!r}")
        if not parts.hostname:
            raise ValueError(f"endpoint_url has no host: {endpoint_url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"endpoint_url must not have a path or query: {endpoint_url!r}")
        default_port = 443 if scheme == "https" else 80
        port = parts.port or default_port
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == default_port else f"{shown}:{port}"
        return cls(scheme, host, port, host_header)


@dataclass(frozen=True, slots=True)
class PreparedTarget:
    """What every request to one Target shares, encoded once."""

    path: str
    head: bytes  # request line and static headers, each line ending in CRLF
    signed: tuple[tuple[str, str], ...]  # the static headers that are signed


class _Entry(NamedTuple):
    """A Target's signing template for one session token."""

    token: str | None
    token_line: str  # its X-Amz-Security-Token header line, or ""
    template: SigningTemplate | None  # None: these headers cannot have one


class BuildPlan(NamedTuple):
    """`_sigv4c.build`'s per-second plan for one Target: the bytes of what
    RequestEncoder._encode_python formats, cut where the custom attributes value,
    Content-Length and signature go, plus what signs it.

    C reads it by index: the fields are _sigv4c.c's PLAN_* enum, in its order
    (`_sigv4c.PLAN_FIELDS`, which tests/test_build.py holds this class to).
    """

    second: int  # the whole epoch second the date strings are for
    credentials: Credentials  # compared by identity: refreshed credentials are a new object
    hashes: dict[bytes, str]  # body -> hex SHA-256: the signer's payload-hash cache
    creq_state: bytes  # SHA-256 midstate after creq_head's whole blocks
    creq_head: bytes  # the canonical request up to the header value
    creq_tail: bytes  # ... after it, up to the payload hash
    inner_state: bytes  # HMAC inner midstate after the key block and sts' whole blocks
    sts: bytes  # the string to sign up to the canonical request's hash
    outer_state: bytes  # HMAC outer state after the key block
    head: bytes  # the request bytes up to the custom attributes value
    length: bytes  # ... after it, up to the Content-Length digits
    signature: bytes  # ... after them, up to the signature's hex digits
    end: bytes  # ... after those, up to the body
    join_limit: int  # larger bodies are not joined; the caller writes them


class _Cached:
    """A Target's PreparedTarget and its signing templates, with and without the custom
    attributes header; rebuilt when the token changes. `plan` is the current second's plan
    for requests with custom attributes, when the C builder signs them."""

    __slots__ = ("target", "prepared", "with_attributes", "without_attributes", "plan")

    def __init__(self, target: Target, prepared: PreparedTarget) -> None:
        self.target = target  # keeps it alive, so its id is not reused while cached
        self.prepared = prepared
        self.with_attributes: _Entry | None = None
        self.without_attributes: _Entry | None = None
        self.plan: BuildPlan | None = None


def prepare_target(target: Target, host_header: str) -> PreparedTarget:
    """Build the request line and the headers a target always sends."""
    path = api.invocation_path(target.endpoint_name, target.stream)
    signed: list[tuple[str, str]] = [("Content-Type", target.content_type)]
    if target.accept:
        signed.append((api.H_STREAM_ACCEPT if target.stream else "Accept", target.accept))
    signed.extend(target.optional_headers().items())
    lines = header_lines([("Host", host_header), ("User-Agent", USER_AGENT), *signed])
    head = f"POST {path} HTTP/1.1\r\n{lines}".encode("latin-1")
    return PreparedTarget(path, head, tuple(signed))


def encode_request(
    prepared: PreparedTarget,
    custom_attributes: str,
    body: bytes,
    signature: Sequence[tuple[str, str]],
) -> bytes:
    """The request head (static part + per-request headers) followed by the body if small.

    Bodies larger than JOIN_LIMIT are left out; the caller writes them separately.
    """
    tail = f"{api.H_CUSTOM_ATTRIBUTES}: {custom_attributes}\r\n" if custom_attributes else ""
    tail += f"Content-Length: {len(body)}\r\n"
    for name, value in signature:
        tail += f"{name}: {value}\r\n"
    tail += "\r\n"
    if len(body) <= JOIN_LIMIT:
        return b"".join((prepared.head, tail.encode("latin-1"), body))
    return prepared.head + tail.encode("latin-1")


def outcome_of(response: Response) -> Outcome:
    """The Outcome of a complete response; the error code parsed the way botocore does."""
    status = response.status
    outcome = Outcome(status, None, response.variant, response.echoed)
    if 200 <= status < 300:
        return outcome
    body = _json_object(response.body)
    code = api.error_code_from(response.error_type, _body_code(body))
    if code is not None:
        code = code.rsplit("#", 1)[-1] or None  # "com.amazon.coral#ThrottlingException"
    outcome.error = error_for_status(status, code)
    original = body.get("OriginalStatusCode")
    if isinstance(original, int) and not isinstance(original, bool):
        outcome.original_status = original
    elif isinstance(original, str) and original.isdigit():
        outcome.original_status = int(original)
    return outcome


def _json_object(body: bytes | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _body_code(body: dict[str, Any]) -> str | None:
    """botocore's RestJSONParser order: `code`, then `Code`, then `__type`."""
    for key in ("code", "Code", "__type"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def error_of(exc: BaseException) -> str:
    """The outcome code of a failure that produced no response: the one mapping place."""
    if isinstance(exc, ReadTimeout | TimeoutError):
        return api.TIMEOUT
    if isinstance(exc, ProtocolViolation):
        return api.PROTOCOL_ERROR
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        # a configuration problem (wrong CA, a self-signed endpoint), kept apart from
        # refused and reset connections
        return api.TLS_ERROR
    return api.CONNECTION_ERROR  # ConnectionClosed, OSError, PoolClosed


class RequestEncoder:
    """Each Request's signed bytes, for one endpoint: the per-Target caches and the signer.

    `clock` gives the signing time (epoch seconds); `native=False` signs and formats every
    request in Python even when the C extension is built (tests, benchmarks).
    """

    __slots__ = (
        "_host_header",
        "_credentials",
        "_clock",
        "_signer",
        "_build",
        "_prepared",
        "_by_value",
    )

    def __init__(
        self,
        host_header: str,
        region: str,
        credentials: CredentialSource,
        *,
        clock: Callable[[], float] = time.time,
        native: bool = True,
    ) -> None:
        self._host_header = host_header
        self._credentials = credentials  # owned (started and closed) by the transport's caller
        self._clock = clock
        self._signer = SigV4Signer(region, api.SIGNING_NAME, native=native)
        self._build = self._signer.builder  # one C call per request, or None
        self._prepared: dict[int, _Cached] = {}
        self._by_value: dict[Target, PreparedTarget] = {}  # equal Targets share one entry

    def encode(self, request: Request) -> Encoded:
        """The signed request's bytes, and its body when too large to join to them."""
        target = request.target
        cached = self._prepared.get(id(target))
        build = self._build
        if build is not None and cached is not None and cached.target is target:
            # The per-request hot path: build checks that the plan is for this second and
            # these credentials, and says None for anything it leaves to _encode_python.
            built = build(
                cached.plan,
                request.custom_attributes,
                request.body,
                self._clock(),
                self._credentials.current(),
            )
            if built is not None:
                return built
        return self._encode_python(request)

    def _encode_python(self, request: Request) -> Encoded:
        """encode's every case: a new plan and build, or the bytes formatted in Python."""
        target = request.target
        # Keyed by identity: hashing a Target's eight fields per request costs more than
        # the lookup. The entry keeps its Target alive, so an id is never reused meanwhile.
        cached = self._prepared.get(id(target))
        if cached is None or cached.target is not target:
            if len(self._prepared) >= _MAX_PREPARED:
                self._prepared.clear()  # a caller making Targets per request: stay bounded
            cached = self._prepared[id(target)] = _Cached(target, self._prepare(target))
        prepared = cached.prepared
        body = request.body
        attributes = request.custom_attributes
        credentials = self._credentials.current()
        token = credentials.token
        entry = cached.with_attributes if attributes else cached.without_attributes
        if entry is None or entry.token != token:
            entry = self._template(cached, bool(attributes), token)
        template = entry.template
        now = self._clock()
        if template is not None:
            build = self._build
            if build is not None and attributes and self._replan(cached, entry, credentials, now):
                built = build(cached.plan, attributes, body, now, credentials)
                if built is not None:
                    return built
            amz_date, authorization = self._signer.sign_template(
                template, (attributes,) if attributes else (), body, credentials, now
            )
            # encode_request's bytes, in one format: the hot path when build is not there
            tail = (
                (f"{_CUSTOM_ATTRIBUTES_LINE}{attributes}\r\n" if attributes else "")
                + f"Content-Length: {len(body)}\r\nX-Amz-Date: {amz_date}\r\n{entry.token_line}Authorization: {authorization}\r\n\r\n"
            )
            if len(body) <= JOIN_LIMIT:
                data = b"".join((prepared.head, tail.encode("latin-1"), body))
                separate = None
            else:
                data = prepared.head + tail.encode("latin-1")
                separate = body
        else:  # headers a template cannot take (e.g. a repeated one): sign them in full
            signed: Sequence[tuple[str, str]] = prepared.signed
            if attributes:
                signed = (*signed, (api.H_CUSTOM_ATTRIBUTES, attributes))
            signature = self._signer.sign(
                "POST", self._host_header, prepared.path, signed, body, credentials, now
            )
            data = encode_request(prepared, attributes, body, signature)
            separate = body if len(body) > JOIN_LIMIT else None
        return data, separate

    def _template(self, cached: _Cached, attributes: bool, token: str | None) -> _Entry:
        prepared = cached.prepared
        template = self._signer.template(
            "POST",
            self._host_header,
            prepared.path,
            prepared.signed,
            (api.H_CUSTOM_ATTRIBUTES,) if attributes else (),
            token,
        )
        entry = _Entry(token, f"X-Amz-Security-Token: {token}\r\n" if token else "", template)
        if attributes:
            cached.with_attributes = entry
            cached.plan = None  # made for the old template
        else:
            cached.without_attributes = entry
        return entry

    def _replan(self, cached: _Cached, entry: _Entry, credentials: Credentials, now: float) -> bool:
        """Give `cached` a plan for this second and these credentials if its plan is for
        others; whether it got a new one (if not, build already had the right one)."""
        plan = cached.plan
        if plan is not None and plan.second == floor(now) and plan.credentials is credentials:
            return False
        cached.plan = self._plan(cached.prepared, entry, credentials, now)
        return cached.plan is not None

    def _plan(
        self, prepared: PreparedTarget, entry: _Entry, credentials: Credentials, now: float
    ) -> BuildPlan | None:
        """This second's plan, or None when the signer leaves this template to Python."""
        template = entry.template
        assert template is not None
        signing = self._signer.signing_plan(template, credentials, now)
        if signing is None:
            return None
        signature = (
            f"\r\nX-Amz-Date: {signing.amz_date}\r\n{entry.token_line}"
            f"Authorization: {signing.authorization}"
        )
        return BuildPlan(
            second=signing.second,
            credentials=credentials,
            hashes=signing.payload_hashes,
            creq_state=signing.creq_state,
            creq_head=signing.creq_head,
            creq_tail=signing.creq_tail,
            inner_state=signing.inner_state,
            sts=signing.sts_prefix,
            outer_state=signing.outer_state,
            head=prepared.head + _CUSTOM_ATTRIBUTES_LINE.encode("latin-1"),
            length=b"\r\nContent-Length: ",
            signature=signature.encode("latin-1"),
            end=b"\r\n\r\n",
            join_limit=JOIN_LIMIT,
        )

    def _prepare(self, target: Target) -> PreparedTarget:
        prepared = self._by_value.get(target)
        if prepared is None:
            if len(self._by_value) >= _MAX_PREPARED:
                self._by_value.clear()
            prepared = self._by_value[target] = prepare_target(target, self._host_header)
        return prepared
