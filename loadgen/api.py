"""Facts of the SageMaker InvokeEndpoint API that the loader, the mock and both transports share.

Limits and patterns follow botocore's sagemaker-runtime service model.
"""

from __future__ import annotations

import re

SIGNING_NAME = "sagemaker"
SERVICE = "sagemaker-runtime"

H_CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
H_TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
H_TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"
H_TARGET_CONTAINER = "X-Amzn-SageMaker-Target-Container-Hostname"
H_INFERENCE_COMPONENT = "X-Amzn-SageMaker-Inference-Component"
H_INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
H_INVOKED_VARIANT = "X-Amzn-Invoked-Production-Variant"
H_ERROR_TYPE = "x-amzn-ErrorType"
H_STREAM_ACCEPT = "X-Amzn-SageMaker-Accept"  # InvokeEndpointWithResponseStream's Accept
EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"

MAX_CUSTOM_ATTRIBUTES = 1024
MAX_BODY_BYTES = 6 * 1024 * 1024

ENDPOINT_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
INFERENCE_COMPONENT_RE = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")
MAX_NAME = 63

# Error codes and the HTTP status AWS sends them with.
ERROR_STATUS = {
    "ValidationError": 400,
    "ThrottlingException": 400,
    "InvalidSignatureException": 403,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
}

# Codes no load test can fix: when a run's first calls all fail with them, it stops (exit 3).
# {region} is the region the calls were signed for.
_AUTH_FIX = (
    "check the credentials, the region ({region}) and the sagemaker:InvokeEndpoint permission"
)
REFUSAL_FIXES = {
    "InvalidSignatureException": _AUTH_FIX,
    "UnrecognizedClientException": _AUTH_FIX,
    "IncompleteSignature": _AUTH_FIX,
    "MissingAuthenticationToken": _AUTH_FIX,
    "ExpiredTokenException": "the session credentials expired: refresh them",
    "AccessDeniedException": _AUTH_FIX,
    # what SageMaker answers for an endpoint it cannot find ("Could not find endpoint")
    "ValidationError": "check the endpoint name and the region ({region}), then the request",
}

# Outcome classes for failures that never produced an AWS error code.
TIMEOUT = "Timeout"
CONNECTION_ERROR = "ConnectionError"
PROTOCOL_ERROR = "ProtocolError"
TLS_ERROR = "TLSError"  # handshake or certificate verification failed


def invocation_path(endpoint_name: str, stream: bool = False) -> str:
    """InvokeEndpoint's path, or InvokeEndpointWithResponseStream's."""
    suffix = "-response-stream" if stream else ""
    return f"/endpoints/{endpoint_name}/invocations{suffix}"


def name_problem(value: str, pattern: re.Pattern[str] = ENDPOINT_NAME_RE) -> str | None:
    """Why `value` is not a valid endpoint/variant/container name, or None."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters (got {len(value)})"
    if not pattern.fullmatch(value):
        return (
            "must be letters, digits and single hyphens, starting and ending with a letter or digit"
        )
    return None


def custom_attributes_problem(value: str) -> str | None:
    """Why `value` cannot be sent as CustomAttributes, or None.

    The API takes at most 1024 visible US-ASCII characters (RFC 7230 field-value: space allowed).
    """
    if len(value) > MAX_CUSTOM_ATTRIBUTES:
        return f"must be at most {MAX_CUSTOM_ATTRIBUTES} characters (got {len(value)})"
    for index, char in enumerate(value):
        if not " " <= char <= "~":
            return f"character {index} ({char!r}) is not visible US-ASCII"
    return None


_REGEX_SPECIAL = frozenset("\\^$.|?*+()[]{}/")


def logs_insights_query(endpoint_name: str, trace_ids: list[str]) -> dict[str, str]:
    """A CloudWatch Logs Insights query that finds these trace IDs in the endpoint's own logs."""
    # regex metacharacters, and "/" since the pattern sits between slashes
    pattern = "|".join(
        "".join("\\" + c if c in _REGEX_SPECIAL else c for c in t) for t in trace_ids
    )
    return {
        "log_group": f"/aws/sagemaker/Endpoints/{endpoint_name}",
        "query": f"fields @timestamp, @logStream, @message | filter @message like /{pattern}/ | sort @timestamp desc",
    }


def error_code_from(header_value: str | None, body_code: str | None) -> str | None:
    """The AWS error code as botocore derives it: the header first, then the body; text after ':' stripped."""
    raw = header_value or body_code
    if not raw:
        return None
    return raw.split(":", 1)[0].strip() or None
