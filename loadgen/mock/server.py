"""The mock endpoint: an aiohttp.web emulator of SageMaker runtime's InvokeEndpoint.

It answers like the service does (status codes, `x-amzn-ErrorType`, JSON error bodies
that botocore parses, the invoked-variant and custom-attributes headers), so both our
transports can be run and compared against it without an AWS account. In container
mode it plays the model container instead (`GET /ping`, `POST /invocations`).

Everything a request needs is worked out once per endpoint when the app is built; the
per-request path only draws random numbers, sleeps and echoes, so one core sustains
thousands of requests a second.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import random
import signal
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import uvloop
from aiohttp import web

from loadgen import api
from loadgen.errors import CannotRunError
from loadgen.finetimer import FineSleeper
from loadgen.mock.capacity import Copies
from loadgen.mock.config import LatencySpec, MockConfig, MockEndpoint, MockVariant
from loadgen.mock.streaming import Streamer
from loadgen.mock.verify import SignatureVerifier

PLACEHOLDER = "{custom_attributes}"
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"
ACCOUNT_ID = "123456789012"
CONTAINER_STATS_KEY = ("container", "")
# How long closing waits for requests still in flight (e.g. sleeping out their latency).
SHUTDOWN_GRACE_S = 2.0
DEFAULT_VARIANTS = MockConfig.model_fields["variants"].default


@dataclass
class MockStats:
    """Counters for tests and the CLI; flat memory whatever the run's length.

    `requests` counts requests routed to a variant, keyed (endpoint, variant), injected
    errors included; container-mode requests count under ("container", "").
    """

    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    injected_errors: dict[str, int] = field(default_factory=dict)
    signature_failures: int = 0
    validation_errors: int = 0
    streams: int = 0  # InvokeEndpointWithResponseStream calls answered with a stream
    stream_tokens: int = 0
    stream_errors: int = 0  # ModelStreamErrors sent mid-stream

    def total_requests(self) -> int:
        return sum(self.requests.values())


STATS_KEY = web.AppKey("loadgen_mock_stats", MockStats)


# --- what each endpoint and variant does, worked out once ---------------------------


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Latency and injected errors of one variant (or of an endpoint, for ad-hoc variants)."""

    # Log-normal parameters of the delay in ms; None when the median is 0 (no delay).
    mu: float | None
    sigma: float
    # (code, cumulative probability), drawn against one uniform number per request.
    errors: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    variant_names: tuple[str, ...]
    variant_behaviours: tuple[Behaviour, ...]
    cumulative_weights: tuple[float, ...]
    by_name: dict[str, Behaviour]
    # Whether the variants were configured: only then is an unknown target variant an error.
    variants_configured: bool
    endpoint_behaviour: Behaviour
    echo: str


def behaviour_of(latency: LatencySpec, errors: dict[str, float]) -> Behaviour:
    mu, sigma = latency.lognormal()
    cumulative: list[tuple[str, float]] = []
    total = 0.0
    for code, probability in errors.items():
        if probability > 0:
            total += probability
            cumulative.append((code, total))
    return Behaviour(mu=mu, sigma=sigma, errors=tuple(cumulative))


def plan_endpoint(config: MockConfig, override: MockEndpoint | None) -> EndpointPlan:
    """The effective settings of one endpoint: its override, if any, over the defaults."""
    override = override or MockEndpoint()
    latency = override.latency_ms or config.latency_ms
    errors: dict[str, float] = (
        dict(override.errors.items()) if override.errors is not None else config.injected_errors()
    )
    variants: list[MockVariant] = (
        override.variants if override.variants is not None else config.variants
    )
    behaviours = tuple(
        behaviour_of(
            variant.latency_ms or latency,
            dict(variant.errors.items()) if variant.errors is not None else errors,
        )
        for variant in variants
    )
    cumulative: list[float] = []
    total = 0.0
    for variant in variants:
        total += variant.weight
        cumulative.append(total)
    names = tuple(variant.name for variant in variants)
    return EndpointPlan(
        variant_names=names,
        variant_behaviours=behaviours,
        cumulative_weights=tuple(cumulative),
        by_name=dict(zip(names, behaviours, strict=True)),
        variants_configured=override.variants is not None or config.variants != DEFAULT_VARIANTS,
        endpoint_behaviour=behaviour_of(latency, errors),
        echo=override.echo if override.echo is not None else config.echo,
    )


class Dice:
    """Seeded draws, one generator per purpose so that e.g. adding latency leaves variant picks unchanged."""

    def __init__(self, seed: int | None) -> None:
        def generator(purpose: str) -> random.Random:
            return random.Random(None if seed is None else f"{seed}:{purpose}")

        self._variants = generator("variants")
        self._errors = generator("errors")
        self._latency = generator("latency")

    def variant(self, plan: EndpointPlan) -> int:
        if len(plan.cumulative_weights) == 1:
            return 0
        point = self._variants.random() * plan.cumulative_weights[-1]
        return min(
            bisect.bisect_right(plan.cumulative_weights, point),
            len(plan.cumulative_weights) - 1,
        )

    def error(self, behaviour: Behaviour) -> str | None:
        if not behaviour.errors:
            return None
        point = self._errors.random()
        for code, cumulative in behaviour.errors:
            if point < cumulative:
                return code
        return None

    def delay_s(self, behaviour: Behaviour) -> float:
        if behaviour.mu is None:
            return 0.0
        return self._latency.lognormvariate(behaviour.mu, behaviour.sigma) / 1000.0


# --- responses ------------------------------------------------------------------------


def error_response(code: str, message: str, **extra: Any) -> web.Response:
    """An error as the service sends it; botocore reads the code from the header and `message` from the body."""
    return web.Response(
        status=api.ERROR_STATUS[code],
        body=json.dumps({"message": message, **extra}).encode(),
        headers={"Content-Type": "application/json", api.H_ERROR_TYPE: code + ERROR_TYPE_SUFFIX},
    )


def signature_error(message: str) -> web.Response:
    return web.Response(
        status=api.ERROR_STATUS["InvalidSignatureException"],
        body=json.dumps({"message": message}).encode(),
        headers={"Content-Type": "application/json", api.H_ERROR_TYPE: "InvalidSignatureException"},
    )


def injected_error_response(code: str, endpoint: str, region: str) -> web.Response:
    if code != "ModelError":
        return error_response(code, f"{code} injected by the loadgen mock")
    original = "Injected model error (loadgen mock)"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    return error_response(
        code,
        f'Received server error (500) from primary with message "{original}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group={log_group} in account {ACCOUNT_ID} for more information.",
        OriginalStatusCode=500,
        OriginalMessage=original,
        LogStreamArn=f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{log_group}",
    )


def content_type_for(accept: str | None) -> str:
    """The request's Accept when it names one type; JSON for none or a wildcard (clients send */*)."""
    if not accept or "*" in accept:
        return "application/json"
    return accept


def render_echo(echo_format: str, attributes: str | None) -> str:
    """The echoed CustomAttributes; str.replace because attributes may hold braces."""
    if not attributes or not echo_format:
        return ""
    return echo_format.replace(PLACEHOLDER, attributes)


# --- handlers -------------------------------------------------------------------------


class Admitted(NamedTuple):
    """A call that passed the checks: its body, the variant serving it and the echo."""

    body: bytes
    variant: str
    behaviour: Behaviour
    echo: str


class MockHandlers:
    """The request handlers with everything they need precomputed."""

    def __init__(self, config: MockConfig, stats: MockStats) -> None:
        self._stats = stats
        self._region = config.region
        self._dice = Dice(config.seed)
        self.sleeper = FineSleeper()  # service times to the microsecond, not the loop's ms
        self._streamer = Streamer(config.stream, config.seed, stats, self.sleeper.sleep)
        self._default_plan = plan_endpoint(config, None)
        self._plans = {name: plan_endpoint(config, o) for name, o in config.endpoints.items()}
        self._capacity = config.capacity
        self._copies_of: dict[tuple[str, str], Copies] = {}  # by (endpoint, variant)
        self._verifier: SignatureVerifier | None = None
        if config.access_key is not None and config.secret_key is not None:
            self._verifier = SignatureVerifier(config.access_key, config.secret_key, config.region)

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The body, or None when it is over the API's limit."""
        if (request.content_length or 0) > api.MAX_BODY_BYTES:
            return None
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return None

    def _invalid(self, message: str) -> web.Response:
        self._stats.validation_errors += 1
        return error_response("ValidationError", message)

    async def invoke(self, request: web.Request) -> web.Response:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        body, variant, behaviour, echo = admitted
        error = self._dice.error(behaviour)
        copies = self._copies(request.match_info["name"], variant)
        if error is not None:
            return await self._inject(error, request, behaviour, copies)
        await self._sleep(behaviour, copies)
        response_headers = {
            "Content-Type": content_type_for(request.headers.get("Accept")),
            api.H_INVOKED_VARIANT: variant,
        }
        if echo:
            response_headers[api.H_CUSTOM_ATTRIBUTES] = echo
        return web.Response(body=body, headers=response_headers)

    async def invoke_stream(self, request: web.Request) -> web.StreamResponse:
        """InvokeEndpointWithResponseStream: the same checks and injected errors, then tokens."""
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        _, variant, behaviour, echo = admitted
        error = self._dice.error(behaviour)
        copies = self._copies(request.match_info["name"], variant)
        if error is not None:
            return await self._inject(error, request, behaviour, copies)
        return await self._streamer.respond(request, variant, echo, copies)

    async def _inject(
        self, error: str, request: web.Request, behaviour: Behaviour, copies: Copies | None
    ) -> web.Response:
        injected = self._stats.injected_errors
        injected[error] = injected.get(error, 0) + 1
        if error == "ModelError":  # the model ran, and took its time, before failing
            await self._sleep(behaviour, copies)
        return injected_error_response(error, request.match_info["name"], self._region)

    async def _admit(self, request: web.Request) -> web.Response | Admitted:
        """A call's checks as SageMaker makes them: an error response, or what to serve."""
        body = await self._read_body(request)
        if body is None:
            return self._invalid(f"Request body must be at most {api.MAX_BODY_BYTES} bytes.")
        if self._verifier is not None:
            problem = self._verifier.problem(
                method=request.method, raw_path=request.raw_path, headers=request.headers, body=body
            )
            if problem is not None:
                self._stats.signature_failures += 1
                return signature_error(problem)

        endpoint = request.match_info["name"]
        headers = request.headers
        name_problem = api.name_problem(endpoint)
        if name_problem is not None:
            return self._invalid(f"Endpoint name {name_problem}.")
        attributes = headers.get(api.H_CUSTOM_ATTRIBUTES)
        if attributes is not None:
            attributes_problem = api.custom_attributes_problem(attributes)
            if attributes_problem is not None:
                return self._invalid(f"CustomAttributes {attributes_problem}.")

        plan = self._plans.get(endpoint, self._default_plan)
        target = headers.get(api.H_TARGET_VARIANT)
        if target:
            behaviour = plan.by_name.get(target)
            if behaviour is None:
                if len(target) > api.MAX_NAME:
                    return self._invalid(
                        f"TargetVariant must be at most {api.MAX_NAME} characters."
                    )
                if plan.variants_configured:
                    return self._invalid(
                        f"Variant {target} does not exist for endpoint {endpoint}."
                    )
                # Variants were not configured: any name is served, with the endpoint's behaviour.
                behaviour = plan.endpoint_behaviour
            variant = target
        else:
            index = self._dice.variant(plan)
            variant = plan.variant_names[index]
            behaviour = plan.variant_behaviours[index]

        key = (endpoint, variant)
        requests = self._stats.requests
        requests[key] = requests.get(key, 0) + 1
        return Admitted(body, variant, behaviour, render_echo(plan.echo, attributes))

    async def container_invoke(self, request: web.Request) -> web.Response:
        """`POST /invocations` as a model container sees it: the model sets the echo header itself."""
        body = await request.read()
        requests = self._stats.requests
        requests[CONTAINER_STATS_KEY] = requests.get(CONTAINER_STATS_KEY, 0) + 1
        await self._sleep(self._default_plan.endpoint_behaviour, self._copies(*CONTAINER_STATS_KEY))
        response_headers = {"Content-Type": content_type_for(request.headers.get("Accept"))}
        echo = render_echo(self._default_plan.echo, request.headers.get(api.H_CUSTOM_ATTRIBUTES))
        if echo:
            response_headers[api.H_CUSTOM_ATTRIBUTES] = echo
        return web.Response(body=body, headers=response_headers)

    def _copies(self, endpoint: str, variant: str) -> Copies | None:
        """The model copies serving an endpoint's variant, when the mock has a capacity."""
        if self._capacity is None:
            return None
        copies = self._copies_of.get((endpoint, variant))
        if copies is None:
            copies = self._copies_of[(endpoint, variant)] = Copies(self._capacity.copies)
        return copies

    async def _sleep(self, behaviour: Behaviour, copies: Copies | None = None) -> None:
        """The service time; with copies, after the wait for one (mock/capacity.py)."""
        delay = self._dice.delay_s(behaviour)
        if copies is not None:
            delay = copies.admit(delay)
        await self.sleeper.sleep(delay)


def build_app(config: MockConfig, *, container: bool = False) -> web.Application:
    """The mock as an aiohttp app; its MockStats is `app[STATS_KEY]`."""
    # Bodies up to the API's limit must reach the handler, which answers larger ones with
    # a ValidationError rather than aiohttp's own 413.
    app = web.Application(client_max_size=api.MAX_BODY_BYTES)
    stats = MockStats()
    app[STATS_KEY] = stats
    handlers = MockHandlers(config, stats)
    app.router.add_get("/ping", handlers.ping)
    if container:
        app.router.add_post("/invocations", handlers.container_invoke)
    else:
        app.router.add_post("/endpoints/{name}/invocations", handlers.invoke)
        app.router.add_post("/endpoints/{name}/invocations-response-stream", handlers.invoke_stream)

    async def close_sleeper(app: web.Application) -> None:
        handlers.sleeper.close()

    app.on_cleanup.append(close_sleeper)
    return app


# --- running it -----------------------------------------------------------------------


class MockServer:
    """A running mock; `close()` stops it."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, stats: MockStats) -> None:
        self._runner = runner
        self.port = port
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self.stats = stats

    def __repr__(self) -> str:
        return f"MockServer(url={self.url!r})"

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> MockServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_mock(
    config: MockConfig, host: str = "127.0.0.1", port: int = 0, *, container: bool = False
) -> MockServer:
    """Start the mock on host:port (0 picks a free port, reported in `.port` and `.url`)."""
    app = build_app(config, container=container)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise CannotRunError(f"mock: cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound_port: int = runner.addresses[0][1]
    return MockServer(runner, host, bound_port, app[STATS_KEY])


async def serve_until_signalled(config: MockConfig, host: str, port: int, container: bool) -> None:
    server = await start_mock(config, host, port, container=container)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    for stop_signal in stop_signals:
        loop.add_signal_handler(stop_signal, stop.set)
    # only now: whoever reads the URL may signal at once
    print(f"mock endpoint listening on {server.url}", flush=True)
    try:
        await stop.wait()
    finally:
        for stop_signal in stop_signals:
            loop.remove_signal_handler(stop_signal)
        await server.close()


def serve(config: MockConfig, host: str, port: int, *, container: bool = False) -> None:
    """Serve until SIGINT or SIGTERM, then return (no traceback); for `loadgen mock`."""
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_until_signalled(config, host, port, container))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
