"""Outgoing events: messages, their deliveries to endpoints, one receipt per attempt.

The outbox: a lifecycle change writes its ``WebhookMessage`` and one ``Delivery`` per
subscribed endpoint in its own transaction, so an event exists exactly when its change
committed. Workers then move deliveries along; nothing here holds a secret, not even the
signatures sent (they are recomputed on every attempt).
"""

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .. import crypto
from .core import App, Credential, CredentialVersion, Endpoint


class EventType(models.TextChoices):
    ROTATED = "credential.rotated", "Credential rotated"
    REVOKED = "credential.revoked", "Credential version revoked"
    REACTIVATED = "credential.reactivated", "Credential version reactivated"
    EXPOSED = "credential.exposed", "Credential version reported exposed"
    EXPIRING = "credential.expiring", "Credential version expiring soon"
    EXPIRED = "credential.expired", "Credential version expired"
    TEST_PING = "test.ping", "Test event"


def new_message_id() -> str:
    """A Standard Webhooks message id: ``msg_`` + 27 base62 characters (about 160 bits)."""
    return "msg_" + "".join(secrets.choice(crypto.BASE62) for _ in range(27))


class WebhookMessage(models.Model):
    """One event, as the exact bytes every attempt sends, under one id for its whole life.

    Receivers deduplicate on ``message_id``; it never changes between attempts or resends.
    """

    message_id = models.CharField(
        max_length=40, unique=True, default=new_message_id, editable=False
    )
    event_type = models.CharField(max_length=40, choices=EventType.choices, editable=False)
    # The JSON body, serialised once: every attempt signs and sends these very bytes.
    body = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    app = models.ForeignKey(
        App, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    credential = models.ForeignKey(
        Credential,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="webhook_message_created")]
        constraints = [
            models.CheckConstraint(
                name="webhook_message_type_valid", condition=Q(event_type__in=EventType.values)
            )
        ]

    def __str__(self):
        return f"{self.event_type} {self.message_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"
    CANCELLED = "cancelled", "Cancelled (endpoint disabled)"


class Delivery(models.Model):
    """One message on its way to one endpoint: pending, in flight (leased), or finished."""

    Status = DeliveryStatus

    message = models.ForeignKey(
        WebhookMessage, on_delete=models.CASCADE, related_name="deliveries", editable=False
    )
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.PROTECT, related_name="deliveries", editable=False
    )
    status = models.CharField(
        max_length=16,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
        editable=False,
    )
    attempts = models.PositiveIntegerField(default=0, editable=False)
    # The attempt count when the current round of retries began (a resend starts a new one).
    round_start = models.PositiveIntegerField(default=0, editable=False)
    next_attempt_at = models.DateTimeField(default=timezone.now, editable=False)
    # While in flight: the worker's claim runs out at this time, and then anyone may retry.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Test events are sent once, synchronously, and never retried.
    retry = models.BooleanField(default=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "endpoint"], name="one_delivery_per_message_and_endpoint"
            ),
            models.CheckConstraint(
                name="delivery_status_valid", condition=Q(status__in=DeliveryStatus.values)
            ),
            models.CheckConstraint(
                name="in_flight_delivery_has_lease",
                condition=~Q(status="in_flight") | Q(lease_until__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["status", "lease_until"], name="delivery_lease"),
        ]
        permissions = [("resend_delivery", "Can resend a webhook delivery")]

    def __str__(self):
        return f"delivery #{self.pk} of {self.message_id} to endpoint {self.endpoint_id}"


class DeliveryReceipt(models.Model):
    """What one attempt to deliver sent and got back. Written once, never edited."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="receipts", editable=False
    )
    attempt = models.PositiveIntegerField(editable=False)
    started_at = models.DateTimeField(editable=False)
    webhook_timestamp = models.BigIntegerField(editable=False)
    target_address = models.CharField(max_length=64, blank=True, editable=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    ok = models.BooleanField(editable=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    error = models.CharField(max_length=300, blank=True, editable=False)
    response_excerpt = models.TextField(blank=True, editable=False)
    # Which versions of the endpoint's secret signed this attempt (version numbers).
    signed_versions = models.JSONField(default=list, editable=False)
    sent_by = models.CharField(max_length=200, editable=False)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "attempt"], name="one_receipt_per_attempt")
        ]
        indexes = [models.Index(fields=["started_at"], name="receipt_started_at")]
        permissions = [("send_test_event", "Can send a test event to an endpoint")]

    def __str__(self):
        outcome = self.status_code if self.status_code is not None else "no response"
        return f"attempt {self.attempt} of delivery #{self.delivery_id}: {outcome}"

    @property
    def succeeded(self) -> bool:
        """True when the receiver answered 2xx: it accepted the event and its signature."""
        return self.ok


class ExpiryNotice(models.Model):
    """That ``credential.expiring`` was sent for a version at one threshold: at most once."""

    version = models.ForeignKey(
        CredentialVersion, on_delete=models.CASCADE, related_name="expiry_notices"
    )
    days_before = models.PositiveSmallIntegerField()
    message = models.ForeignKey(
        WebhookMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "days_before"], name="one_expiry_notice_per_threshold"
            )
        ]

    def __str__(self):
        return f"expiring notice for version {self.version_id}, {self.days_before} day(s) before"
