"""What the management API accepts and answers, as pydantic schemas: the OpenAPI document is
generated from these. Version schemas carry metadata only (last four, fingerprint, states,
times), never a digest, ciphertext or secret; the one field that holds a secret is
``RotationOut.secret``, in the answer of the request that minted it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from ..lifecycle import MAX_NOTE_LENGTH, MAX_OVERLAP_SECONDS
from ..models import Kind, RevokeReason, State

KindName = Literal[tuple(Kind.values)]  # type: ignore[valid-type]
StateName = Literal[tuple(State.values)]  # type: ignore[valid-type]
# An exposure has its own operation; ``exposed`` is not an ordinary revoke reason.
RevokeReasonName = Literal[tuple(r for r in RevokeReason.values if r != RevokeReason.EXPOSED)]  # type: ignore[valid-type]


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


class ProblemOut(Schema):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    scope: str | None = None
    errors: list[dict] | None = None


class AppOut(Schema):
    id: int
    name: str
    client_id: str
    owner_team: str
    contact_email: str
    description: str
    created_at: datetime
    archived_at: datetime | None


class EndpointOut(Schema):
    id: int
    app_id: int
    url: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    credential_id: int | None


class CredentialOut(Schema):
    id: int
    app_id: int
    kind: KindName
    name: str
    endpoint_id: int | None
    scopes: list[str]
    lifetime_days: int | None
    overlap_seconds: int
    created_at: datetime


class VersionOut(Schema):
    credential_id: int
    number: int
    public_id: uuid.UUID
    state: StateName
    last_four: str
    fingerprint: str
    key_algorithm: str
    created_at: datetime
    created_by: str
    activated_at: datetime
    expires_at: datetime | None
    retire_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str
    revoke_reason: str
    reactivation_deadline: datetime | None
    expired_at: datetime | None
    last_used_at: datetime | None
    use_count: int


class AuditEventOut(Schema):
    seq: int
    created_at: datetime
    actor_type: str
    actor_id: str
    actor_label: str
    ip: str | None
    action: str
    target_type: str
    target_id: str
    target_label: str
    app_id: int | None
    credential_id: int | None
    details: dict
    hash: str


class Page(Schema):
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )


class AppPage(Page):
    items: list[AppOut]


class EndpointPage(Page):
    items: list[EndpointOut]


class CredentialPage(Page):
    items: list[CredentialOut]


class VersionPage(Page):
    items: list[VersionOut]


class AuditPage(Page):
    items: list[AuditEventOut]


class RotationIn(Strict):
    overlap_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the old version keeps working; the credential's default if "
        "omitted, 0 revokes it at once.",
    )
    public_key_pem: str | None = Field(
        default=None, max_length=8000, description="Service-account credentials only."
    )


class RotationOut(Schema):
    version: VersionOut
    previous_version: VersionOut | None
    secret: str | None = Field(
        description="The new secret, shown in this answer only (and in an exact replay of "
        "this request within 24 hours). null for service-account keys."
    )


class RevokeIn(Strict):
    reason: RevokeReasonName
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH)


class ExposureIn(Strict):
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH)


class GitHubMatch(Schema):
    token: str
    type: str
    url: str | None = None
    source: str | None = None


class GitHubVerdict(Schema):
    token_hash: str = Field(description="SHA-256 (hex) of the reported token.")
    token_type: str
    label: Literal["true_positive", "false_positive"]
