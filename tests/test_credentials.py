"""CredentialSource: static, the standard chain (hermetic: env only), placeholder, refresh."""

from __future__ import annotations

import asyncio
import datetime
import logging
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.credentials import AioRefreshableCredentials
from botocore.credentials import RefreshableCredentials

from loadgen.errors import CannotRunError
from loadgen.transport.botocore import BotocoreTransport
from loadgen.transport.credentials import NO_CREDENTIALS, PLACEHOLDER, CredentialSource
from loadgen.transport.sigv4 import Credentials

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
CHAIN_VARIABLES = [
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
]


@pytest.fixture
def empty_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment where the credential chain finds nothing and makes no network call."""
    for name in CHAIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "no-boto-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def _no_secrets(text: str) -> None:
    assert SECRET not in text
    assert TOKEN not in text
    assert "new-secret" not in text


async def test_static() -> None:
    source = CredentialSource.static("AKIDEXAMPLE", SECRET, TOKEN)
    assert source.current() == Credentials("AKIDEXAMPLE", SECRET, TOKEN)
    await source.start()
    assert not source.refreshable
    assert source.current() == Credentials("AKIDEXAMPLE", SECRET, TOKEN)
    await source.close()
    assert CredentialSource.static("AK", SECRET, "").current().token is None


async def test_chain_reads_environment(empty_chain: pytest.MonkeyPatch) -> None:
    empty_chain.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    empty_chain.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    empty_chain.setenv("AWS_SESSION_TOKEN", TOKEN)
    source = await CredentialSource.from_chain("us-east-1")
    assert source.current() == Credentials("AKIDEXAMPLE", SECRET, TOKEN)
    assert source.method == "env"
    await source.start()
    assert source.current() == Credentials("AKIDEXAMPLE", SECRET, TOKEN)
    await source.close()
    _no_secrets(repr(source))


async def test_chain_reads_environment_without_token(empty_chain: pytest.MonkeyPatch) -> None:
    empty_chain.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    empty_chain.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    source = await CredentialSource.from_chain("eu-west-1")
    assert source.current() == Credentials("AKIDEXAMPLE", SECRET, None)


async def test_chain_placeholder_when_nothing_found(empty_chain: pytest.MonkeyPatch) -> None:
    source = await CredentialSource.from_chain("us-east-1", allow_placeholder=True)
    await source.start()
    assert source.current() is PLACEHOLDER
    assert PLACEHOLDER == Credentials("loadgen-mock", "loadgen-mock-secret")
    await source.close()


async def test_chain_nothing_found_cannot_run(empty_chain: pytest.MonkeyPatch) -> None:
    with pytest.raises(CannotRunError) as excinfo:
        await CredentialSource.from_chain("us-east-1")
    assert str(excinfo.value) == NO_CREDENTIALS


async def test_chain_missing_profile_cannot_run(empty_chain: pytest.MonkeyPatch) -> None:
    empty_chain.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(CannotRunError) as excinfo:
        await CredentialSource.from_chain("us-east-1")
    assert "no-such-profile" in str(excinfo.value)


def _metadata(access_key: str, secret: str, expires_in: float) -> dict[str, Any]:
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in)
    return {
        "access_key": access_key,
        "secret_key": secret,
        "token": TOKEN,
        "expiry_time": expiry.isoformat(),
    }


# botocore refreshes (advisory) when fewer than 900 s remain: start just outside that window.
FIRST_EXPIRY = 900.5


async def _wait_for_access_key(source: CredentialSource, access_key: str) -> None:
    for _ in range(200):
        if source.current().access_key == access_key:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still {source.current()!r}")


async def test_background_refresh_of_botocore_credentials() -> None:
    calls: list[int] = []

    def refresh() -> dict[str, Any]:
        calls.append(1)
        return _metadata("AKIDNEW", "new-secret", 3600)

    creds = RefreshableCredentials.create_from_metadata(
        _metadata("AKIDOLD", SECRET, FIRST_EXPIRY),
        refresh,
        "test",
        advisory_timeout=900,
        mandatory_timeout=600,
    )
    source = CredentialSource.from_botocore(creds, check_interval=0.02)
    await source.start()
    assert source.refreshable
    assert source.current() == Credentials("AKIDOLD", SECRET, TOKEN)  # not refreshed yet
    await _wait_for_access_key(source, "AKIDNEW")
    assert source.current() == Credentials("AKIDNEW", "new-secret", TOKEN)
    assert calls == [1]
    _no_secrets(repr(source))
    await source.close()


async def test_background_refresh_of_aiobotocore_credentials() -> None:
    async def refresh() -> dict[str, Any]:
        return _metadata("AKIDNEW", "new-secret", 3600)

    creds = AioRefreshableCredentials.create_from_metadata(
        _metadata("AKIDOLD", SECRET, FIRST_EXPIRY),
        refresh,
        "test",
        advisory_timeout=900,
        mandatory_timeout=600,
    )
    source = CredentialSource.from_botocore(creds, check_interval=0.02)
    await source.start()
    assert source.current().access_key == "AKIDOLD"
    await _wait_for_access_key(source, "AKIDNEW")
    await source.close()


async def test_failed_refresh_keeps_credentials_and_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    def refresh() -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError(f"sts said no to {SECRET}")
        return _metadata("AKIDNEW", "new-secret", 3600)

    # inside botocore's mandatory window: its refresh failures propagate to us
    creds = RefreshableCredentials.create_from_metadata(
        _metadata("AKIDOLD", SECRET, FIRST_EXPIRY),
        refresh,
        "test",
        advisory_timeout=900,
        mandatory_timeout=900,
    )
    source = CredentialSource.from_botocore(creds, check_interval=0.02)
    await source.start()
    with caplog.at_level(logging.WARNING, logger="loadgen.transport.credentials"):
        await _wait_for_access_key(source, "AKIDNEW")
    assert len(attempts) == 2
    ours = [r for r in caplog.records if r.name == "loadgen.transport.credentials"]
    assert ours and all(SECRET not in r.getMessage() for r in ours)
    await source.close()


def test_reprs_hide_secrets() -> None:
    source = CredentialSource.static("AKIDEXAMPLE", SECRET, TOKEN)
    for text in (repr(source), repr(source.current()), str(source.current())):
        assert "AKIDEXAMPLE" in text
        _no_secrets(text)


def test_current_before_start_is_an_error() -> None:
    source = CredentialSource.from_botocore(object())
    with pytest.raises(RuntimeError):
        source.current()


async def test_neither_credentials_nor_a_provider_cannot_run() -> None:
    source = CredentialSource(None)
    with pytest.raises(CannotRunError) as excinfo:
        await source.start()
    assert str(excinfo.value) == NO_CREDENTIALS
    assert not source.refreshable and not source._refresh_due()


async def test_both_transports_sign_with_one_placeholder(empty_chain: pytest.MonkeyPatch) -> None:
    """The reference transport falls back to the same placeholder as the fast one."""
    transport = BotocoreTransport(
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        max_connections=1,
        connect_timeout=1.0,
        read_timeout=1.0,
        allow_placeholder_credentials=True,
    )
    await transport.start()
    try:
        signing = transport._client._request_signer._credentials
        frozen = await signing.get_frozen_credentials()
        assert (frozen.access_key, frozen.secret_key, frozen.token) == (
            PLACEHOLDER.access_key,
            PLACEHOLDER.secret_key,
            None,
        )
    finally:
        await transport.close()
