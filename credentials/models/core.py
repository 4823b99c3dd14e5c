"""Keyturn's state and the invariants the database itself enforces.

Nothing here changes state on its own: every transition lives in ``lifecycle.py``. No model
field ever holds a plaintext secret; ``__str__`` never shows a secret or a digest.
"""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .. import crypto


def new_client_id() -> str:
    return "app_" + "".join(secrets.choice(crypto.BASE62) for _ in range(20))


class Kind(models.TextChoices):
    CLIENT_SECRET = "client_secret", "App client secret"
    API_KEY = "api_key", "API key"
    ENDPOINT_SECRET = "endpoint_secret", "Webhook endpoint signing secret"
    SERVICE_ACCOUNT_KEY = "service_account_key", "Service-account public key"


BEARER_KINDS = frozenset({Kind.API_KEY, Kind.CLIENT_SECRET})


class State(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRING = "retiring", "Retiring (overlap)"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


VERIFYING_STATES = (State.ACTIVE, State.RETIRING)


class RevokeReason(models.TextChoices):
    ROTATED = "rotated", "Replaced by a rotation"
    ROUTINE = "routine", "Routine clean-up"
    OFFBOARDING = "offboarding", "Integration or person offboarded"
    EXPOSED = "exposed", "Exposed (leaked or suspected leaked)"
    OTHER = "other", "Other (see note)"


# The fixed scope catalogue. Management scopes are used by the automation API.
SCOPES = {
    "introspect": "Ask whether a presented key is valid",
    "credentials:read": "Read apps, endpoints, credentials and version metadata",
    "credentials:rotate": "Rotate credentials",
    "credentials:revoke": "Revoke and reactivate versions",
    "exposures:report": "Report exposed secrets",
    "audit:read": "Read the audit trail",
    "orders:read": "Example integration scope: read orders",
    "orders:write": "Example integration scope: write orders",
}


class App(models.Model):
    """An integration that holds credentials."""

    name = models.CharField(max_length=120)
    client_id = models.CharField(max_length=40, unique=True, default=new_client_id, editable=False)
    owner_team = models.CharField(max_length=120)
    contact_email = models.EmailField()
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Endpoint(models.Model):
    """A webhook destination of an app. Owns exactly one endpoint-secret credential."""

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="endpoints")
    url = models.URLField(max_length=2048)
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Failed delivery attempts in a row; a success resets it, too many disable the endpoint.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["app__name", "url"]

    def __str__(self):
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        """An empty ``event_types`` list means every event; otherwise only those listed.

        (Svix and most senders read "no filter" the same way: a new endpoint hears everything
        until its owner narrows it.) ``test.ping`` is sent on request, whatever the list says.
        """
        return not self.event_types or event_type in self.event_types


class Credential(models.Model):
    """A slot holding one logical secret over time; each secret it held is a version."""

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="credentials")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    name = models.CharField(max_length=120)
    # Set for (and only for) endpoint secrets; unique, so an endpoint has at most one.
    endpoint = models.OneToOneField(
        Endpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="credential"
    )
    scopes = models.JSONField(default=list, blank=True)
    lifetime_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days until a new version expires (capped by policy)."
    )
    overlap_seconds = models.PositiveIntegerField(
        default=24 * 3600, help_text="How long the old version keeps working after a rotation."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["app__name", "name"]
        constraints = [
            models.CheckConstraint(name="credential_kind_valid", condition=Q(kind__in=Kind.values)),
            models.CheckConstraint(
                name="endpoint_iff_endpoint_secret",
                condition=(
                    Q(kind=Kind.ENDPOINT_SECRET, endpoint__isnull=False)
                    | (~Q(kind=Kind.ENDPOINT_SECRET) & Q(endpoint__isnull=True))
                ),
            ),
        ]
        permissions = [
            ("rotate_credential", "Can rotate credentials"),
            ("revoke_credential", "Can revoke credential versions"),
            ("reactivate_credential", "Can reactivate revoked versions"),
            ("report_exposure", "Can report an exposed credential"),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_bearer(self) -> bool:
        return self.kind in BEARER_KINDS


class CredentialVersion(models.Model):
    """One generated secret or registered public key. Holds metadata, never the plaintext.

    Bearer secrets are kept as an HMAC digest; endpoint signing secrets as an authenticated
    ciphertext bound to ``public_id``; service-account keys as the public key itself.
    """

    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(max_length=16, choices=State.choices)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200)
    activated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    retire_at = models.DateTimeField(
        null=True, blank=True, help_text="When the overlap of a retiring version ends."
    )

    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)
    revoke_reason = models.CharField(max_length=16, choices=RevokeReason.choices, blank=True)
    revoke_note = models.TextField(blank=True)
    state_before_revoke = models.CharField(max_length=16, choices=State.choices, blank=True)
    reactivation_deadline = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveBigIntegerField(default=0)

    last_four = models.CharField(max_length=4)
    fingerprint = models.CharField(max_length=64)
    # Bearer kinds: HMAC-SHA256 hex under the hash key named by digest_key_id.
    digest = models.CharField(max_length=64, null=True, blank=True, unique=True)
    digest_key_id = models.CharField(max_length=32, blank=True)
    # Endpoint secrets: AES-GCM ciphertext (crypto.encrypt) bound to public_id.
    ciphertext = models.TextField(blank=True)
    # Service-account keys: the public key (never a private one) and its algorithm.
    public_key_pem = models.TextField(blank=True)
    key_algorithm = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["credential_id", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "number"], name="version_number_unique_per_credential"
            ),
            models.UniqueConstraint(
                fields=["credential"],
                condition=Q(state=State.ACTIVE),
                name="one_active_version_per_credential",
            ),
            models.UniqueConstraint(
                fields=["credential"],
                condition=Q(state=State.RETIRING),
                name="one_retiring_version_per_credential",
            ),
            models.CheckConstraint(name="version_state_valid", condition=Q(state__in=State.values)),
            models.CheckConstraint(
                name="revoked_version_has_reason",
                condition=~Q(state=State.REVOKED) | ~Q(revoke_reason=""),
            ),
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=~Q(public_key_pem=""),
                name="public_key_registered_once",
            ),
            models.CheckConstraint(
                name="retiring_version_has_retire_time",
                condition=~Q(state=State.RETIRING) | Q(retire_at__isnull=False),
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="version_state_expiry")]

    def __str__(self):
        return f"{self.credential.name} v{self.number} (••••{self.last_four}, {self.state})"

    @property
    def masked(self) -> str:
        return f"••••{self.last_four}"

    @property
    def associated_data(self) -> bytes:
        """What an endpoint secret's ciphertext is bound to: this row's public id."""
        return b"keyturn/endpoint-secret/v1/" + self.public_id.bytes

    def verifies_at(self, when) -> bool:
        """True if this version may authenticate or sign at ``when`` (state and times)."""
        if self.state not in VERIFYING_STATES:
            return False
        if self.expires_at is not None and when >= self.expires_at:
            return False
        return not (self.state == State.RETIRING and when >= self.retire_at)


class AuditChainHead(models.Model):
    """The chain's newest (seq, hash): a single row locked to serialise appends."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="")

    class Meta:
        constraints = [models.CheckConstraint(name="single_chain_head", condition=Q(id=1))]

    def __str__(self):
        return f"audit chain head #{self.seq}"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit events are append-only; they cannot be updated.")

    def delete(self):
        raise TypeError("Audit events are append-only; they cannot be deleted.")

    def bulk_update(self, *args, **kwargs):
        raise TypeError("Audit events are append-only; they cannot be updated.")


class AuditEvent(models.Model):
    """One entry of the append-only, HMAC-chained audit trail. Written only by ``audit.append``.

    ``hash`` = HMAC-SHA256(PORTAL_AUDIT_KEY, prev_hash + canonical form of this row), so an
    edit, deletion, insertion or reordering breaks the chain at that row.
    """

    class ActorType(models.TextChoices):
        USER = "user", "User"
        API_KEY = "api_key", "API key"
        SYSTEM = "system", "System"

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices, editable=False)
    actor_id = models.CharField(max_length=64, blank=True, editable=False)
    actor_label = models.CharField(max_length=200, editable=False)
    ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    user_agent = models.CharField(max_length=300, blank=True, editable=False)
    action = models.CharField(max_length=64, editable=False)
    target_type = models.CharField(max_length=32, editable=False)
    target_id = models.CharField(max_length=64, editable=False)
    target_label = models.CharField(max_length=300, blank=True, editable=False)
    # Plain ids, not foreign keys: history must not cascade or block when rows go.
    app_id = models.BigIntegerField(null=True, blank=True, editable=False)
    credential_id = models.BigIntegerField(null=True, blank=True, editable=False)
    details = models.JSONField(default=dict, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["credential_id", "seq"], name="audit_credential_seq"),
            models.Index(fields=["created_at"], name="audit_created_at"),
            models.Index(fields=["action"], name="audit_action"),
        ]
        permissions = [
            ("view_audit", "Can view the audit trail"),
            ("export_audit", "Can export the audit trail"),
        ]

    def __str__(self):
        return f"#{self.seq} {self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only; they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only; they cannot be deleted.")


class OneTimeSubmission(models.Model):
    """A form token claimed by the one request that acted on it.

    The form that mints a secret carries a fresh token; the POST claims it in the transaction
    that mints, and a second POST of the same form (reload, back button, double click) finds
    it claimed and is shown the version it made, never a second secret.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=32)
    version = models.ForeignKey(
        CredentialVersion, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.purpose} by user {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"


class ChainVerification(models.Model):
    """The outcome of one walk of the audit chain, for the badge on the audit pages."""

    checked_at = models.DateTimeField(default=timezone.now)
    checked_by = models.CharField(max_length=200)
    ok = models.BooleanField()
    checked = models.PositiveBigIntegerField()
    head_seq = models.PositiveBigIntegerField()
    broken_seq = models.PositiveBigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)

    class Meta:
        ordering = ["-checked_at"]
        get_latest_by = "checked_at"

    def __str__(self):
        verdict = "intact" if self.ok else f"broken at #{self.broken_seq}"
        return f"audit chain {verdict} ({self.checked_at:%Y-%m-%d %H:%M})"
