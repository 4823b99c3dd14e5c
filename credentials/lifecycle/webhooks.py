"""Endpoints and deliveries: disable an endpoint that keeps failing, resend a delivery."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import audit
from ..audit import Actor
from ..models import Delivery, Endpoint
from ..webhooks.events import enqueue
from .common import TransitionRefused


def endpoint_disable(*, endpoint: Endpoint, reason: str, actor: Actor | None = None) -> bool:
    """Stop delivering to an endpoint (it answered 410, or failed too often in a row).

    Deliveries still pending are cancelled when they come due; ``resend`` revives them once
    the endpoint is enabled again. Returns False if it was already disabled. Audited as
    ``endpoint.disabled``.
    """
    actor = actor or Actor.system("webhook delivery")
    with transaction.atomic():
        # A conditional update: two workers failing at once disable (and audit) it only once.
        changed = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:300]
        )
        if not changed:
            return False
        endpoint = Endpoint.objects.get(pk=endpoint.pk)
        audit.append(
            actor=actor,
            action="endpoint.disabled",
            target=endpoint,
            app_id=endpoint.app_id,
            details={"url": endpoint.url, "reason": reason[:300]},
        )
    return True


def delivery_resend(*, actor: Actor, delivery: Delivery) -> Delivery:
    """Send a finished delivery again, with the same message id and a new round of retries.

    Refused while it is still pending or in flight, for test events (send a new one), and
    while the endpoint is disabled. Audited as ``webhook.resent``.
    """
    with transaction.atomic():
        current = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint", "message")
            .get(pk=delivery.pk)
        )
        if not current.retry:
            raise TransitionRefused("Test events are not resent; send a new test event instead.")
        if current.status in (Delivery.Status.PENDING, Delivery.Status.IN_FLIGHT):
            raise TransitionRefused(
                f"Delivery #{current.pk} is still {current.get_status_display().lower()}."
            )
        if not current.endpoint.enabled:
            raise TransitionRefused(
                f"The endpoint {current.endpoint.url} is disabled; enable it first."
            )
        previous = current.status
        now = timezone.now()
        Delivery.objects.filter(pk=current.pk).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            round_start=F("attempts"),
            finished_at=None,
        )
        audit.append(
            actor=actor,
            action="webhook.resent",
            target=current,
            app_id=current.endpoint.app_id,
            details={
                "message_id": current.message.message_id,
                "event_type": current.message.event_type,
                "url": current.endpoint.url,
                "previous_status": previous,
            },
        )
        pk = current.pk
        transaction.on_commit(lambda: enqueue([pk]))
    current.refresh_from_db()
    return current
