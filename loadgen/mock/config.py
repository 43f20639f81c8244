"""How the mock endpoint behaves: latency, injected errors, variants, the echo format."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# z of the 99th percentile of the standard normal: p99 = exp(mu + Z_P99 * sigma).
Z_P99 = 2.3263478740408408

Probability = Annotated[float, Field(ge=0.0, le=1.0)]

# Errors the mock can inject, with the status AWS sends them with.
InjectableError = Literal[
    "ModelError",
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "ModelNotReadyException",
    "InternalDependencyException",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencySpec(Strict):
    """A log-normal service time given by its median and 99th percentile, in milliseconds."""

    median: Annotated[float, Field(ge=0.0)] = 20.0
    p99: Annotated[float, Field(ge=0.0)] = 80.0

    def lognormal(self) -> tuple[float | None, float]:
        """(mu, sigma) of the delay in ms; mu None when the median is 0 (no delay)."""
        if self.median <= 0:
            return None, 0.0
        mu = math.log(self.median)
        return mu, (math.log(self.p99) - mu) / Z_P99

    @model_validator(mode="after")
    def _p99_not_below_median(self) -> LatencySpec:
        if self.p99 < self.median:
            raise ValueError("p99 must be >= median")
        return self


class MockVariant(Strict):
    name: Annotated[str, Field(min_length=1, max_length=63)]
    weight: Annotated[float, Field(gt=0.0)] = 1.0
    latency_ms: LatencySpec | None = None
    errors: dict[InjectableError, Probability] | None = None


class MockEndpoint(Strict):
    """Per-endpoint overrides of the mock's defaults."""

    latency_ms: LatencySpec | None = None
    errors: dict[InjectableError, Probability] | None = None
    variants: list[MockVariant] | None = None
    echo: str | None = None


class MockStream(Strict):
    """What InvokeEndpointWithResponseStream calls get: tokens, each on its own time, in a
    container's format, cut into PayloadParts at odd places as real containers' writes are."""

    tokens: Annotated[int, Field(ge=1, le=100_000)] = 32  # per response
    ttft_ms: LatencySpec = LatencySpec(median=50.0, p99=150.0)  # to the first token
    itl_ms: LatencySpec = LatencySpec(median=10.0, p99=30.0)  # between tokens
    format: Literal["sse", "jsonl"] = "sse"  # TGI-style SSE events, or LMI-style JSON lines
    # a ModelStreamError (ModelInvocationTimeExceeded) after some tokens, at this rate
    stream_error_rate: Probability = 0.0


class MockCapacity(Strict):
    """The mock as a queue: `copies` model copies, each serving one request at a time with
    the configured service time, in arrival order (mock/capacity.py). Latency then rises
    with load as on a real instance, and the capacity is copies / mean service time."""

    copies: Annotated[int, Field(ge=1, le=100_000)]


class MockConfig(Strict):
    latency_ms: LatencySpec = LatencySpec()
    error_rate: Probability = 0.0  # shorthand for errors: {ModelError: rate}
    errors: dict[InjectableError, Probability] = {}
    # "{custom_attributes}" is replaced by the request's value; "" sends no echo at all.
    echo: str = "{custom_attributes}"
    variants: list[MockVariant] = [MockVariant(name="AllTraffic")]
    endpoints: dict[str, MockEndpoint] = {}
    seed: int | None = None
    # When both are set, every request's SigV4 signature is verified (403 otherwise).
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"
    stream: MockStream = MockStream()
    capacity: MockCapacity | None = None  # default: every request served at once

    @model_validator(mode="after")
    def _keys_together(self) -> MockConfig:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("access_key and secret_key go together")
        return self

    def injected_errors(self) -> dict[str, float]:
        errors: dict[str, float] = dict(self.errors.items())
        if self.error_rate and "ModelError" not in errors:
            errors["ModelError"] = self.error_rate
        return errors
