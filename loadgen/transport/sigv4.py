"""SigV4 request signing for InvokeEndpoint, byte-identical to botocore's SigV4Auth and over 10x cheaper.

botocore re-derives the signing key, re-hashes the body and re-parses the URL for every
request (about 100 µs). A load test signs the same few bodies for the same path with the
same secret all day, so everything except the per-request headers is cached here.

The rules below mirror botocore/auth.py (SigV4Auth) for a non-S3 service: headers in
SIGNED_HEADERS_BLACKLIST are not signed, values are trimmed and their inner whitespace
collapsed (`" ".join(value.split())`), repeated headers are joined with ",", the path is
dot-segment-normalised and quoted with safe="/~", the payload is always SHA-256 hashed
(no X-Amz-Content-SHA256 header is added), and the X-Amz-Date and X-Amz-Security-Token
headers are themselves signed.

The two hashes of every signature (SHA-256 of the canonical request, HMAC-SHA256 of the string
to sign) go through the C extension `_sigv4c` when it was built: hashlib's per-call OpenSSL
set-up cost more than the hashing itself. Without it, or with LOADGEN_PURE_SIGV4=1 in the
environment at import, hashlib does them; the results are the same bytes. With it, a caller
can also take a per-second `signing_plan` and sign each request in one C call (`builder`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import floor
from operator import itemgetter
from types import ModuleType
from typing import Any
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# botocore.auth.SIGNED_HEADERS_BLACKLIST: hop-by-hop or rewritten-by-proxies headers.
UNSIGNED_HEADERS = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)
# Headers the signer sets itself; passing them in is a caller bug.
_RESERVED_HEADERS = frozenset(
    {"host", "x-amz-date", "x-amz-security-token", "authorization", "date"}
)

# A dataset's lines are each hashed once (and the C builder finds them) up to this many.
_MAX_BODY_CACHE_ENTRIES = 65_536
_MAX_BODY_CACHE_BYTES = 64 * 1024 * 1024
_MAX_PATH_CACHE_ENTRIES = 256
_MAX_KEY_CACHE_ENTRIES = 16
_MAX_NAME_CACHE_ENTRIES = 256
_MAX_LAYOUT_CACHE_ENTRIES = 256

_by_name = itemgetter(0)


def _load_extension() -> ModuleType | None:
    """The C hashing module, or None: not built, or LOADGEN_PURE_SIGV4=1 forces hashlib."""
    if os.environ.get("LOADGEN_PURE_SIGV4") == "1":
        return None
    try:
        from loadgen.transport import _sigv4c
    except ImportError:
        return None
    return _sigv4c


_C = _load_extension()


def _hashlib_key_states(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 inner and outer hash states of a signing key: HMAC is then two copies."""
    block = key.ljust(64, b"\0")  # SHA-256 block size; the key is 32 bytes
    return (
        hashlib.sha256(bytes(byte ^ 0x36 for byte in block)),
        hashlib.sha256(bytes(byte ^ 0x5C for byte in block)),
    )


def _hashlib_sign(states: tuple[Any, Any], prefix: str, creq: str) -> str:
    """Hex HMAC-SHA256(key, prefix + hex SHA-256(creq)), as `_sigv4c.sign` computes it."""
    inner = states[0].copy()
    inner.update(f"{prefix}{hashlib.sha256(creq.encode()).hexdigest()}".encode())
    outer = states[1].copy()
    outer.update(inner.digest())
    return outer.hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    """One frozen set of AWS credentials; its repr shows the access key id only."""

    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r})"


@dataclass(frozen=True, slots=True)
class SigningTemplate:
    """The canonical request of one (method, host, path, static headers, token) with holes
    for X-Amz-Date, the per-request header values and the payload hash, in that order.

    Built by `SigV4Signer.template`; `SigV4Signer.sign_template` fills it in per request.
    """

    method: str
    host: str
    path: str
    headers: tuple[tuple[str, str], ...]  # the static headers, as passed
    dynamic: tuple[str, ...]  # names of the per-request headers, as passed
    token: str | None
    # the canonical request cut at its holes: parts[0] + amz-date + parts[1] + first dynamic
    # value + ... + parts[-1] + payload hash (joined, not %-formatted: % scans every character)
    parts: tuple[str, ...]
    signed: str  # the SignedHeaders value


@dataclass(frozen=True, slots=True)
class SigningPlan:
    """What `sign_template` works out once per second for one template and credentials, for
    a caller that finishes each signature in C (`_sigv4c.build`, via `SigV4Signer.builder`).

    The canonical request is creq_head + the trimmed header value + creq_tail + payload hash,
    the signature HMAC(signing key, sts_prefix + the canonical request's hex SHA-256). Both
    hashes start from `_sigv4c.midstate`s of their constant leading whole blocks.
    """

    second: int  # the whole epoch second amz_date is for
    amz_date: str
    creq_state: bytes  # SHA-256 state after creq_head's whole blocks
    creq_head: bytes  # UTF-8, as `sign` hashes it
    creq_tail: bytes
    inner_state: bytes  # HMAC inner state after the key block and sts_prefix's whole blocks
    sts_prefix: bytes
    outer_state: bytes  # HMAC outer state after the key block
    authorization: str  # the Authorization value up to the signature's hex digits
    payload_hashes: dict[bytes, str]  # the signer's own cache, read (not written) by build


def _trim(value: str) -> str:
    """botocore's SigV4Auth._header_value: strip, and collapse whitespace runs to one space."""
    return " ".join(value.split())


def _remove_dot_segments(path: str) -> str:
    """botocore.utils.remove_dot_segments: RFC 3986 5.2.4, plus empty segments dropped."""
    if not path:
        return ""
    output: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if output:
                    output.pop()
            else:
                output.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and output else ""
    return first + "/".join(output) + last


def canonical_uri_and_query(path: str) -> tuple[str, str]:
    """The canonical URI and query string of a raw request target, as botocore derives them."""
    path = path.partition("#")[0]
    path, _, query = path.partition("?")
    uri = quote(_remove_dot_segments(path) if path else "/", safe="/~")
    if not query:
        return uri, ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return uri, "&".join(f"{key}={value}" for key, value in pairs)


def _canonical_headers(headers: list[tuple[str, str]]) -> tuple[str, str]:
    """(canonical header block, SignedHeaders) of lowercased, trimmed (name, value) pairs.

    Sorted by name only (stable), so repeated headers keep their order when joined with ",".
    """
    headers.sort(key=_by_name)
    names = [name for name, _ in headers]
    if len(set(names)) != len(names):
        merged: dict[str, list[str]] = {}
        for name, value in headers:
            merged.setdefault(name, []).append(value)
        headers = [(name, ",".join(values)) for name, values in merged.items()]
        names = list(merged)
    block = "".join([f"{name}:{value}\n" for name, value in headers])
    return block, ";".join(names)


def canonical_request(
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]],
    payload_hash: str,
) -> str:
    """The SigV4 canonical request text for debugging and tests.

    `headers` is every header to sign, including Host and X-Amz-Date (names in any case,
    values as sent); unsigned ones (User-Agent, ...) are dropped as botocore drops them.
    """
    uri, query = canonical_uri_and_query(path)
    pairs = [(name.lower(), _trim(value)) for name, value in headers]
    block, signed = _canonical_headers([p for p in pairs if p[0] not in UNSIGNED_HEADERS])
    return f"{method.upper()}\n{uri}\n{query}\n{block}\n{signed}\n{payload_hash}"


class SigV4Signer:
    """Signs requests for one (region, service); caches keys, body hashes, paths and dates.

    One signer per event loop: the caches are plain dicts, mutated without locks.
    `native=False` signs with hashlib even when the C extension is there (benchmarks, tests);
    `implementation` says which is in use: "c/sha-ni", "c/portable" or "hashlib".
    """

    __slots__ = (
        "_region",
        "_service",
        "_scope_tail",
        "_key_states",
        "_hmac",
        "implementation",
        "builder",
        "_keys",
        "_bodies",
        "_body_bytes",
        "_paths",
        "_names",
        "_trimmed",
        "_layouts",
        "_date",
        "_recent",
    )

    def __init__(self, region: str, service: str = "sagemaker", *, native: bool = True) -> None:
        self._region = region
        self._service = service
        self._scope_tail = f"/{region}/{service}/aws4_request"
        # signing key -> its HMAC states; (states, prefix, canonical request) -> hex signature
        self._key_states: Callable[[bytes], Any]
        self._hmac: Callable[[Any, str, str], str]
        # `_sigv4c.build` for callers that sign from a `signing_plan`, or None: sign in Python
        self.builder: Callable[..., tuple[bytes, bytes | None] | None] | None = None
        if native and _C is not None:
            self._key_states, self._hmac = _C.hmac_key, _C.sign
            self.implementation = f"c/{_C.implementation()}"
            self.builder = getattr(_C, "build", None)  # None from a stale build of the module
        else:
            self._key_states, self._hmac = _hashlib_key_states, _hashlib_sign
            self.implementation = "hashlib"
        # (secret, yyyymmdd) -> HMAC states of the signing key; newest two dates only.
        self._keys: dict[tuple[str, str], Any] = {}
        # body -> hex SHA-256; bounded by entries and total bytes, oldest evicted first.
        self._bodies: dict[bytes, str] = {}
        self._body_bytes = 0
        # raw path -> (canonical URI, canonical query)
        self._paths: dict[str, tuple[str, str]] = {}
        # header name as passed -> lowercase name, or "" when botocore does not sign it
        self._names: dict[str, str] = {}
        # host and session token as sent -> trimmed value
        self._trimmed: dict[str, str] = {}
        # lowercase names in arrival order -> (sorted names, SignedHeaders)
        self._layouts: dict[tuple[str, ...], tuple[list[str], str]] = {}
        # whole epoch second -> (amz-date, "yyyymmdd", credential scope, string-to-sign prefix)
        self._date: tuple[int, str, str, str, str] = (-1, "", "", "", "")
        # sign_template's per-second state: (second, secret, access key, amz-date,
        # string-to-sign prefix, Authorization prefix, HMAC states of the signing key)
        self._recent: tuple[Any, ...] = (-1, "", "", "", "", "", None)

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self._region!r}, service={self._service!r})"

    # -- caches ------------------------------------------------------------------------

    def _date_parts(self, timestamp: float) -> tuple[int, str, str, str, str]:
        second = floor(timestamp)
        cached = self._date
        if cached[0] == second:
            return cached
        tm = time.gmtime(second)
        datestamp = f"{tm.tm_year:04d}{tm.tm_mon:02d}{tm.tm_mday:02d}"
        amz_date = f"{datestamp}T{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}Z"
        scope = datestamp + self._scope_tail
        self._date = (second, amz_date, datestamp, scope, f"{ALGORITHM}\n{amz_date}\n{scope}\n")
        return self._date

    def _signing_key(self, secret: str, datestamp: str) -> Any:
        """HMAC states (inner and outer midstates) of the day's signing key, for `self._hmac`."""
        states = self._keys.get((secret, datestamp))
        if states is not None:
            return states
        key = hmac.digest(("AWS4" + secret).encode(), datestamp.encode(), "sha256")
        for part in (self._region, self._service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        states = self._key_states(key)
        keys = self._keys
        keys[(secret, datestamp)] = states
        dates = sorted({date for _, date in keys})
        if len(dates) > 2:
            for entry in [entry for entry in keys if entry[1] < dates[-2]]:
                del keys[entry]
        while len(keys) > _MAX_KEY_CACHE_ENTRIES:
            del keys[next(iter(keys))]
        return states

    def _payload_hash(self, body: bytes) -> str:
        if not body:
            return EMPTY_SHA256
        if type(body) is not bytes:  # unhashable (bytearray, memoryview): no cache
            return hashlib.sha256(body).hexdigest()
        bodies = self._bodies
        digest = bodies.get(body)
        if digest is not None:
            return digest
        digest = hashlib.sha256(body).hexdigest()
        size = len(body)
        if size <= _MAX_BODY_CACHE_BYTES:
            while bodies and (
                len(bodies) >= _MAX_BODY_CACHE_ENTRIES
                or self._body_bytes + size > _MAX_BODY_CACHE_BYTES
            ):
                oldest = next(iter(bodies))
                del bodies[oldest]
                self._body_bytes -= len(oldest)
            bodies[body] = digest
            self._body_bytes += size
        return digest

    def _uri_and_query(self, path: str) -> tuple[str, str]:
        cached = self._paths.get(path)
        if cached is None:
            cached = canonical_uri_and_query(path)
            if len(self._paths) >= _MAX_PATH_CACHE_ENTRIES:
                del self._paths[next(iter(self._paths))]
            self._paths[path] = cached
        return cached

    def _lower(self, name: str) -> str:
        """The header's canonical name, or "" if botocore would not sign it."""
        lname = name.lower()
        if lname in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the signer, not the caller")
        if lname in UNSIGNED_HEADERS:
            lname = ""
        if len(self._names) >= _MAX_NAME_CACHE_ENTRIES:
            self._names.clear()
        self._names[name] = lname
        return lname

    def _trim_once(self, value: str) -> str:
        if len(self._trimmed) >= _MAX_NAME_CACHE_ENTRIES:
            self._trimmed.clear()
        result = self._trimmed[value] = " ".join(value.split())
        return result

    def _layout(self, names: tuple[str, ...]) -> tuple[list[str], str]:
        """Sorted names and the SignedHeaders value for this set of headers."""
        ordered = sorted(names)
        layout = (ordered, ";".join(ordered))
        if len(self._layouts) >= _MAX_LAYOUT_CACHE_ENTRIES:
            self._layouts.clear()
        self._layouts[names] = layout
        return layout

    # -- signing -----------------------------------------------------------------------

    def _canonical(
        self,
        method: str,
        host: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        token: str | None,
        amz_date: str,
    ) -> tuple[str, str]:
        """(canonical request, SignedHeaders) exactly as botocore's SigV4Auth builds them."""
        trimmed = self._trimmed  # host and token repeat on every request: trim them once
        host_value = trimmed.get(host)
        if host_value is None:
            host_value = self._trim_once(host)
        values = {"host": host_value, "x-amz-date": amz_date}
        if token:
            token_value = trimmed.get(token)
            values["x-amz-security-token"] = (
                token_value if token_value is not None else self._trim_once(token)
            )
        names = self._names
        payload_hash: str | None = None
        for name, value in headers:
            lname = names.get(name)
            if lname is None:
                lname = self._lower(name)
            if not lname:
                continue
            if lname in values:  # a repeated header: botocore joins the values with ","
                values[lname] += "," + " ".join(value.split())
            else:
                values[lname] = " ".join(value.split())
            if lname == "x-amz-content-sha256":
                payload_hash = value  # botocore signs this header's value as the payload hash
        if payload_hash is None:
            payload_hash = self._payload_hash(body)
        uri, query = self._uri_and_query(path)
        key = tuple(values)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layout(key)
        ordered, signed = layout
        block = "".join([f"{name}:{values[name]}\n" for name in ordered])
        return f"{method.upper()}\n{uri}\n{query}\n{block}\n{signed}\n{payload_hash}", signed

    def template(
        self,
        method: str,
        host: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        dynamic: Sequence[str],
        token: str | None,
    ) -> SigningTemplate | None:
        """A SigningTemplate for requests that differ only in the `dynamic` headers' values,
        the date and the body; None when they cannot share one (a dynamic header repeats
        another or is not signed, or X-Amz-Content-SHA256 is among them): use `sign`."""
        marks = [f"\x00{index}\x00" for index in range(len(dynamic) + 1)]
        lowered = [self._names.get(name) or self._lower(name) for name in dynamic]
        static_names = {self._names.get(name) or self._lower(name) for name, _ in headers}
        if (
            len(set(lowered)) != len(lowered)
            or "" in lowered
            or static_names & (set(lowered) | {"x-amz-content-sha256"})
        ):
            return None
        pairs = [*headers, *zip(dynamic, marks[1:], strict=True)]
        for mark in marks:
            if any(mark in text for text in (host, path, token or "", *(v for _, v in headers))):
                return None  # a value that looks like our placeholder: do it the slow way
        text, signed = self._canonical(method, host, path, pairs, b"", token, marks[0])
        text = text[: -len(EMPTY_SHA256)]
        order = []
        for index, mark in enumerate(marks):
            if text.count(mark) != 1:
                return None
            order.append((text.index(mark), index))
        if [index for _, index in sorted(order)] != list(range(len(marks))):
            return None  # holes out of the arguments' order (not for InvokeEndpoint's names)
        parts = []
        for mark in marks:
            part, _, text = text.partition(mark)
            parts.append(part)
        parts.append(text)
        return SigningTemplate(
            method, host, path, tuple(headers), tuple(dynamic), token, tuple(parts), signed
        )

    def sign_template(
        self,
        template: SigningTemplate,
        values: Sequence[str],
        body: bytes,
        credentials: Credentials,
        timestamp: float,
    ) -> tuple[str, str]:
        """(X-Amz-Date, Authorization) for one request: exactly what `sign` gives for the
        template's headers plus the dynamic ones with these `values`."""
        recent = self._recent
        if (
            recent[0] != floor(timestamp)  # as int(timestamp // 1), at a quarter of the cost
            or recent[1] != credentials.secret_key
            or recent[2] != credentials.access_key
        ):
            recent = self._recent_state(timestamp, credentials)
        _, _, _, amz_date, sts_prefix, authorization, key_states = recent
        if credentials.token != template.token:  # refreshed credentials: the slow way
            headers = self.sign(
                template.method,
                template.host,
                template.path,
                (*template.headers, *zip(template.dynamic, values, strict=True)),
                body,
                credentials,
                timestamp,
            )
            return headers[0][1], headers[-1][1]  # X-Amz-Date, Authorization
        payload_hash = self._bodies.get(body) if type(body) is bytes else None
        if payload_hash is None:
            payload_hash = self._payload_hash(body)
        if len(values) == 1:
            before, between, after = template.parts
            value = " ".join(values[0].split())
            creq = f"{before}{amz_date}{between}{value}{after}{payload_hash}"
        else:
            trimmed = [" ".join(value.split()) for value in values]
            fills = (amz_date, *trimmed, payload_hash)
            pairs = zip(template.parts, fills, strict=True)
            creq = "".join([text for pair in pairs for text in pair])
        signature = self._hmac(key_states, sts_prefix, creq)
        return amz_date, f"{authorization}{template.signed}, Signature={signature}"

    def signing_plan(
        self, template: SigningTemplate, credentials: Credentials, timestamp: float
    ) -> SigningPlan | None:
        """The second's SigningPlan for a template with one dynamic header; None without
        `builder`, for other templates, or when the credentials' token is not the template's."""
        if (
            self.builder is None
            or _C is None  # never, with a builder
            or len(template.dynamic) != 1
            or credentials.token != template.token
        ):
            return None
        recent = self._recent
        if (
            recent[0] != floor(timestamp)
            or recent[1] != credentials.secret_key
            or recent[2] != credentials.access_key
        ):
            recent = self._recent_state(timestamp, credentials)
        second, _, _, amz_date, sts_prefix, authorization, key_states = recent
        before, between, after = template.parts
        creq_head = f"{before}{amz_date}{between}".encode()
        sts = sts_prefix.encode()
        midstate = _C.midstate
        return SigningPlan(
            second,
            amz_date,
            midstate(b"", creq_head),
            creq_head,
            after.encode(),
            midstate(key_states[:32], sts),
            sts,
            key_states[32:],
            f"{authorization}{template.signed}, Signature=",
            self._bodies,
        )

    def _recent_state(self, timestamp: float, credentials: Credentials) -> tuple[Any, ...]:
        second, amz_date, datestamp, scope, sts_prefix = self._date_parts(timestamp)
        key_states = self._signing_key(credentials.secret_key, datestamp)
        authorization = f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders="
        self._recent = (
            second,
            credentials.secret_key,
            credentials.access_key,
            amz_date,
            sts_prefix,
            authorization,
            key_states,
        )
        return self._recent

    def canonical_request(
        self,
        method: str,
        host: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        credentials: Credentials,
        timestamp: float,
    ) -> str:
        """The canonical request `sign` would hash for these arguments (for debugging)."""
        amz_date = self._date_parts(timestamp)[1]
        return self._canonical(method, host, path, headers, body, credentials.token, amz_date)[0]

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        credentials: Credentials,
        timestamp: float,
    ) -> list[tuple[str, str]]:
        """Headers to add: X-Amz-Date, X-Amz-Security-Token (only with a token), Authorization.

        `headers`: every header the request will carry that is to be signed, except Host,
        X-Amz-Date and X-Amz-Security-Token (names in any case, values as sent).
        `host` is the Host header value as sent (with the port if non-default).
        `path` is the raw request path, e.g. /endpoints/my-ep/invocations.
        `timestamp` is epoch seconds (time.time()).
        """
        _, amz_date, datestamp, scope, sts_prefix = self._date_parts(timestamp)
        token = credentials.token
        creq, signed = self._canonical(method, host, path, headers, body, token, amz_date)
        key_states = self._signing_key(credentials.secret_key, datestamp)
        signature = self._hmac(key_states, sts_prefix, creq)
        authorization = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        if token:
            return [
                ("X-Amz-Date", amz_date),
                ("X-Amz-Security-Token", token),
                ("Authorization", authorization),
            ]
        return [("X-Amz-Date", amz_date), ("Authorization", authorization)]
