"""Versions: issue, rotate, revoke, reactivate, report exposure, expire."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import audit, crypto
from ..audit import Actor
from ..models import (
    BEARER_KINDS,
    VERIFYING_STATES,
    App,
    Credential,
    CredentialVersion,
    Endpoint,
    Kind,
    RevokeReason,
    Rotation,
    State,
)
from ..webhooks import events
from .common import (
    MAX_NOTE_LENGTH,
    InvalidRequest,
    Issued,
    TransitionRefused,
    _check_lifetime,
    _check_overlap,
    _clock,
    _iso,
    _lock_app,
    _lock_credential,
    _lock_version,
    _required_text,
    _valid_scopes,
    free_text,
)


@sensitive_variables("plaintext", "issued")
def credential_issue(
    *,
    actor: Actor,
    app: App,
    kind: str,
    name: str,
    scopes: list[str] | tuple[str, ...] = (),
    lifetime_days: int | None = None,
    overlap_seconds: int | None = None,
    public_key_pem: str | None = None,
    endpoint: Endpoint | None = None,
) -> Issued:
    """Create a credential and its first, active version. Audited as ``credential.issued``.

    Bearer kinds and endpoint secrets get a generated secret, returned once in
    ``Issued.plaintext``; a service-account key registers ``public_key_pem`` instead.
    """
    if kind not in Kind.values:
        raise InvalidRequest(f"Unknown credential kind {kind!r}.")
    name = _required_text("name", name, 120)
    scopes = _valid_scopes(kind, scopes)
    _check_lifetime(lifetime_days)
    if overlap_seconds is None:
        overlap_seconds = settings.PORTAL_DEFAULT_OVERLAP_HOURS * 3600
    _check_overlap(overlap_seconds)
    if (kind == Kind.ENDPOINT_SECRET) != (endpoint is not None):
        raise InvalidRequest(
            "Endpoint signing secrets are issued with their endpoint, and only then."
        )
    if endpoint is not None and endpoint.app_id != app.pk:
        raise InvalidRequest("That endpoint belongs to another app.")

    with transaction.atomic():
        app = _lock_app(app)
        if endpoint is not None and Credential.objects.filter(endpoint=endpoint).exists():
            raise TransitionRefused(
                "That endpoint already has its signing secret; rotate it instead."
            )
        credential = Credential.objects.create(
            app=app,
            kind=kind,
            name=name,
            endpoint=endpoint,
            scopes=scopes,
            lifetime_days=lifetime_days,
            overlap_seconds=overlap_seconds,
        )
        version, plaintext = _new_version(
            credential, actor=actor, now=timezone.now(), public_key_pem=public_key_pem
        )
        audit.append(
            actor=actor,
            action="credential.issued",
            target=version,
            app_id=app.pk,
            credential_id=credential.pk,
            details={
                "kind": kind,
                "version": version.number,
                "last_four": version.last_four,
                "fingerprint": version.fingerprint,
                "scopes": scopes,
                "expires_at": _iso(version.expires_at),
            },
        )
    return Issued(version=version, plaintext=plaintext)


@sensitive_variables("plaintext")
def credential_rotate(
    *,
    actor: Actor,
    credential: Credential,
    overlap_seconds: int | None = None,
    public_key_pem: str | None = None,
    rotation: Rotation | None = None,
) -> Issued:
    """Make a new active version; the old one retires for the overlap, or is revoked at once.

    With ``overlap_seconds`` > 0 the old active version becomes ``retiring`` until
    ``now + overlap`` (both verify meanwhile). With 0 it is revoked with reason ``rotated``. A
    version still retiring from an earlier rotation is revoked (reason ``rotated``) first, as
    at most one version may retire at a time. Audited, and sent as the ``credential.rotated``
    event.

    While a guided rotation of the credential is in progress, only that rotation (passed as
    ``rotation``) may rotate it: a second, unguided rotation would pull the versions out from
    under the person walking it.
    """
    overlap = credential.overlap_seconds if overlap_seconds is None else overlap_seconds
    _check_overlap(overlap)
    with transaction.atomic():
        credential = _lock_credential(credential)
        if credential.app.archived_at is not None:
            raise TransitionRefused(f"{credential.app.name} is archived; rotate nothing there.")
        guided = Rotation.objects.filter(credential=credential, state="in_progress").first()
        if guided is not None and (rotation is None or rotation.pk != guided.pk):
            raise TransitionRefused(
                f"A guided rotation of {credential.name} is in progress (started by "
                f"{guided.started_by}). Continue it, or abandon it first."
            )
        now = timezone.now()
        live = _expire_due(credential, actor=actor, now=now)
        old_active = live.get(State.ACTIVE)
        old_retiring = live.get(State.RETIRING)
        cut_short = None
        # At most one version retires at a time: a newer rotation ends the older overlap. With
        # no active version there is nothing to retire, so a retiring one keeps its overlap.
        if old_retiring is not None and old_active is not None:
            cut_short = old_retiring.number
            _mark_revoked(
                old_retiring,
                actor=actor,
                now=now,
                reason=RevokeReason.ROTATED,
                note="Overlap cut short by a newer rotation.",
            )
        if old_active is not None:
            if overlap > 0:
                old_active.state = State.RETIRING
                old_active.retire_at = now + timedelta(seconds=overlap)
                old_active.save(update_fields=["state", "retire_at"])
            else:
                _mark_revoked(old_active, actor=actor, now=now, reason=RevokeReason.ROTATED)
        version, plaintext = _new_version(
            credential, actor=actor, now=now, public_key_pem=public_key_pem
        )
        audit.append(
            actor=actor,
            action="credential.rotated",
            target=version,
            app_id=credential.app_id,
            credential_id=credential.pk,
            details={
                "new_version": version.number,
                "last_four": version.last_four,
                "fingerprint": version.fingerprint,
                "old_version": old_active.number if old_active else None,
                "old_state": old_active.state if old_active else None,
                "overlap_seconds": overlap,
                "retire_at": _iso(old_active.retire_at) if old_active and overlap else None,
                "retiring_version_revoked": cut_short,
                "expires_at": _iso(version.expires_at),
            },
        )
        previous = events.version_data(old_active) if old_active else None
        if previous is not None:
            previous["retire_at"] = _iso(old_active.retire_at) if overlap else None
        events.emit(
            "credential.rotated",
            credential=credential,
            data=events.credential_data(
                credential, version, previous_version=previous, overlap_seconds=overlap
            ),
        )
    return Issued(version=version, plaintext=plaintext)


def version_record_reveal(*, actor: Actor, version: CredentialVersion, channel: str) -> None:
    """Audit that a version's secret was shown (``credential.revealed``). Never records it."""
    with transaction.atomic():
        audit.append(
            actor=actor,
            action="credential.revealed",
            target=version,
            app_id=version.credential.app_id,
            credential_id=version.credential_id,
            details={"version": version.number, "last_four": version.last_four, "channel": channel},
        )


@sensitive_variables("plaintext")
def _new_version(
    credential: Credential, *, actor: Actor, now: datetime, public_key_pem: str | None
) -> tuple[CredentialVersion, str | None]:
    """Create the next version of a locked credential. Returns it with its plaintext (or None)."""
    number = (credential.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    lifetime = min(
        credential.lifetime_days or settings.PORTAL_MAX_LIFETIME_DAYS,
        settings.PORTAL_MAX_LIFETIME_DAYS,
    )
    version = CredentialVersion(
        credential=credential,
        number=number,
        state=State.ACTIVE,
        created_at=now,
        activated_at=now,
        created_by=actor.label[:200],
        expires_at=now + timedelta(days=lifetime),
    )
    plaintext = None
    if credential.kind == Kind.SERVICE_ACCOUNT_KEY:
        if public_key_pem is None:
            raise InvalidRequest("Paste the new service-account public key.")
        try:
            info = crypto.parse_public_key(public_key_pem)
        except crypto.CryptoError as error:
            raise InvalidRequest(str(error)) from None
        clash = CredentialVersion.objects.filter(fingerprint=info.fingerprint).first()
        if clash is not None:
            raise TransitionRefused(
                "That public key is already registered (version "
                f"{clash.number} of {clash.credential.name}). "
                "Make a new keypair for every rotation."
            )
        version.public_key_pem = info.pem
        version.key_algorithm = info.algorithm
        version.fingerprint = info.fingerprint
        version.last_four = crypto.last_four(info.fingerprint)
    else:
        if public_key_pem is not None:
            raise InvalidRequest("Only service-account credentials take a public key.")
        if credential.kind in BEARER_KINDS:
            plaintext = crypto.generate_token(credential.kind)
            key_id, key = settings.PORTAL_TOKEN_HASH_KEYS.current
            version.digest = crypto.token_digest(plaintext, key)
            version.digest_key_id = key_id
        else:
            plaintext = crypto.generate_webhook_secret()
            version.ciphertext = crypto.encrypt(
                plaintext.encode("ascii"),
                keyring=settings.PORTAL_ENCRYPTION_KEYS,
                associated_data=version.associated_data,
            )
        version.last_four = crypto.last_four(plaintext)
        version.fingerprint = crypto.secret_fingerprint(plaintext)
    version.save(force_insert=True)
    return version, plaintext


def version_revoke(
    *, actor: Actor, version: CredentialVersion, reason: str, note: str = ""
) -> CredentialVersion:
    """Stop a version from verifying or signing, at once.

    Audited, and sent as the ``credential.revoked`` event.

    ``reason`` is one of RevokeReason; ``other`` needs a note. Unless the reason is
    ``exposed``, the revoke can be undone for PORTAL_REACTIVATION_WINDOW_MINUTES.
    """
    if reason not in RevokeReason.values:
        raise InvalidRequest("Choose a reason for the revoke.")
    if reason == RevokeReason.EXPOSED:
        raise InvalidRequest("Report an exposed version as exposed, not as an ordinary revoke.")
    note = free_text(note, MAX_NOTE_LENGTH)
    if reason == RevokeReason.OTHER and not note:
        raise InvalidRequest("Say why in the note when the reason is 'other'.")
    with transaction.atomic():
        credential = _lock_credential(version.credential)
        version = _lock_version(version)
        now = timezone.now()
        _expire_due(credential, actor=actor, now=now)
        version.refresh_from_db()
        if version.state not in VERIFYING_STATES:
            raise TransitionRefused(
                f"Version {version.number} ({version.masked}) is already {version.state}."
            )
        previous = version.state
        _mark_revoked(version, actor=actor, now=now, reason=reason, note=note)
        audit.append(
            actor=actor,
            action="credential.revoked",
            target=version,
            app_id=credential.app_id,
            credential_id=credential.pk,
            details={
                "version": version.number,
                "last_four": version.last_four,
                "reason": reason,
                "note": note,
                "previous_state": previous,
                "reactivation_deadline": _iso(version.reactivation_deadline),
            },
        )
        events.emit(
            "credential.revoked",
            credential=credential,
            data=events.credential_data(credential, version, reason=reason),
        )
    return version


def version_reactivate(*, actor: Actor, version: CredentialVersion) -> CredentialVersion:
    """Undo a revoke inside its window, restoring the state the version had before.

    Refused when the window has closed, when the reason was ``exposed``, when the version's
    lifetime or overlap ran out meanwhile, or when another version now holds that state (two
    active versions are never allowed). Audited, and sent as the ``credential.reactivated`` event.
    """
    with transaction.atomic():
        credential = _lock_credential(version.credential)
        version = _lock_version(version)
        now = timezone.now()
        _expire_due(credential, actor=actor, now=now)
        if version.state != State.REVOKED:
            raise TransitionRefused(
                f"Version {version.number} is {version.state}; only a revoked version can be "
                "reactivated."
            )
        if version.revoke_reason == RevokeReason.EXPOSED:
            raise TransitionRefused(
                f"Version {version.number} ({version.masked}) was revoked because it was exposed. "
                "An exposed secret never comes back: rotate to a new one instead."
            )
        if version.reactivation_deadline is None or now > version.reactivation_deadline:
            raise TransitionRefused(
                f"The reactivation window for version {version.number} closed at "
                f"{_clock(version.reactivation_deadline)}. Rotate to a new version instead."
            )
        restored = version.state_before_revoke
        if version.expires_at is not None and now >= version.expires_at:
            raise TransitionRefused(
                f"Version {version.number} reached its expiry meanwhile; it cannot come back."
            )
        if restored == State.RETIRING and now >= version.retire_at:
            raise TransitionRefused(
                f"Version {version.number}'s overlap ended at {_clock(version.retire_at)}; "
                "it cannot come back."
            )
        holder = credential.versions.filter(state=restored).exclude(pk=version.pk).first()
        if holder is not None:
            raise TransitionRefused(
                f"Reactivating version {version.number} would leave two {restored} versions: "
                f"version {holder.number} ({holder.masked}) is {restored} now. Revoke it first, "
                "or keep it and leave this one revoked."
            )
        revoked_reason = version.revoke_reason
        version.state = restored
        version.revoked_at = None
        version.revoked_by = ""
        version.revoke_reason = ""
        version.revoke_note = ""
        version.state_before_revoke = ""
        version.reactivation_deadline = None
        version.save()
        audit.append(
            actor=actor,
            action="credential.reactivated",
            target=version,
            app_id=credential.app_id,
            credential_id=credential.pk,
            details={
                "version": version.number,
                "last_four": version.last_four,
                "restored_state": restored,
                "revoked_reason": revoked_reason,
            },
        )
        events.emit(
            "credential.reactivated",
            credential=credential,
            data=events.credential_data(credential, version),
        )
    return version


def version_report_exposure(
    *, actor: Actor, version: CredentialVersion, note: str = ""
) -> CredentialVersion:
    """Record that a version leaked: revoke it at once with reason ``exposed``, for good.

    A version already revoked for another reason is re-marked ``exposed``, which closes its
    reactivation window. Reporting an expired version records the report and changes nothing
    else. Audited as ``credential.exposed`` and sent as the ``credential.exposed`` event. (The
    exposure-mode rotation that follows is built on top of this.)
    """
    note = free_text(note, MAX_NOTE_LENGTH)
    with transaction.atomic():
        credential = _lock_credential(version.credential)
        version = _lock_version(version)
        now = timezone.now()
        _expire_due(credential, actor=actor, now=now)
        version.refresh_from_db()
        previous = version.state
        if version.state in VERIFYING_STATES:
            _mark_revoked(version, actor=actor, now=now, reason=RevokeReason.EXPOSED, note=note)
        elif version.state == State.REVOKED:
            if version.revoke_reason == RevokeReason.EXPOSED:
                raise TransitionRefused(
                    f"Version {version.number} ({version.masked}) is already reported as exposed."
                )
            version.revoke_reason = RevokeReason.EXPOSED
            version.revoke_note = note or version.revoke_note
            version.reactivation_deadline = None
            version.save(update_fields=["revoke_reason", "revoke_note", "reactivation_deadline"])
        audit.append(
            actor=actor,
            action="credential.exposed",
            target=version,
            app_id=credential.app_id,
            credential_id=credential.pk,
            details={
                "version": version.number,
                "last_four": version.last_four,
                "previous_state": previous,
                "note": note,
            },
        )
        events.emit(
            "credential.exposed",
            credential=credential,
            data=events.credential_data(credential, version, previous_state=previous),
        )
    return version


def versions_expire(*, now: datetime | None = None) -> int:
    """Record the expiry of every version whose lifetime or overlap has ended. Returns a count.

    Verification already refuses such versions on its own (it checks the times), so this sweep
    only makes the state visible, audited and sent as ``credential.expired`` events. Each
    credential is handled in its own transaction; a crash part-way loses nothing, as the next
    sweep picks up the rest.
    """
    now = now or timezone.now()
    due = (
        CredentialVersion.objects.filter(_due_filter(now))
        .values_list("credential_id", flat=True)
        .distinct()
    )
    expired = 0
    for credential_id in list(due):
        with transaction.atomic():
            credential = Credential.objects.select_for_update().get(pk=credential_id)
            before = credential.versions.filter(_due_filter(now)).count()
            _expire_due(credential, actor=Actor.system("expiry sweep"), now=now)
            expired += before
    return expired


def _due_filter(now: datetime) -> Q:
    return Q(state__in=VERIFYING_STATES, expires_at__lte=now) | Q(
        state=State.RETIRING, retire_at__lte=now
    )


def _expire_due(credential: Credential, *, actor: Actor, now: datetime) -> dict:
    """Expire the locked credential's versions that are due; return its live ones by state."""
    live = {}
    for version in credential.versions.select_for_update().filter(state__in=VERIFYING_STATES):
        if version.verifies_at(now):
            live[version.state] = version
            continue
        why = (
            "overlap ended"
            if (version.state == State.RETIRING and now >= version.retire_at)
            else "lifetime ended"
        )
        previous = version.state
        version.state = State.EXPIRED
        version.expired_at = now
        version.save(update_fields=["state", "expired_at"])
        audit.append(
            actor=actor,
            action="credential.expired",
            target=version,
            app_id=credential.app_id,
            credential_id=credential.pk,
            details={
                "version": version.number,
                "last_four": version.last_four,
                "previous_state": previous,
                "why": why,
            },
        )
        events.emit(
            "credential.expired",
            credential=credential,
            data=events.credential_data(credential, version, why=why),
        )
    return live


def _mark_revoked(
    version: CredentialVersion, *, actor: Actor, now: datetime, reason: str, note: str = ""
) -> None:
    window = timedelta(minutes=settings.PORTAL_REACTIVATION_WINDOW_MINUTES)
    version.state_before_revoke = version.state
    version.state = State.REVOKED
    version.revoked_at = now
    version.revoked_by = actor.label[:200]
    version.revoke_reason = reason
    version.revoke_note = note
    version.reactivation_deadline = None if reason == RevokeReason.EXPOSED else now + window
    version.save()
