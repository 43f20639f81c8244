"""Where the fast transport gets its signing credentials: resolved once, refreshed in the background.

Signing happens for every request, so `current()` must be a plain attribute read. Resolving
(and refreshing temporary credentials, which can mean an STS or metadata call) happens up
front and then in a background task, never on the request path. Nothing here puts a secret
key or session token into an exception, a repr or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any

from botocore.exceptions import BotoCoreError

from loadgen.errors import CannotRunError
from loadgen.transport.sigv4 import Credentials

logger = logging.getLogger(__name__)

# What both transports sign with against the built-in mock when the chain finds nothing.
PLACEHOLDER = Credentials("loadgen-mock", "loadgen-mock-secret")
NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
)
DEFAULT_CHECK_INTERVAL = 30.0  # seconds between "is a refresh due?" checks
REFRESH_MARGIN = 300.0  # refresh when fewer seconds than this remain (botocore may start earlier)


def _frozen(read_only: Any) -> Credentials:
    """Our Credentials from botocore's ReadOnlyCredentials (an empty token means none)."""
    return Credentials(read_only.access_key, read_only.secret_key, read_only.token or None)


def _safe_reason(exc: BaseException) -> str:
    """A description of a credential-chain failure that cannot leak a secret.

    botocore's own errors are fixed templates (profile names, provider names); anything else
    (e.g. a credential_process's output) is reduced to its type.
    """
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


class CredentialSource:
    """Current credentials for signing; cheap to call per request."""

    __slots__ = ("method", "_provider", "_current", "_check_interval", "_refresh_margin", "_task")

    def __init__(
        self,
        provider: Any | None,
        *,
        current: Credentials | None = None,
        method: str = "static",
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        """Prefer the classmethods. `provider` is a botocore/aiobotocore credentials object or None."""
        self.method = method  # where the chain found them: "env", "shared-credentials-file", ...
        self._provider = provider
        self._current = current
        self._check_interval = check_interval
        self._refresh_margin = refresh_margin
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        access_key = self._current.access_key if self._current else None
        return f"CredentialSource(method={self.method!r}, access_key={access_key!r}, refreshable={self.refreshable})"

    # -- construction -----------------------------------------------------------------

    @classmethod
    def static(cls, access_key: str, secret_key: str, token: str | None = None) -> CredentialSource:
        return cls(None, current=Credentials(access_key, secret_key, token or None))

    @classmethod
    def from_botocore(
        cls,
        credentials: Any,
        *,
        method: str | None = None,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> CredentialSource:
        """Wrap a botocore or aiobotocore Credentials/RefreshableCredentials; `start()` resolves it."""
        return cls(
            credentials,
            method=method or getattr(credentials, "method", None) or "botocore",
            check_interval=check_interval,
            refresh_margin=refresh_margin,
        )

    @classmethod
    async def from_chain(
        cls,
        region: str,
        *,
        allow_placeholder: bool = False,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
    ) -> CredentialSource:
        """The standard AWS credential chain, as aiobotocore resolves it; resolved before returning.

        With `allow_placeholder` (only for the built-in mock) a chain that finds nothing yields
        placeholder credentials instead of CannotRunError.
        """
        from aiobotocore.session import get_session  # heavy import, only needed here

        session = get_session()
        session.set_config_variable("region", region)
        try:
            found = await session.get_credentials()
        except Exception as exc:
            raise CannotRunError(f"could not load AWS credentials: {_safe_reason(exc)}") from None
        if found is None:
            if allow_placeholder:
                return cls(None, current=PLACEHOLDER, method="placeholder")
            raise CannotRunError(NO_CREDENTIALS)
        source = cls.from_botocore(found, check_interval=check_interval)
        try:
            source._current = await source._resolve()
        except Exception as exc:
            raise CannotRunError(f"could not load AWS credentials: {_safe_reason(exc)}") from None
        return source

    # -- use --------------------------------------------------------------------------

    @property
    def refreshable(self) -> bool:
        """Whether these credentials expire and must be refreshed in the background."""
        return callable(getattr(self._provider, "refresh_needed", None))

    def current(self) -> Credentials:
        """The credentials to sign with now (no I/O)."""
        if self._current is None:
            raise RuntimeError("CredentialSource.start() has not been awaited")
        return self._current

    async def start(self) -> None:
        """Resolve once; for expiring credentials, start the background refresh task."""
        if self._current is None:
            self._current = await self._resolve()
        if self._task is None and self.refreshable:
            self._task = asyncio.create_task(
                self._refresh_loop(), name="loadgen-credentials-refresh"
            )

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- refresh ----------------------------------------------------------------------

    async def _resolve(self) -> Credentials:
        """Frozen credentials from the provider, refreshing them if botocore says it is time."""
        provider = self._provider
        if provider is None:  # made with neither credentials nor a provider of them
            raise CannotRunError(NO_CREDENTIALS)
        get_frozen = provider.get_frozen_credentials
        if inspect.iscoroutinefunction(get_frozen):
            read_only = await get_frozen()
        else:  # botocore's refresh may block on network I/O: keep it off the event loop
            read_only = await asyncio.to_thread(get_frozen)
        if read_only is None:
            raise CannotRunError(NO_CREDENTIALS)
        return _frozen(read_only)

    def _refresh_due(self) -> bool:
        provider = self._provider
        if provider is None:  # static credentials never expire
            return False
        # refresh_needed() with no argument uses botocore's advisory window (15 min by default)
        return bool(provider.refresh_needed() or provider.refresh_needed(self._refresh_margin))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            try:
                if not self._refresh_due():
                    continue
                fresh = await self._resolve()
            except Exception as exc:  # keep signing with what we have; try again next tick
                logger.warning(
                    "refreshing AWS credentials failed (%s); retrying in %.0f s",
                    type(exc).__name__,
                    self._check_interval,
                )
                continue
            if fresh != self._current:
                logger.info("AWS credentials refreshed (%s)", self.method)
                self._current = fresh
