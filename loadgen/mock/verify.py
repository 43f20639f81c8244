"""SigV4 verification for the mock, with botocore's own signer as the reference.

The mock exists to check our fast signer against something we did not write, so the
expected signature is computed by botocore (`SigV4Auth`) for the request as received,
at the request's own `X-Amz-Date`. Nothing here logs or returns the secret, the
Authorization header or the expected signature.
"""

from __future__ import annotations

import hmac

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict, CIMultiDictProxy

from loadgen import api

ALGORITHM = "AWS4-HMAC-SHA256"
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


class SignatureVerifier:
    """Checks requests against one access key pair, in one region, for the `sagemaker` signing name."""

    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region

    def __repr__(self) -> str:  # never show the secret
        return f"SignatureVerifier(region={self._region!r})"

    def problem(
        self,
        *,
        method: str,
        raw_path: str,
        headers: CIMultiDictProxy[str] | CIMultiDict[str],
        body: bytes,
    ) -> str | None:
        """Why the request's signature is not acceptable (a message safe to send back), or None."""
        authorization = headers.get("Authorization")
        if not authorization:
            return "Missing Authentication Token"
        parsed = parse_authorization(authorization)
        if parsed is None:
            return "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'."
        credential, signed_headers, signature = parsed
        access_key, _, _scope = credential.partition("/")
        if not hmac.compare_digest(access_key.encode(), self._access_key.encode()):
            return "The security token included in the request is invalid."
        timestamp = headers.get("X-Amz-Date")
        if not timestamp:
            return "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."

        signed: dict[str, str] = {}
        for name in signed_headers:
            values = headers.getall(name, [])
            if not values:
                return MISMATCH_MESSAGE
            signed[name] = ",".join(values)
        host = headers.get("Host", "")
        reference = AWSRequest(
            method=method, url=f"http://{host}{raw_path}", headers=signed, data=body
        )
        reference.context["timestamp"] = timestamp
        signer = SigV4Auth(
            Credentials(self._access_key, self._secret_key, headers.get("X-Amz-Security-Token")),
            api.SIGNING_NAME,
            self._region,
        )
        canonical_request = signer.canonical_request(reference)
        expected = signer.signature(signer.string_to_sign(reference, canonical_request), reference)
        same_scope = credential == signer.scope(reference)
        same_signature = hmac.compare_digest(expected.encode(), signature.encode())
        if same_scope and same_signature:
            return None
        return MISMATCH_MESSAGE


def parse_authorization(value: str) -> tuple[str, list[str], str] | None:
    """(credential, signed header names, signature) from a SigV4 Authorization header, or None."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, field_value = part.strip().partition("=")
        if sep:
            fields[key] = field_value
    try:
        credential = fields["Credential"]
        signed_headers = [name for name in fields["SignedHeaders"].lower().split(";") if name]
        signature = fields["Signature"]
    except KeyError:
        return None
    if not (credential and signed_headers and signature):
        return None
    return credential, signed_headers, signature
