"""Webhook bookkeeping: disable an endpoint that keeps failing, resend a delivery, warn of
expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import audit
from ..audit import Actor
from ..models import CredentialVersion, Delivery, Endpoint, ExpiryNotice, State
from ..webhooks import events
from ..webhooks.events import enqueue
from .common import TransitionRefused, _lock_credential


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


def version_notify_expiring(*, version: CredentialVersion, now: datetime) -> int | None:
    """Send ``credential.expiring`` for an active version if it has crossed a threshold it has
    not been warned about (PORTAL_EXPIRY_NOTICE_DAYS, e.g. 7 and 1 days before expiry).

    Each threshold is warned about at most once per version: the unique constraint on
    (version, days_before) holds that even against two clocks, and the credential row lock
    makes the second clock wait and then find the notice written. A version first seen
    already inside several thresholds (a short lifetime, a clock that was down) gets one
    notice, for the nearest; the farther ones are marked as passed, not sent late. Returns the
    threshold warned about, or None. Audited as ``credential.expiring``.
    """
    thresholds = sorted(set(settings.PORTAL_EXPIRY_NOTICE_DAYS))
    with transaction.atomic():
        credential = _lock_credential(version.credential)
        version = CredentialVersion.objects.get(pk=version.pk)
        if version.state != State.ACTIVE or version.expires_at is None:
            return None
        remaining = version.expires_at - now
        if remaining <= timedelta(0):
            return None  # the expiry sweep reports this one as expired
        crossed = [days for days in thresholds if remaining <= timedelta(days=days)]
        if not crossed:
            return None
        done = set(version.expiry_notices.values_list("days_before", flat=True))
        nearest = crossed[0]
        if nearest in done:
            return None
        message = events.emit(
            "credential.expiring",
            credential=credential,
            data=events.credential_data(
                credential,
                version,
                days_before=nearest,
                seconds_left=int(remaining.total_seconds()),
            ),
        )
        ExpiryNotice.objects.bulk_create(
            [
                ExpiryNotice(
                    version=version,
                    days_before=days,
                    message=message if days == nearest else None,
                    sent_at=now,
                )
                for days in crossed
                if days not in done
            ]
        )
        audit.append(
            actor=Actor.system("clock"),
            action="credential.expiring",
            target=version,
            app_id=credential.app_id,
            credential_id=credential.pk,
            details={
                "version": version.number,
                "last_four": version.last_four,
                "days_before": nearest,
                "expires_at": version.expires_at.isoformat(timespec="seconds"),
                "message_id": message.message_id if message else None,
            },
        )
    return nearest
