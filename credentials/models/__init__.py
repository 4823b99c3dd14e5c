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
from .rotations import Rotation
from .two_factor import SEED_ELSEWHERE, KeyturnTOTPDevice, TOTPSeed, seed_associated_data
from .webhooks import (
    Delivery,
    DeliveryReceipt,
    EventType,
    ExpiryNotice,
    WebhookMessage,
    new_message_id,
)

__all__ = [
    "BEARER_KINDS",
    "MANAGEMENT_CLIENT_ID",
    "SCOPES",
    "SEED_ELSEWHERE",
    "VERIFYING_STATES",
    "App",
    "AppendOnlyQuerySet",
    "AuditChainHead",
    "AuditEvent",
    "ChainVerification",
    "Credential",
    "CredentialVersion",
    "Delivery",
    "DeliveryReceipt",
    "Endpoint",
    "EventType",
    "ExpiryNotice",
    "IdempotencyRecord",
    "KeyturnTOTPDevice",
    "Kind",
    "OneTimeSubmission",
    "RevokeReason",
    "Rotation",
    "State",
    "TOTPSeed",
    "WebhookMessage",
    "new_client_id",
    "new_message_id",
    "seed_associated_data",
]
