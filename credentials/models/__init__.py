"""Keyturn's models, one module per area; everything is importable from here."""

from .api import MANAGEMENT_CLIENT_ID, IdempotencyRecord
from .core import (
    BEARER_KINDS,
    SCOPES,
    VERIFYING_STATES,
    App,
    AppendOnlyQuerySet,
    AuditChainHead,
    AuditEvent,
    ChainVerification,
    Credential,
    CredentialVersion,
    Endpoint,
    Kind,
    OneTimeSubmission,
    RevokeReason,
    State,
    new_client_id,
)

__all__ = [
    "BEARER_KINDS",
    "MANAGEMENT_CLIENT_ID",
    "SCOPES",
    "VERIFYING_STATES",
    "App",
    "AppendOnlyQuerySet",
    "AuditChainHead",
    "AuditEvent",
    "ChainVerification",
    "Credential",
    "CredentialVersion",
    "Endpoint",
    "IdempotencyRecord",
    "Kind",
    "OneTimeSubmission",
    "RevokeReason",
    "State",
    "new_client_id",
]
