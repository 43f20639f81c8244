"""Which region a run signs for, resolved as the AWS SDKs do, and checked against the URL.

A signature made for one region is refused by another region's endpoint with
InvalidSignatureException, 100% of calls: so a region that contradicts the endpoint URL's
is a usage error before anything is sent, never a run of errors.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from loadgen.errors import UsageError
from loadgen.scenario import REGION_PATTERN, Scenario

# Where no region is set and the endpoint is not AWS's (the mock, a local server): the
# signature is still made, and the mock checks it, for the SDKs' usual default.
LOCAL_DEFAULT = "us-east-1"

_RUNTIME_HOST = re.compile(
    r"^runtime(?:-fips)?\.sagemaker\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$"
)


class RegionSource(enum.StrEnum):
    SCENARIO = "the scenario's region"
    FLAG = "--region"
    AWS_REGION = "AWS_REGION"
    CONFIG = "AWS_DEFAULT_REGION or the profile"
    URL = "the endpoint URL"
    DEFAULT = "the default for a non-AWS endpoint"


@dataclass(frozen=True)
class ResolvedRegion:
    name: str
    source: RegionSource

    def __str__(self) -> str:
        return f"{self.name} (from {self.source})"


def url_region(url: str | None) -> str | None:
    """The region in a `runtime.sagemaker.<region>.amazonaws.com` URL; None for any other."""
    if not url or url == "mock":
        return None
    match = _RUNTIME_HOST.match(urlsplit(url).hostname or "")
    return match["region"] if match else None


def configured_region() -> str | None:
    """AWS_DEFAULT_REGION or the profile's region, as botocore's session reads them."""
    import botocore.exceptions
    import botocore.session

    try:
        value = botocore.session.Session().get_config_variable("region")
    except botocore.exceptions.BotoCoreError:  # e.g. AWS_PROFILE names no profile
        return None
    return str(value) if value else None


def resolve_region(scenario: Scenario, flag: str | None = None) -> ResolvedRegion:
    """The scenario's `region`, else `--region`, else AWS_REGION, else AWS_DEFAULT_REGION
    or the profile's, else the endpoint URL's; UsageError when they contradict each other
    or when a call to AWS has no region at all."""
    if flag is not None and not re.fullmatch(REGION_PATTERN, flag):
        raise UsageError(f"--region: {flag!r} is not a region name such as eu-west-1")
    if scenario.region is not None and flag is not None and flag != scenario.region:
        raise UsageError(
            f"--region: {flag} contradicts the scenario's region {scenario.region} "
            "(drop one of them)"
        )
    resolved = _first_set(scenario, flag)
    in_url = url_region(scenario.endpoint_url)
    if resolved is None:
        if in_url is not None:
            return ResolvedRegion(in_url, RegionSource.URL)
        if scenario.endpoint_url is None:
            raise UsageError(
                "region: none found for the SageMaker endpoint: set region in the scenario, "
                "--region, or AWS_REGION"
            )
        return ResolvedRegion(LOCAL_DEFAULT, RegionSource.DEFAULT)
    if in_url is not None and in_url != resolved.name:
        raise UsageError(
            f"region: {resolved} contradicts endpoint_url {scenario.endpoint_url} "
            f"(region {in_url}): requests signed for one region fail in the other"
        )
    return resolved


def _first_set(scenario: Scenario, flag: str | None) -> ResolvedRegion | None:
    if scenario.region is not None:
        return ResolvedRegion(scenario.region, RegionSource.SCENARIO)
    if flag is not None:
        return ResolvedRegion(flag, RegionSource.FLAG)
    environment = os.environ.get("AWS_REGION")
    if environment:
        return _checked(environment, RegionSource.AWS_REGION)
    configured = configured_region()
    if configured:
        return _checked(configured, RegionSource.CONFIG)
    return None


def _checked(name: str, source: RegionSource) -> ResolvedRegion:
    if not re.fullmatch(REGION_PATTERN, name):
        raise UsageError(f"region: {name!r} from {source} is not a region name such as eu-west-1")
    return ResolvedRegion(name, source)


def with_region(scenario: Scenario, region: ResolvedRegion) -> Scenario:
    """The scenario as run: its region is the resolved one, which both transports sign for."""
    return scenario.model_copy(update={"region": region.name})
