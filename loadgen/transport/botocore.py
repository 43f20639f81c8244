"""The reference transport: aiobotocore's sagemaker-runtime client, as users' own code calls it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp.http_exceptions import HttpProcessingError
from botocore import exceptions as boto
from botocore.eventstream import ParserError as EventStreamParserError

from loadgen import api
from loadgen.errors import CannotRunError
from loadgen.transport.base import Outcome, Request, Target, Transport, error_for_status
from loadgen.transport.credentials import PLACEHOLDER
from loadgen.transport.stream import StreamReader

_TIMEOUTS = (boto.ReadTimeoutError, boto.ConnectTimeoutError, asyncio.TimeoutError)
_CONNECTION_FAULTS = (
    boto.ConnectionError,
    boto.HTTPClientError,
    aiohttp.ClientError,
    ConnectionError,
    OSError,
)


class BotocoreTransport(Transport):
    name = "botocore"

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
        verify: bool | str = True,
        allow_placeholder_credentials: bool = False,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._verify = verify
        self._allow_placeholder = allow_placeholder_credentials
        self._config = AioConfig(
            max_pool_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        self._client_context: Any = None
        self._client: Any = None
        self._params: dict[Target, dict[str, str]] = {}

    async def start(self) -> None:
        session = get_session()
        explicit: dict[str, str] = {}
        if await session.get_credentials() is None:
            if not self._allow_placeholder:
                raise CannotRunError(
                    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
                )
            explicit = {
                "aws_access_key_id": PLACEHOLDER.access_key,
                "aws_secret_access_key": PLACEHOLDER.secret_key,
            }
        self._client_context = session.create_client(
            api.SERVICE,
            region_name=self._region,
            endpoint_url=self._endpoint_url,
            verify=self._verify,
            config=self._config,
            **explicit,
        )
        self._client = await self._client_context.__aenter__()

    def _params_for(self, target: Target) -> dict[str, str]:
        params = self._params.get(target)
        if params is None:
            params = {"EndpointName": target.endpoint_name, "ContentType": target.content_type}
            optional = {
                "Accept": target.accept,
                "TargetVariant": target.target_variant,
                # InvokeEndpointWithResponseStream has no TargetModel (the scenario says so)
                "TargetModel": None if target.stream else target.target_model,
                "TargetContainerHostname": target.target_container_hostname,
                "InferenceComponentName": target.inference_component,
            }
            params.update({key: value for key, value in optional.items() if value is not None})
            self._params[target] = params
        return params

    async def invoke(self, request: Request) -> Outcome:
        if request.target.stream:
            return await self._invoke_stream(request)
        params = self._params_for(request.target)
        try:
            response = await self._client.invoke_endpoint(
                Body=request.body, CustomAttributes=request.custom_attributes, **params
            )
            async with response["Body"] as stream:
                await stream.read()
        except _FAILURES as exc:
            return _failure_outcome(exc)
        metadata = response["ResponseMetadata"]
        return Outcome(
            status=metadata.get("HTTPStatusCode", 200),
            variant=response.get("InvokedProductionVariant"),
            echoed=response.get("CustomAttributes"),
        )

    async def _invoke_stream(self, request: Request) -> Outcome:
        """invoke_endpoint_with_response_stream, its events read as users' code reads them:
        `async for` over botocore's EventStream; an exception frame raises there."""
        target = request.target
        reader = StreamReader(target.stream_format)
        response: dict[str, Any] = {}
        last = _LastEvent()
        try:
            response = await self._client.invoke_endpoint_with_response_stream(
                Body=request.body,
                CustomAttributes=request.custom_attributes,
                **self._params_for(target),
            )
            reader.head()
            events = response["Body"]
            last.watch(events)
            async for event in events:
                part = event.get("PayloadPart")
                if part is not None:
                    reader.part(part.get("Bytes", b""))
        except boto.EventStreamError as exc:
            return Outcome(
                200,
                exc.response.get("Error", {}).get("Code") or api.PROTOCOL_ERROR,
                response.get("InvokedProductionVariant"),
                response.get("CustomAttributes"),
                stream_error_code=last.error_code(),
            )
        except EventStreamParserError:  # a bad CRC or length: not a BotoCoreError
            return Outcome(
                200,
                api.PROTOCOL_ERROR,
                response.get("InvokedProductionVariant"),
                response.get("CustomAttributes"),
            )
        except _FAILURES as exc:
            return _failure_outcome(exc)
        finally:
            body = response.get("Body")
            if body is not None:
                body.close()  # a stream left unread holds its connection until collected
        metadata = response["ResponseMetadata"]
        return reader.outcome(
            metadata.get("HTTPStatusCode", 200),
            response.get("InvokedProductionVariant"),
            response.get("CustomAttributes"),
        )

    async def close(self) -> None:
        if self._client_context is not None:
            await self._client_context.__aexit__(None, None, None)
            self._client_context = self._client = None


class _LastEvent:
    """The raw message botocore parsed last: its parser keeps an exception frame's Code and
    Message but drops ModelStreamError's ErrorCode, which the fast transport reports."""

    def __init__(self) -> None:
        self.payload = b""

    def watch(self, events: Any) -> None:
        parse = events._parse_event  # one stream's own parser, wrapped for this call only

        def remembered(event: Any) -> Any:
            self.payload = event.payload
            return parse(event)

        events._parse_event = remembered

    def error_code(self) -> str | None:
        try:
            code = json.loads(self.payload).get("ErrorCode")
        except (ValueError, AttributeError):
            return None
        return code if isinstance(code, str) else None


# Everything a call can raise for a fault of the endpoint or the network: counted, never fatal.
_FAILURES = (boto.ClientError, boto.BotoCoreError, ValueError, *_TIMEOUTS, *_CONNECTION_FAULTS)


def _failure_outcome(exc: BaseException) -> Outcome:
    """The Outcome of a failed call, by the first class that matches (order matters: an
    SSLError is a connection fault too, a ReadTimeoutError a BotoCoreError)."""
    if isinstance(exc, boto.ClientError):
        return _error_outcome(exc.response)
    if isinstance(exc, boto.SSLError):
        return Outcome(error=api.TLS_ERROR)
    if isinstance(exc, _TIMEOUTS):
        return Outcome(error=api.TIMEOUT)
    if isinstance(exc, _CONNECTION_FAULTS):
        return Outcome(error=_fault_code(exc))
    return Outcome(error=api.PROTOCOL_ERROR)  # unparseable responses


def _fault_code(exc: Exception) -> str:
    """ProtocolError when aiohttp could not parse the response (botocore wraps that as an
    HTTPClientError or ConnectionClosedError), as the fast transport reports it; else
    ConnectionError."""
    cause = exc.kwargs.get("error") if isinstance(exc, boto.BotoCoreError) else exc
    if isinstance(cause, aiohttp.ClientResponseError | HttpProcessingError):
        return api.PROTOCOL_ERROR
    return api.CONNECTION_ERROR


def _error_outcome(response: dict[str, Any]) -> Outcome:
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = api.error_code_from(None, response.get("Error", {}).get("Code"))
    if code is not None and code.isdigit():  # botocore fills in the status when no code was sent
        code = None
    original = response.get("OriginalStatusCode")
    return Outcome(
        status=status,
        error=error_for_status(status, code),
        variant=response.get("ResponseMetadata", {})
        .get("HTTPHeaders", {})
        .get(api.H_INVOKED_VARIANT.lower()),
        original_status=int(original)
        if isinstance(original, int | str) and str(original).isdigit()
        else None,
    )
