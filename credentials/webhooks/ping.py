"""``send_test_ping``: send one signed ``test.ping`` now and return what happened.

Used by the endpoint page's "Send test event" button, ``manage.py send_test_event`` and the
endpoint-secret rotation playbook ("send a synthetic test event, read its receipt"). It goes
through the same signer and sender as every delivery, so its receipt says whether the receiver
accepts what real events will look like.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import audit
from ..audit import Actor
from ..models import Delivery, DeliveryReceipt, Endpoint
from . import delivery as attempts
from .events import test_message


def send_test_ping(*, endpoint: Endpoint, actor: Actor) -> DeliveryReceipt:
    """Send ``test.ping`` to ``endpoint`` synchronously, once, and return its receipt.

    The receipt holds the status, latency, error, first 1 KB of the response and the version
    numbers that signed; ``receipt.succeeded`` is True for a 2xx answer. Sent whether or not
    the endpoint is enabled or subscribed (it is a check, asked for by a person), never
    retried, and it does not count towards disabling the endpoint. Audited as
    ``webhook.test_sent``. Network trouble is reported in the receipt, never raised.
    """
    now = timezone.now()
    with transaction.atomic():
        endpoint = Endpoint.objects.select_related("app").get(pk=endpoint.pk)
        message = test_message(endpoint)
        delivery = Delivery.objects.create(
            message=message,
            endpoint=endpoint,
            status=Delivery.Status.IN_FLIGHT,
            attempts=1,
            retry=False,
            next_attempt_at=now,
            last_attempt_at=now,
            lease_until=now + timedelta(seconds=settings.PORTAL_WEBHOOK_LEASE_SECONDS),
        )
    # Committed before sending, so the id the receiver sees is one we have recorded.
    delivery = Delivery.objects.select_related("message", "endpoint__app").get(pk=delivery.pk)
    started_at = timezone.now()
    outcome, versions, timestamp = attempts.send_attempt(delivery)
    with transaction.atomic():
        receipt = attempts.record(
            delivery,
            started_at=started_at,
            outcome=outcome,
            versions=versions,
            timestamp=timestamp,
            sent_by=actor.label,
        )
        audit.append(
            actor=actor,
            action="webhook.test_sent",
            target=endpoint,
            app_id=endpoint.app_id,
            details={
                "message_id": message.message_id,
                "receipt": receipt.pk,
                "status_code": outcome.status,
                "ok": outcome.ok,
                "error": outcome.error,
                "signed_versions": versions,
            },
        )
    return receipt
