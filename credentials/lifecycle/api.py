"""What the automation API records besides the transitions it calls."""

from __future__ import annotations

from django.db import transaction

from .. import audit
from ..audit import Actor
from ..models import CredentialVersion


def api_record_read(
    *, actor: Actor, caller: CredentialVersion, operation: str, details: dict
) -> None:
    """Audit one read by a management key as ``api.read``: the operation and what it asked
    for (ids and filters), never what it was answered. The target is the calling key's
    version, so a key's timeline shows everything it did."""
    with transaction.atomic():
        audit.append(
            actor=actor,
            action="api.read",
            target=caller,
            app_id=caller.credential.app_id,
            credential_id=caller.credential_id,
            details={"operation": operation, **details},
        )
