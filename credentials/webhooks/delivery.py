"""One delivery attempt, and the bookkeeping that makes retries safe with many workers.

A worker *claims* a delivery with a conditional update (pending and due, or in flight with
its lease run out), sends outside any transaction, then *records* the receipt and the next
step. Two workers handed the same delivery (a duplicate task, the clock re-enqueueing one whose
worker died) cannot both send it: only one claim matches. A worker killed after claiming
leaves the delivery in flight until its lease ends; the clock then queues it again. Every
attempt sends the same message id and body with a fresh timestamp and fresh signatures.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..models import Delivery, DeliveryReceipt, Endpoint
from . import sender
from .signing import signed_headers, signing_keys

log = logging.getLogger(__name__)
_jitter = secrets.SystemRandom()


def send_attempt(delivery: Delivery) -> tuple[sender.Outcome, list[int], int]:
    """Sign the message for the endpoint's current versions and POST it once.

    Returns the outcome, the version numbers that signed and the ``webhook-timestamp`` sent.
    An endpoint with no version able to sign gets nothing: an unsigned event is never sent.
    """
    keys = signing_keys(delivery.endpoint)
    timestamp = int(time.time())
    if not keys:
        error = "not sent: no version of the endpoint's signing secret may sign now"
        return sender.Outcome(None, "", error, 0, ""), [], timestamp
    message = delivery.message
    body = message.body.encode("ascii")
    headers = signed_headers(
        message_id=message.message_id, timestamp=timestamp, body=body, keys=keys
    )
    outcome = sender.post(delivery.endpoint.url, body=body, headers=headers)
    return outcome, [key.version for key in keys], timestamp


def write_receipt(
    delivery: Delivery,
    *,
    attempt: int,
    started_at: datetime,
    outcome: sender.Outcome,
    versions: list[int],
    timestamp: int,
    sent_by: str,
) -> DeliveryReceipt:
    return DeliveryReceipt.objects.create(
        delivery=delivery,
        attempt=attempt,
        started_at=started_at,
        webhook_timestamp=timestamp,
        target_address=outcome.address[:64],
        status_code=outcome.status,
        ok=outcome.ok,
        latency_ms=outcome.latency_ms,
        error=outcome.error[:300],
        response_excerpt=outcome.excerpt,
        signed_versions=versions,
        sent_by=sent_by[:200],
    )


def claim(delivery_id: int, *, now: datetime) -> Delivery | None:
    """Take a due delivery for one attempt, or None if it is not due or someone else has it."""
    lease = now + timedelta(seconds=settings.PORTAL_WEBHOOK_LEASE_SECONDS)
    # One conditional update: of two processes racing for the same row, exactly one matches.
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.IN_FLIGHT, lease_until__lt=now
    )
    claimed = Delivery.objects.filter(due, pk=delivery_id, retry=True).update(
        status=Delivery.Status.IN_FLIGHT,
        lease_until=lease,
        attempts=F("attempts") + 1,
        last_attempt_at=now,
    )
    if claimed != 1:
        return None
    return Delivery.objects.select_related("message", "endpoint__app").get(pk=delivery_id)


def deliver_now(delivery_id: int) -> str:
    """Run one attempt of a delivery if it is due. What the worker's task does; returns a word
    for the task result (no content, no secret)."""
    delivery = claim(delivery_id, now=timezone.now())
    if delivery is None:
        return "skipped"
    if not delivery.endpoint.enabled:
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.IN_FLIGHT).update(
            status=Delivery.Status.CANCELLED,
            attempts=F("attempts") - 1,
            lease_until=None,
            finished_at=timezone.now(),
        )
        return "cancelled"
    started_at = timezone.now()
    outcome, versions, timestamp = send_attempt(delivery)
    record(
        delivery,
        started_at=started_at,
        outcome=outcome,
        versions=versions,
        timestamp=timestamp,
        sent_by="delivery worker",
    )
    return "delivered" if outcome.ok else "failed"


def record(
    delivery: Delivery,
    *,
    started_at: datetime,
    outcome: sender.Outcome,
    versions: list[int],
    timestamp: int,
    sent_by: str,
) -> DeliveryReceipt:
    """Write the receipt of the attempt ``delivery.attempts`` and decide what happens next:
    delivered, retried later (exponential back-off with jitter), or given up."""
    from ..lifecycle.webhooks import endpoint_disable  # the lifecycle imports this package

    attempt = delivery.attempts
    with transaction.atomic():
        current = Delivery.objects.select_for_update().get(pk=delivery.pk)
        receipt = write_receipt(
            current,
            attempt=attempt,
            started_at=started_at,
            outcome=outcome,
            versions=versions,
            timestamp=timestamp,
            sent_by=sent_by,
        )
        if current.status != Delivery.Status.IN_FLIGHT or current.attempts != attempt:
            # Our lease ran out and another attempt took over: the delivery is its to finish.
            return receipt
        now = timezone.now()
        current.lease_until = None
        if outcome.ok:
            current.status, current.finished_at = Delivery.Status.DELIVERED, now
            current.save(update_fields=["status", "finished_at", "lease_until"])
            if current.retry:
                Endpoint.objects.filter(pk=current.endpoint_id).update(consecutive_failures=0)
            return receipt
        retry_in = next_retry_delay(current)
        if outcome.status == 410 or retry_in is None:
            current.status, current.finished_at = Delivery.Status.FAILED, now
            current.save(update_fields=["status", "finished_at", "lease_until"])
        else:
            current.status = Delivery.Status.PENDING
            current.next_attempt_at = now + retry_in
            current.save(update_fields=["status", "next_attempt_at", "lease_until"])
            from .events import enqueue

            run_after, pk = current.next_attempt_at, current.pk
            transaction.on_commit(lambda: enqueue([pk], run_after=run_after))
        if not current.retry:
            return receipt  # a test event: it reports on the endpoint, it does not judge it
        Endpoint.objects.filter(pk=current.endpoint_id).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        failures = Endpoint.objects.values_list("consecutive_failures", flat=True).get(
            pk=current.endpoint_id
        )
        reason = None
        if outcome.status == 410:
            reason = "The endpoint answered 410 Gone."
        elif failures >= settings.PORTAL_WEBHOOK_DISABLE_AFTER_FAILURES:
            reason = f"{failures} delivery attempts in a row failed."
        if reason:
            endpoint_disable(endpoint=current.endpoint, reason=reason)
    return receipt


def next_retry_delay(delivery: Delivery) -> timedelta | None:
    """How long to wait before the next attempt, or None when this round has no more.

    The schedule (PORTAL_WEBHOOK_RETRY_SCHEDULE, seconds) grows roughly exponentially over
    about a day; each wait is jittered by ±20% so a receiver coming back is not hit by every
    retry at once.
    """
    if not delivery.retry:
        return None
    schedule = settings.PORTAL_WEBHOOK_RETRY_SCHEDULE
    index = delivery.attempts - delivery.round_start - 1
    if index >= len(schedule):
        return None
    return timedelta(seconds=schedule[index] * _jitter.uniform(0.8, 1.2))
