"""Read queries for pages. Each joins or prefetches what its page shows, so a page's query
count stays the same whether it lists ten rows or ten thousand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from .models import (
    VERIFYING_STATES,
    AuditEvent,
    Credential,
    CredentialVersion,
    RevokeReason,
    Rotation,
    State,
)

DASHBOARD_ROWS = 20


@dataclass(frozen=True)
class Dashboard:
    expiring_7: list[CredentialVersion]
    expiring_30: list[CredentialVersion]
    in_overlap: list[CredentialVersion]
    reversible: list[CredentialVersion]
    exposures: list[CredentialVersion]

    @property
    def empty(self) -> bool:
        return not any(
            (self.expiring_7, self.expiring_30, self.in_overlap, self.reversible, self.exposures)
        )


def _versions() -> QuerySet[CredentialVersion]:
    return CredentialVersion.objects.select_related("credential__app")


def versions_expiring(*, now: datetime, within_days: int, after_days: int = 0):
    """Live versions whose expiry falls between ``now + after_days`` and ``now + within_days``."""
    return (
        _versions()
        .filter(
            state__in=VERIFYING_STATES,
            expires_at__gt=now + timedelta(days=after_days),
            expires_at__lte=now + timedelta(days=within_days),
        )
        .order_by("expires_at")
    )


def versions_in_overlap(*, now: datetime):
    return _versions().filter(state=State.RETIRING, retire_at__gt=now).order_by("retire_at")


def revokes_still_reversible(*, now: datetime):
    """Revoked versions whose reactivation window is still open (never exposed ones)."""
    return (
        _versions()
        .filter(state=State.REVOKED, reactivation_deadline__gt=now)
        .exclude(revoke_reason=RevokeReason.EXPOSED)
        .order_by("reactivation_deadline")
    )


def recent_exposures(*, now: datetime, days: int = 30):
    return (
        _versions()
        .filter(revoke_reason=RevokeReason.EXPOSED, revoked_at__gte=now - timedelta(days=days))
        .order_by("-revoked_at")
    )


def dashboard(*, now: datetime) -> Dashboard:
    """What the home page lists: what expires soon, what overlaps, what can still be undone."""
    rows = DASHBOARD_ROWS
    return Dashboard(
        expiring_7=list(versions_expiring(now=now, within_days=7)[:rows]),
        expiring_30=list(versions_expiring(now=now, within_days=30, after_days=7)[:rows]),
        in_overlap=list(versions_in_overlap(now=now)[:rows]),
        reversible=list(revokes_still_reversible(now=now)[:rows]),
        exposures=list(recent_exposures(now=now)[:rows]),
    )


def credentials_for_changelist(queryset: QuerySet[Credential]) -> QuerySet[Credential]:
    """Credentials with their app and their live versions in two queries, however many rows."""
    live = CredentialVersion.objects.filter(state__in=VERIFYING_STATES).order_by("-number")
    return queryset.select_related("app", "endpoint").prefetch_related(
        Prefetch("versions", queryset=live, to_attr="live_versions")
    )


def versions_for_credential(credential: Credential) -> QuerySet[CredentialVersion]:
    return credential.versions.order_by("-number")


def credentials_expiring_within(queryset: QuerySet[Credential], *, now: datetime, days: int):
    return queryset.filter(
        versions__state__in=VERIFYING_STATES,
        versions__expires_at__lte=now + timedelta(days=days),
    ).distinct()


def reactivation_window() -> timedelta:
    return timedelta(minutes=settings.PORTAL_REACTIVATION_WINDOW_MINUTES)


TIMELINE_PAGE = 100


def audit_events_for_credential(credential: Credential) -> QuerySet[AuditEvent]:
    """Every event about the credential or one of its versions, oldest first.

    ``audit.append`` sets ``credential_id`` on both kinds, so this is one range of the
    ``(credential_id, seq)`` index, however large the whole trail is.
    """
    return AuditEvent.objects.filter(credential_id=credential.pk).order_by("seq")


@dataclass(frozen=True)
class TimelinePage:
    events: list[AuditEvent]  # oldest first
    older_than: int | None  # the ``before`` of the page of older events, if there is one


def timeline_page(
    credential: Credential, *, before: int | None = None, size: int = TIMELINE_PAGE
) -> TimelinePage:
    """The newest ``size`` events about ``credential`` older than event ``before``.

    Keyset pagination on ``seq``: each page costs one index range, not a count of the
    credential's whole history, and a page stays the same while new events arrive.
    """
    events = AuditEvent.objects.filter(credential_id=credential.pk)
    if before is not None:
        events = events.filter(seq__lt=before)
    newest_first = list(events.order_by("-seq")[: size + 1])
    more = len(newest_first) > size
    page = newest_first[:size]
    return TimelinePage(events=page[::-1], older_than=page[-1].seq if more and page else None)


def exposure_rotations_in_progress() -> QuerySet[Rotation]:
    """Exposure rotations not yet finished: the admin home and credential pages flag them."""
    return (
        Rotation.objects.filter(state=Rotation.Status.IN_PROGRESS, mode=Rotation.Mode.EXPOSURE)
        .select_related("credential__app", "old_version")
        .order_by("started_at")
    )
