"""The one signer for every outgoing event (Standard Webhooks).

``webhook-signature`` is ``v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`` over the exact
bytes sent, one signature per version of the endpoint's secret that may sign now (active and,
during an overlap, retiring), separated by spaces. A receiver holding either secret verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import crypto
from ..models import VERIFYING_STATES, CredentialVersion, Endpoint


class NoSigningKey(Exception):
    """The endpoint has no version that may sign now; nothing is sent unsigned."""


@dataclass(frozen=True)
class SigningKey:
    """The raw HMAC key of one version, named by its number. Never printed."""

    version: int
    key: bytes = field(repr=False)


@sensitive_variables("secret", "plaintext")
def signing_keys(endpoint: Endpoint, *, now: datetime | None = None) -> list[SigningKey]:
    """The keys of every version of ``endpoint``'s secret that may sign at ``now``, newest first.

    Ciphertexts are decrypted with the row they are bound to; a version whose ciphertext does
    not decrypt (moved, tampered, key not loaded) is left out rather than failing the rest.
    """
    now = now or timezone.now()
    versions = CredentialVersion.objects.filter(
        credential__endpoint=endpoint, state__in=VERIFYING_STATES
    ).order_by("-number")
    keys = []
    for version in versions:
        if not version.verifies_at(now):
            continue
        try:
            plaintext = crypto.decrypt(
                version.ciphertext,
                keyring=settings.PORTAL_ENCRYPTION_KEYS,
                associated_data=version.associated_data,
            )
            secret = plaintext.decode("ascii")
            keys.append(SigningKey(version.number, crypto.webhook_secret_key(secret)))
        except (crypto.CryptoError, UnicodeDecodeError):
            continue
    return keys


@sensitive_variables("keys")
def signature_header(*, message_id: str, timestamp: int, body: bytes, keys) -> str:
    """The ``webhook-signature`` value for these exact bytes: one ``v1,`` entry per key."""
    if not keys:
        raise NoSigningKey("no version of the endpoint's secret may sign now")
    signed = f"{message_id}.{timestamp}.".encode("ascii") + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(k.key, signed, hashlib.sha256).digest()).decode("ascii")
        for k in keys
    )


@sensitive_variables("keys")
def signed_headers(*, message_id: str, timestamp: int, body: bytes, keys) -> dict[str, str]:
    """Every header a delivery sends: content type and the three Standard Webhooks headers."""
    return {
        "content-type": "application/json",
        "user-agent": "Keyturn-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            message_id=message_id, timestamp=timestamp, body=body, keys=keys
        ),
    }
