"""Sign-in lockouts (django-axes): the audit record of a lock, and an administrator's unlock.

Axes counts failed sign-ins (a wrong password, or a wrong second-factor code) by username and
by address and refuses sign-in once either reaches PORTAL_LOCKOUT_FAILURE_LIMIT within the
cool-off. A username is only put in the audit trail when it names an existing account: what
someone typed into the username box may be a password, and the trail is never rewritten.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from .. import audit
from ..audit import Actor


def lockout_record(*, actor: Actor, username: str | None, ip_address: str | None) -> None:
    """Write ``user.locked_out`` for a lock that has just begun (called from axes'
    ``user_locked_out`` signal, once per lock: see ``credentials.signin``)."""
    user = _user_named(username)
    with transaction.atomic():
        attempt = (
            AccessAttempt.objects.filter(Q(username=username) | Q(ip_address=ip_address))
            .order_by("-attempt_time")
            .first()
        )
        target = user or attempt
        if target is None:
            return
        audit.append(
            actor=actor,
            action="user.locked_out",
            target=target,
            details={"known_user": user is not None, "ip": ip_address},
        )


def lockout_unlock(*, actor: Actor, attempts) -> int:
    """Lift the locks behind ``attempts`` (AccessAttempt rows): every counted failure with the
    same username or from the same address goes, each lifted lock is audited as
    ``user.unlocked``. Returns how many failure records were removed."""
    with transaction.atomic():
        chosen = list(AccessAttempt.objects.select_for_update().filter(pk__in=attempts))
        if not chosen:
            return 0
        matching = Q(pk__in=[a.pk for a in chosen])
        for attempt in chosen:
            if attempt.username:
                matching |= Q(username=attempt.username)
            if attempt.ip_address:
                matching |= Q(ip_address=attempt.ip_address)
        for attempt in chosen:
            user = _user_named(attempt.username)
            audit.append(
                actor=actor,
                action="user.unlocked",
                target=user or attempt,
                details={
                    "known_user": user is not None,
                    "ip": attempt.ip_address,
                    "failures": attempt.failures_since_start,
                },
            )
        removed, _ = AccessAttempt.objects.filter(matching).delete()
    return removed


def _user_named(username: str | None):
    if not username:
        return None
    return get_user_model().objects.filter(username=username).first()
