"""Keyturn's models, one module per area; everything is importable from here."""

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
from .rotations import Rotation

__all__ = [
    "BEARER_KINDS",
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
    "Kind",
    "OneTimeSubmission",
    "RevokeReason",
    "Rotation",
    "State",
    "new_client_id",
]
