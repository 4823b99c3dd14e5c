"""The API's one way into exposure handling, shared by the report operation and the GitHub
secret-scanning intake."""

from __future__ import annotations

from .. import lifecycle
from ..audit import Actor
from ..models import CredentialVersion


def handle_exposure(*, actor: Actor, version: CredentialVersion, note: str) -> CredentialVersion:
    """Revoke ``version`` for good (reason ``exposed``) and start its exposure rotation.

    ``lifecycle.exposure_report`` revokes, audits ``credential.exposed``, emits the
    ``credential.exposed`` event and opens the exposure rotation that the credential page and
    the home page flag until someone walks it; the revoke happens even where no rotation can.
    """
    lifecycle.exposure_report(actor=actor, version=version, note=note)
    return version
