"""The fast transport: InvokeEndpoint over our own HTTP/1.1 connections, signed with SigV4.

aiobotocore spends about 1 ms of CPU per call; this spends a few µs. The request line and
every header a target always sends are encoded once per Target; per request only the
custom attributes, Content-Length and signature headers are formatted. On the hot path
(an idle keep-alive connection is available) `invoke` awaits exactly one future.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import floor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loadgen import api
from loadgen.transport.base import (
    ClosedLoopCaller,
    Outcome,
    Request,
    Target,
    Transport,
    error_for_status,
)
from loadgen.transport.http11 import (
    ConnectionClosed,
    ConnectionState,
    HTTP11Connection,
    HTTPError,
    ProtocolViolation,
    ReadTimeout,
    Response,
    Simple,
    header_lines,
)
from loadgen.transport.pool import ConnectionPool, PoolClosed
from loadgen.transport.sigv4 import SigningTemplate, SigV4Signer

if TYPE_CHECKING:
    from loadgen.transport.credentials import CredentialSource
    from loadgen.transport.sigv4 import Credentials

USER_AGENT = "loadgen/0.1"

# The TLS handshake or certificate check failed: a configuration problem (wrong CA, a
# self-signed endpoint), kept apart from refused/reset connections.
TLS_ERROR = api.TLS_ERROR

# How long close() waits for connections to finish closing (TLS shutdown included).
_CLOSE_GRACE_S = 1.0
# Bodies up to this size are joined with the head into one write; larger ones go out
# with writelines so a 6 MiB payload is not copied.
_JOIN_LIMIT = 64 * 1024
# Targets are built once per run; this only bounds a caller that builds them per request.
_MAX_PREPARED = 1024
_CUSTOM_ATTRIBUTES_LINE = f"{api.H_CUSTOM_ATTRIBUTES}: "
_CLOSED_STATE = ConnectionState.CLOSED


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


# (session token, its header line or "", signing template or None if it cannot have one)
_Entry = tuple[str | None, str, SigningTemplate | None]
# `_sigv4c.build`'s plan: see FastTransport._plan for its fields
_Plan = tuple[Any, ...]


class _Cached:
    """A Target's PreparedTarget and its signing templates, with and without the custom
    attributes header, each as (session token, template or None if it cannot have one);
    rebuilt when the token changes. `plan` is the current second's plan for requests with
    custom attributes, when the C builder signs them."""

    __slots__ = ("target", "prepared", "with_attributes", "without_attributes", "plan")

    def __init__(self, target: Target, prepared: PreparedTarget) -> None:
        self.target = target  # keeps it alive, so its id is not reused while cached
        self.prepared = prepared
        self.with_attributes: _Entry | None = None
        self.without_attributes: _Entry | None = None
        self.plan: _Plan | None = None


def prepare_target(target: Target, host_header: str) -> PreparedTarget:
    """Build the request line and the headers a target always sends."""
    path = api.invocation_path(target.endpoint_name)
    signed: list[tuple[str, str]] = [("Content-Type", target.content_type)]
    if target.accept:
        signed.append(("Accept", target.accept))
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

    Bodies larger than _JOIN_LIMIT are left out; the caller writes them separately.
    """
    tail = f"{api.H_CUSTOM_ATTRIBUTES}: {custom_attributes}\r\n" if custom_attributes else ""
    tail += f"Content-Length: {len(body)}\r\n"
    for name, value in signature:
        tail += f"{name}: {value}\r\n"
    tail += "\r\n"
    if len(body) <= _JOIN_LIMIT:
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
        return TLS_ERROR
    return api.CONNECTION_ERROR  # ConnectionClosed, OSError, PoolClosed


_STOPPED: Any = object()  # a lane's result: the caller took no more requests


class _Lane:
    """One closed-loop caller on one connection: each response's callback records it, and
    the next request goes out with the others of the same loop turn (`_SendBatch`).
    `run` ends when the caller stops (_STOPPED), when the connection is gone (None), or
    with a request to resend on a fresh connection."""

    __slots__ = ("transport", "caller", "conn", "future", "pending", "batch")

    def __init__(self, transport: FastTransport, caller: ClosedLoopCaller, conn: HTTP11Connection):
        self.transport = transport
        self.caller = caller
        self.batch = transport._batch
        self.conn: HTTP11Connection | None = conn  # None once given back to the pool
        self.future: asyncio.Future[Any] = conn.loop.create_future()
        self.pending: tuple[bytes, bytes | None] | None = None  # sent, not yet ended

    def run(self) -> asyncio.Future[Any]:
        self._next()
        return self.future

    def _next(self) -> None:
        """Send the caller's next request, or end the lane."""
        caller = self.caller
        conn = self.conn
        assert conn is not None, "the lane has ended"
        while True:
            request = caller.take()
            if request is None:
                self._end(_STOPPED)
                return
            try:
                self.pending = pending = self.transport._encode(request)
                conn.send(self, pending[0], self.transport._read_timeout, pending[1])
                return
            except ConnectionClosed:  # closed before it was sent: a fresh one sends it
                self._end(pending)
                return
            except Exception as exc:  # a bug in encoding: counted, and on to the next
                caller.failed(exc)

    def ok(self, simple: Simple) -> None:
        """The usual response: recorded, and this lane queued to send its next request."""
        try:
            self.pending = None
            self.caller.ok(simple[0], simple[2], simple[1])
            batch = self.batch  # _SendBatch.add, inlined: this runs once per request
            lanes = batch.lanes
            lanes.append(self)
            if len(lanes) == 1:
                batch.loop.call_soon(batch.send)
        except BaseException as exc:  # noqa: BLE001 - surfaces in the awaiting caller
            self._end(exc)

    def response(self, conn: HTTP11Connection) -> None:
        try:
            status = conn.status
            self.pending = None
            if 200 <= status < 300:
                self.caller.ok(status, conn.variant, conn.echoed)
            else:
                self.caller.done(outcome_of(conn.response()))
            if conn.state is _CLOSED_STATE:  # the server ended keep-alive
                self._end(None)
            else:
                self.batch.add(self)
        except BaseException as exc:  # noqa: BLE001 - surfaces in the awaiting caller
            self._end(exc)

    def failed(self, conn: HTTP11Connection, exc: HTTPError) -> None:
        try:
            if isinstance(exc, ConnectionClosed) and exc.retryable:
                self._end(self.pending)
                return
            self.pending = None
            self.caller.done(Outcome(error=error_of(exc)))
            self._end(None)
        except BaseException as error:  # noqa: BLE001
            self._end(error)

    def _end(self, result: Any) -> None:
        self._release()
        future = self.future
        if not future.done():
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def abandon(self) -> None:
        """The caller was cancelled: a request may be in flight, so the connection goes."""
        conn = self.conn
        if conn is not None and conn.in_flight:
            conn.abort()
        self._release()

    def _release(self) -> None:
        """Give the connection back once, whichever of `_end` and `abandon` comes first
        (a response can end the lane after its caller was cancelled, before it resumed)."""
        conn = self.conn
        if conn is not None:
            self.conn = None
            conn.listener = None
            self.transport._pool.release(conn)  # IDLE again, or only bookkeeping if CLOSED


class _SendBatch:
    """Lanes whose response arrived in this loop turn send their next requests together,
    in one callback after the turn's I/O callbacks.

    Writes back to back keep the server busy: one wake-up of the server for the batch, not
    one per request, and the parsing and the signing each run with their code warm. In a
    bare uvloop client against nginx on 2 cores, batching raised the rate by 15-20%.
    """

    __slots__ = ("loop", "lanes")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lanes: list[_Lane] = []

    def add(self, lane: _Lane) -> None:
        lanes = self.lanes
        lanes.append(lane)
        if len(lanes) == 1:
            self.loop.call_soon(self.send)

    def send(self) -> None:
        lanes = self.lanes
        self.lanes = []
        for lane in lanes:
            if lane.future.done():
                continue  # abandoned while it waited
            try:
                lane._next()
            except BaseException as exc:  # noqa: BLE001 - surfaces in the awaiting caller
                lane._end(exc)


class FastTransport(Transport):
    """InvokeEndpoint over a keep-alive pool of hand-written HTTP/1.1 connections."""

    name = "fast"

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        credentials: CredentialSource,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
        verify: bool = True,
        ca_file: str | None = None,
        clock: Callable[[], float] = time.time,
        native: bool = True,
    ) -> None:
        """`clock` gives the signing time (epoch seconds); `native=False` signs and formats
        every request in Python even when the C extension is built (tests, benchmarks)."""
        self._origin = Origin.parse(endpoint_url)
        self._credentials = credentials  # owned (started and closed) by the caller
        self._clock = clock
        self._signer = SigV4Signer(region, api.SIGNING_NAME, native=native)
        self._build = self._signer.builder  # one C call per request, or None
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._verify = verify
        self._ca_file = ca_file
        self._pool: ConnectionPool[HTTP11Connection] = ConnectionPool(max_connections)
        self._host_header = self._origin.host_header
        self._prepared: dict[int, _Cached] = {}
        self._by_value: dict[Target, PreparedTarget] = {}  # equal Targets share one entry
        self._ssl: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch: _SendBatch

    def __repr__(self) -> str:
        origin = self._origin
        return f"<FastTransport {origin.scheme}://{origin.host_header} {self._pool!r}>"

    @property
    def pool(self) -> ConnectionPool[HTTP11Connection]:
        return self._pool

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._batch = _SendBatch(self._loop)
        if self._origin.scheme == "https":
            context = ssl.create_default_context(cafile=self._ca_file)
            if not self._verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl = context

    async def invoke(self, request: Request) -> Outcome:
        data, separate = self._encode(request)
        return await self._exchange(data, separate)

    def _encode(self, request: Request) -> tuple[bytes, bytes | None]:
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

    def _encode_python(self, request: Request) -> tuple[bytes, bytes | None]:
        """_encode's every case: a new plan and build, or the bytes formatted in Python."""
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
        if entry is None or entry[0] != token:
            entry = self._template(cached, bool(attributes), token)
        template = entry[2]
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
                f"{_CUSTOM_ATTRIBUTES_LINE}{attributes}\r\n" if attributes else ""
            ) + f"Content-Length: {len(body)}\r\nX-Amz-Date: {amz_date}\r\n{entry[1]}Authorization: {authorization}\r\n\r\n"
            if len(body) <= _JOIN_LIMIT:
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
            separate = body if len(body) > _JOIN_LIMIT else None
        return data, separate

    async def _exchange(self, data: bytes, separate: bytes | None, fresh: bool = False) -> Outcome:
        """Send on an idle connection (or a new one) and wait for the response. A reused
        connection the server had already closed is retried once on a fresh one."""
        pool = self._pool
        while True:
            conn = None if fresh else pool.checkout()
            try:
                if conn is None:
                    conn = await self._acquire()
                response = await conn.request(data, self._read_timeout, separate)
            except ConnectionClosed as exc:
                if conn is not None:
                    pool.release(conn)
                    if exc.retryable and not fresh:
                        fresh = True
                        continue
                return Outcome(error=api.CONNECTION_ERROR)
            except (HTTPError, OSError, PoolClosed, TimeoutError) as exc:
                if conn is not None:
                    pool.release(conn)  # already CLOSED: only bookkeeping
                return Outcome(error=error_of(exc))
            except asyncio.CancelledError:
                if conn is not None:
                    conn.abort()  # a request may be in flight: never reuse it
                    pool.release(conn)
                raise
            pool.release(conn)
            return outcome_of(response)

    async def run_closed_loop(self, caller: ClosedLoopCaller) -> None:
        """Requests back to back, each sent from the callback that ended the last one, on
        one connection while it lasts; a new connection is got the general way."""
        pool = self._pool
        while True:
            conn = pool.checkout()
            if conn is None:  # none idle: one request opens (or waits for) a connection
                request = caller.take()
                if request is None:
                    return
                await self.invoke_for(caller, request)
                continue
            lane = _Lane(self, caller, conn)
            try:
                retry = await lane.run()
            except asyncio.CancelledError:
                lane.abandon()
                raise
            if retry is _STOPPED:
                return
            if retry is not None:  # a kept-alive connection closed under it: resend once
                try:
                    outcome = await self._exchange(*retry, fresh=True)
                except Exception as exc:
                    caller.failed(exc)
                else:
                    caller.done(outcome)

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
        entry = (token, f"X-Amz-Security-Token: {token}\r\n" if token else "", template)
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
        if plan is not None and plan[0] == floor(now) and plan[1] is credentials:
            return False
        cached.plan = self._plan(cached.prepared, entry, credentials, now)
        return cached.plan is not None

    def _plan(
        self, prepared: PreparedTarget, entry: _Entry, credentials: Credentials, now: float
    ) -> _Plan | None:
        """`_sigv4c.build`'s plan: the bytes of what _encode_python formats, cut where
        the custom attributes value, Content-Length and signature go, plus what signs it."""
        template = entry[2]
        assert template is not None
        signing = self._signer.signing_plan(template, credentials, now)
        if signing is None:
            return None
        signature = (
            f"\r\nX-Amz-Date: {signing.amz_date}\r\n{entry[1]}"
            f"Authorization: {signing.authorization}"
        )
        return (  # the fields of _sigv4c.c's PLAN_* enum, in its order
            signing.second,
            credentials,  # compared by identity: refreshed credentials are a new object
            signing.payload_hashes,
            signing.creq_state,
            signing.creq_head,
            signing.creq_tail,
            signing.inner_state,
            signing.sts_prefix,
            signing.outer_state,
            prepared.head + _CUSTOM_ATTRIBUTES_LINE.encode("latin-1"),
            b"\r\nContent-Length: ",
            signature.encode("latin-1"),
            b"\r\n\r\n",
            _JOIN_LIMIT,
        )

    def _prepare(self, target: Target) -> PreparedTarget:
        prepared = self._by_value.get(target)
        if prepared is None:
            if len(self._by_value) >= _MAX_PREPARED:
                self._by_value.clear()
            prepared = self._by_value[target] = prepare_target(target, self._host_header)
        return prepared

    async def _acquire(self) -> HTTP11Connection:
        """A connection for one request: handed over by a releaser, or newly opened."""
        pool = self._pool
        if not pool.reserve():
            waiter: asyncio.Future[HTTP11Connection | None] = self._loop.create_future()  # type: ignore[union-attr]
            pool.enqueue(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    granted = waiter.result()  # granted just before we were cancelled
                    if granted is None:
                        pool.unreserve()
                    else:
                        pool.release(granted)
                raise
            if conn is not None:
                return conn
        return await self._open()

    async def _open(self) -> HTTP11Connection:
        """Connect in a slot already reserved; the slot is freed if connecting fails."""
        loop = self._loop
        assert loop is not None, "FastTransport.start() was not called"
        pool = self._pool
        conn = HTTP11Connection(loop, pool.closed)
        pool.add(conn)
        origin = self._origin
        try:
            async with asyncio.timeout(self._connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=self._ssl,
                    server_hostname=origin.host if self._ssl is not None else None,
                )
        except BaseException:
            conn.abort()  # CLOSED: the pool frees the slot
            raise
        return conn

    async def close(self) -> None:
        connections, waiters = self._pool.close()
        for waiter in waiters:
            waiter.set_exception(PoolClosed("the transport was closed"))
        for conn in connections:
            conn.close()
        # Wait for the transports to report connection_lost, so no socket outlives us.
        deadline = time.monotonic() + _CLOSE_GRACE_S
        while any(c.transport is not None and not c.lost for c in connections):
            if time.monotonic() > deadline:
                for conn in connections:
                    if conn.transport is not None:
                        conn.transport.abort()
                break
            await asyncio.sleep(0.005)
