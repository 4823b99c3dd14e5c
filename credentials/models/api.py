"""State of the automation API: the idempotency store, the one place a secret outlives its
response (encrypted, for 24 hours), and the built-in app that holds management keys."""

import uuid

from django.db import models
from django.utils import timezone

from .core import CredentialVersion

# The portal's own app: its API keys are the management keys of the automation API. Created
# by migration 0008_api, so it exists before anyone can issue the first key in the portal.
MANAGEMENT_CLIENT_ID = "keyturn"


class IdempotencyRecord(models.Model):
    """One ``Idempotency-Key`` of one calling key, and the response it was answered with.

    Claimed (``completed_at`` empty) before the request runs, so a concurrent duplicate finds
    it in flight; completed in the transaction that makes the change, so the change and the
    stored answer commit together. ``response`` is ``crypto.encrypt`` output bound to the
    row, its caller and its request (``associated_data``): it may hold a new secret, so it is
    never stored in the clear and is deleted after 24 hours
    (``credentials.api.idempotency.prune``).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    caller = models.ForeignKey(CredentialVersion, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    claim = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_key_per_caller")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at")]

    def __str__(self):
        state = "completed" if self.completed_at else "in flight"
        return f"idempotency record {self.public_id} ({state})"

    @property
    def associated_data(self) -> bytes:
        """What the stored response's ciphertext is bound to: this row, its calling key and the
        request it answers. Someone who can write to the database but holds no encryption key
        cannot hand one caller's stored answer (which may hold a new secret) to another caller
        or to another request by editing ``caller`` or ``request_hash``: it no longer decrypts.
        """
        return b"/".join(
            (
                b"keyturn/idempotency/v2",
                self.public_id.bytes,
                str(self.caller_id).encode("ascii"),
                self.request_hash.encode("ascii"),
            )
        )
