"""The clock's one pass: expire, warn of expiry, hand stuck deliveries back, write last use,
prune.

Safe to run in two processes at once and to re-run after a crash: expiry and expiry notices
lock the credential row and are held to once by database constraints, a re-queued delivery is
claimed by a conditional update (a duplicate task finds nothing to do), and pruning deletes
only what is old enough.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from .. import once, usage
from ..api import idempotency
from ..lifecycle import version_notify_expiring, versions_expire
from ..models import CredentialVersion, Delivery, DeliveryReceipt, State, WebhookMessage
from .events import enqueue
from .tasks import deliver

log = logging.getLogger(__name__)
_BATCH = 1000


@dataclass(frozen=True)
class SweepReport:
    expired: int
    expiring_notices: int
    requeued: int
    pruned_receipts: int
    last_use_written: int = 0
    pruned_answers: int = 0

    def __str__(self):
        return (
            f"Expired {self.expired} version(s), sent {self.expiring_notices} expiry notice(s), "
            f"re-queued {self.requeued} delivery(ies), pruned {self.pruned_receipts} receipt(s), "
            f"wrote the last use of {self.last_use_written} version(s), deleted "
            f"{self.pruned_answers} stored API answer(s)."
        )


def sweep(*, now: datetime | None = None) -> SweepReport:
    """One pass of everything the clock does, in an order where each step is independent."""
    now = now or timezone.now()
    expired = versions_expire(now=now)
    notices = send_expiring_notices(now=now)
    requeued = requeue_stuck_deliveries(now=now)
    pruned = prune(now=now)
    once.prune()
    # Uses a stopped or idle web process left in a shared cache (a no-op for the in-process
    # default, whose counters only their own process sees), and the API's stored answers past
    # their 24 hours: the ciphertext of secrets no one may see again.
    written = usage.flush_pending(now=now)
    answers = idempotency.prune(now=now)
    return SweepReport(expired, notices, requeued, pruned, written, answers)


def send_expiring_notices(*, now: datetime) -> int:
    """Warn about every active version inside a threshold it has not been warned about."""
    horizon = now + timedelta(days=max(settings.PORTAL_EXPIRY_NOTICE_DAYS))
    candidates = (
        CredentialVersion.objects.filter(
            state=State.ACTIVE, expires_at__gt=now, expires_at__lte=horizon
        )
        .select_related("credential")
        .order_by("expires_at")
    )
    sent = 0
    for version in candidates.iterator(chunk_size=_BATCH):
        if version_notify_expiring(version=version, now=now) is not None:
            sent += 1
    return sent


def requeue_stuck_deliveries(*, now: datetime) -> int:
    """Queue again the deliveries no worker is going to finish.

    That is, in flight with the lease run out (its worker died or hung), or pending and due
    for longer than a lease with no task waiting for it (the queue lost it, or it was
    enqueued before a crash). A delivery queued twice is still attempted once at a time: the
    claim is a conditional update.
    """
    grace = timedelta(seconds=settings.PORTAL_WEBHOOK_LEASE_SECONDS)
    stuck = Delivery.objects.filter(
        Q(status=Delivery.Status.IN_FLIGHT, lease_until__lt=now)
        | Q(status=Delivery.Status.PENDING, next_attempt_at__lt=now - grace),
        retry=True,
    ).values_list("pk", "status")[:_BATCH]
    waiting = set()
    pending_ids = [pk for pk, status in stuck if status == Delivery.Status.PENDING]
    if pending_ids:
        queued = DBTaskResult.objects.filter(
            status=TaskResultStatus.READY, task_path=deliver.module_path
        ).values_list("args_kwargs", flat=True)
        waiting = {args["args"][0] for args in queued if args.get("args")}
    ids = [pk for pk, status in stuck if pk not in waiting]
    enqueue(ids)
    if ids:
        log.info("re-queued %s stuck webhook deliveries", len(ids))
    return len(ids)


def prune(*, now: datetime) -> int:
    """Delete receipts, finished deliveries and their messages past the retention time, and
    finished task results. Returns the number of receipts deleted."""
    cutoff = now - timedelta(days=settings.PORTAL_WEBHOOK_RECEIPT_RETENTION_DAYS)
    receipts, _ = DeliveryReceipt.objects.filter(started_at__lt=cutoff).delete()
    finished = (Delivery.Status.DELIVERED, Delivery.Status.FAILED, Delivery.Status.CANCELLED)
    Delivery.objects.filter(status__in=finished, finished_at__lt=cutoff).delete()
    # A test event whose sender died mid-request is never retried; it goes with its age.
    Delivery.objects.filter(retry=False, created_at__lt=cutoff).delete()
    WebhookMessage.objects.filter(created_at__lt=cutoff, deliveries__isnull=True).delete()
    DBTaskResult.objects.filter(
        Q(status__in=(TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED))
        | Q(status=TaskResultStatus.RUNNING),  # a worker killed mid-task leaves these behind
        task_path=deliver.module_path,
        enqueued_at__lt=cutoff,
    ).delete()
    return receipts
