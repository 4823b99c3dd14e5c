"""The API's one way into exposure handling, shared by the report operation and the GitHub
secret-scanning intake."""

from __future__ import annotations

from .. import lifecycle
from ..audit import Actor
from ..models import CredentialVersion


def handle_exposure(*, actor: Actor, version: CredentialVersion, note: str) -> CredentialVersion:
    """Revoke ``version`` for good (reason ``exposed``) and start its exposure rotation.

    ``lifecycle.version_report_exposure`` revokes, audits ``credential.exposed`` and (with the
    webhook work) emits the ``credential.exposed`` event. The guided exposure-mode rotation of
    issue 4 is started from here when it lands: this is the single call site to point at it.
    """
    return lifecycle.version_report_exposure(actor=actor, version=version, note=note)
