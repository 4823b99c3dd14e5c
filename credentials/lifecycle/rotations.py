"""Guided rotations: start (or join), walk each step, go back where safe, abandon, complete.

Every function locks the credential row first and then the rotation row (the lock order of
every transition), and checks that the step the caller means is still the current one: two
people on the same step, a stale tab or a replayed form find the step already done and
change nothing. Versions change only through the version transitions, called from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import audit, crypto, playbooks, usage
from ..audit import Actor
from ..models import (
    VERIFYING_STATES,
    Credential,
    CredentialVersion,
    RevokeReason,
    Rotation,
    State,
)
from .common import InvalidRequest, Issued, TransitionRefused, _iso, _lock_credential, free_text
from .versions import credential_rotate, version_reactivate, version_report_exposure, version_revoke

MAX_ROTATION_OVERLAP = playbooks.MAX_OVERLAP_DAYS * 24 * 3600


class OldVersionInUse(TransitionRefused):
    """The old version was used within the quiet period: revoking needs a second confirmation."""


def steps_of(rotation: Rotation) -> tuple[playbooks.Step, ...]:
    return playbooks.for_kind(rotation.playbook).steps(rotation.mode)


def current_step(rotation: Rotation) -> playbooks.Step | None:
    steps = steps_of(rotation)
    return steps[rotation.step] if rotation.in_progress and rotation.step < len(steps) else None


def can_go_back(rotation: Rotation) -> bool:
    """Back is safe when the step before only asked or checked something: going back past a
    generate or a revoke would offer to mint or revoke again."""
    if not rotation.in_progress or rotation.step == 0:
        return False
    return steps_of(rotation)[rotation.step - 1].kind in (playbooks.CONFIRM, playbooks.CHECK)


# --------------------------------------------------------------------------- start and join


def rotation_start(
    *,
    actor: Actor,
    credential: Credential,
    mode: str = playbooks.ROUTINE,
    exposed_version: CredentialVersion | None = None,
    note: str = "",
) -> tuple[Rotation, bool]:
    """Start a guided rotation of ``credential``, or join the one already in progress.

    Returns ``(rotation, started)``. Joining is audited as ``rotation.resumed``, starting as
    ``rotation.started``. In exposure mode ``exposed_version`` is reported exposed first (revoked
    for good, ``credential.exposed``) in the same transaction; a routine rotation in progress is
    abandoned for it, as the exposure changes what has to happen.
    """
    if mode not in (playbooks.ROUTINE, playbooks.EXPOSURE):
        raise InvalidRequest("Unknown rotation mode.")
    if (mode == playbooks.EXPOSURE) != (exposed_version is not None):
        raise InvalidRequest("An exposure rotation starts from the version that was exposed.")
    if exposed_version is not None and exposed_version.credential_id != credential.pk:
        raise InvalidRequest("That version belongs to another credential.")
    with transaction.atomic():
        credential = _lock_credential(credential)
        if credential.app.archived_at is not None:
            raise TransitionRefused(f"{credential.app.name} is archived; rotate nothing there.")
        current = (
            Rotation.objects.select_for_update().filter(credential=credential, state="in_progress")
        ).first()
        if exposed_version is not None:
            version_report_exposure(actor=actor, version=exposed_version, note=note)
            exposed_version.refresh_from_db()
        if current is not None and not (
            mode == playbooks.EXPOSURE and current.mode == playbooks.ROUTINE
        ):
            _log(current, actor, "joined", "Opened the rotation and joined it.")
            current.save(update_fields=["log"])
            _audit(current, actor, "rotation.resumed", {"step": current.step})
            return current, False
        if current is not None:
            _abandon_locked(current, actor, "An exposure was reported; an exposure rotation "
                            "takes over.")  # fmt: skip
        now = timezone.now()
        rotation = Rotation(
            credential=credential,
            playbook=credential.kind,
            mode=mode,
            started_by=actor.label[:200],
            started_at=now,
            step_started_at=now,
            old_version=exposed_version or credential.versions.filter(state=State.ACTIVE).first(),
        )
        if mode == playbooks.EXPOSURE:
            rotation.overlap_seconds = 0
            rotation.step = 1
            _log(rotation, actor, "done", f"Revoked {exposed_version.masked} (version "
                 f"{exposed_version.number}) as exposed; it can never be reactivated.",
                 step="revoke_exposed")  # fmt: skip
        try:
            with transaction.atomic():  # the constraint is the last word if two start at once
                rotation.save(force_insert=True)
        except IntegrityError:
            raise TransitionRefused(
                f"Someone else started a rotation of {credential.name} just now. Open it from "
                "the credential page to join it."
            ) from None
        _audit(rotation, actor, "rotation.started", {
            "mode": mode, "playbook": rotation.playbook,
            "old_version": rotation.old_version.number if rotation.old_version else None,
        })  # fmt: skip
    return rotation, True


def exposure_report(*, actor: Actor, version: CredentialVersion, note: str = "") -> Rotation | None:
    """Report ``version`` exposed: revoked for good at once, then its exposure rotation.

    The one entry point for a person, a bulk action, the API and a scanner report. Only a
    version that still worked (active or retiring) opens an exposure rotation: its users need
    a new secret. A version already stopped (expired, or revoked for another reason) is only
    marked exposed, which closes any reactivation window; nothing else of the credential is
    touched, so a leaked old key never abandons a rotation in progress or revokes the key
    that replaced it. The revoke never waits on the rotation either: if the exposure rotation
    cannot start (an archived app gets no new versions; another rotation began in the same
    instant), the version is still revoked on its own. Returns the rotation, or None when none
    was opened. Raises ``TransitionRefused`` when the version was already reported exposed.
    """
    version.refresh_from_db(fields=["state"])
    if version.state in VERIFYING_STATES:
        try:
            rotation, _ = rotation_start(
                actor=actor,
                credential=version.credential,
                mode=playbooks.EXPOSURE,
                exposed_version=version,
                note=note,
            )
        except TransitionRefused:
            pass  # rotation_start rolled everything back, the revoke included: revoke alone
        else:
            version.refresh_from_db()
            return rotation
    # Refuses in turn if the version was already reported exposed, which is the answer then.
    version_report_exposure(actor=actor, version=version, note=note)
    version.refresh_from_db()
    return None


def rotation_join(*, actor: Actor, rotation: Rotation) -> Rotation:
    """Record that ``actor`` opened a rotation in progress they had no part in yet: a
    ``joined`` entry in its log and ``rotation.resumed`` in the audit trail, once per person.
    Does nothing for a finished rotation or someone already in its log."""
    with transaction.atomic():
        _lock_credential(rotation.credential)
        rotation = Rotation.objects.select_for_update(of=("self",)).get(pk=rotation.pk)
        label = actor.label[:200]
        if not rotation.in_progress or label == rotation.started_by:
            return rotation
        if any(entry.get("by") == label for entry in rotation.log):
            return rotation
        _log(rotation, actor, "joined", "Opened the rotation and joined it.")
        rotation.save(update_fields=["log"])
        _audit(rotation, actor, "rotation.resumed", {"step": rotation.step})
    return rotation


# --------------------------------------------------------------------------- the steps


def rotation_confirm(
    *,
    actor: Actor,
    rotation: Rotation,
    step: int,
    ticked: list[int] | tuple[int, ...],
    overlap_seconds: int | None = None,
) -> Rotation:
    """Record a confirm step: every item of its checklist ticked (and, on the plan step of a
    routine rotation, the overlap chosen, 0 to 7 days). Moves to the next step."""
    with transaction.atomic():
        rotation, current = _lock_at(rotation, step, playbooks.CONFIRM)
        missing = [item for n, item in enumerate(current.checklist) if n not in set(ticked)]
        if missing:
            raise InvalidRequest("Tick every item before continuing: " + " ".join(missing))
        what = "Confirmed: " + " ".join(current.checklist) if current.checklist else "Done."
        details = {}
        if current.plan and rotation.mode == playbooks.ROUTINE:
            if not isinstance(overlap_seconds, int) or not (
                0 <= overlap_seconds <= MAX_ROTATION_OVERLAP
            ):
                raise InvalidRequest("Choose an overlap from 0 to 7 days.")
            rotation.overlap_seconds = overlap_seconds
            details["overlap_seconds"] = overlap_seconds
            what += f" Overlap: {describe_seconds(overlap_seconds)}."
        _log(rotation, actor, "done", what)
        return _advance(rotation, actor, current, details)


@sensitive_variables("issued")
def rotation_generate(
    *, actor: Actor, rotation: Rotation, step: int, public_key_pem: str | None = None
) -> Issued:
    """Make the new version (``credential_rotate`` with the planned overlap) and move on.

    The plaintext, if any, comes back once in ``Issued`` and is never stored here. The version
    that was active becomes the rotation's old version.
    """
    with transaction.atomic():
        rotation, current = _lock_at(rotation, step, playbooks.GENERATE)
        active = rotation.credential.versions.filter(state=State.ACTIVE).first()
        issued = credential_rotate(
            actor=actor,
            credential=rotation.credential,
            overlap_seconds=rotation.overlap_seconds or 0,
            public_key_pem=public_key_pem,
            rotation=rotation,
        )
        if rotation.mode == playbooks.ROUTINE:
            rotation.old_version = active
        rotation.new_version = issued.version
        made = issued.version
        what = f"Made version {made.number} ({made.masked})."
        if rotation.mode == playbooks.ROUTINE and active is not None:
            active.refresh_from_db()
            what += " " + old_version_fate(active)
        _log(rotation, actor, "done", what)
        _advance(rotation, actor, current, {"new_version": made.number})
    return issued


def rotation_revoke_old(
    *, actor: Actor, rotation: Rotation, step: int, in_use_confirmed: bool = False
) -> Rotation:
    """Revoke the old version (reason ``rotated``) and move on, usually to completion.

    Refused with ``OldVersionInUse`` while the old version was used within the quiet period
    (PORTAL_ROTATION_QUIET_MINUTES), unless ``in_use_confirmed``. An old version that already
    stopped (overlap 0, expired, revoked elsewhere) is recorded as such and not touched.
    """
    with transaction.atomic():
        rotation, current = _lock_at(rotation, step, playbooks.REVOKE)
        old = rotation.old_version
        if old is not None:
            old.refresh_from_db()
        if old is None or old.state not in VERIFYING_STATES:
            what = (
                "There was no old version to revoke."
                if old is None
                else f"Version {old.number} ({old.masked}) had already stopped ({old.state})."
            )
            _log(rotation, actor, "done", what)
            return _advance(rotation, actor, current, {})
        quiet = timedelta(minutes=settings.PORTAL_ROTATION_QUIET_MINUTES)
        now = timezone.now()
        # Uses not yet written to the row count too: the row may be a minute behind.
        last_used = usage.latest_use(old)
        recently = last_used is not None and now - last_used < quiet
        if recently and not in_use_confirmed:
            raise OldVersionInUse(
                f"Version {old.number} ({old.masked}) was used {_ago(now - last_used)} "
                f"ago, within the last {settings.PORTAL_ROTATION_QUIET_MINUTES} minutes: "
                "something may still depend on it. Revoking it now can cause an outage."
            )
        revoked = version_revoke(
            actor=actor,
            version=old,
            reason=RevokeReason.ROTATED,
            note=f"Revoked by guided rotation #{rotation.pk}.",
        )
        what = f"Revoked version {old.number} ({old.masked})."
        if recently:
            what += " It had been used within the quiet period; revoked anyway, on purpose."
        if revoked.reactivation_deadline:
            what += f" It can be reactivated until {_clock(revoked.reactivation_deadline)}."
        _log(rotation, actor, "done", what)
        return _advance(rotation, actor, current, {"revoked_version": old.number})


def rotation_back(*, actor: Actor, rotation: Rotation, step: int) -> Rotation:
    """Go back one step, where that is safe (see ``can_go_back``). Audited."""
    with transaction.atomic():
        rotation, current = _lock_at(rotation, step, None)
        if not can_go_back(rotation):
            raise TransitionRefused(
                "Going back from here is not possible: the step before made or revoked a "
                "version, and doing that again is a new rotation."
            )
        rotation.step -= 1
        rotation.step_started_at = timezone.now()
        if steps_of(rotation)[rotation.step].check == playbooks.POSSESSION:
            _fresh_challenge(rotation)
        _log(rotation, actor, "back", f"Went back from “{current.title}”.")
        rotation.save()
        _audit(rotation, actor, "rotation.stepped_back", {"from_step": step, "to": step - 1})
    return rotation


# --------------------------------------------------------------------------- abandoning


def abandon_consequences(rotation: Rotation) -> list[str]:
    """What abandoning would do to the versions, in words, as ``rotation_abandon`` does it."""
    return _abandon_plan(rotation)[1]


def abandon_brings_old_back(rotation: Rotation) -> bool:
    """Whether abandoning now would revoke the new version and make the old one work again."""
    return _abandon_plan(rotation)[0] in ("restore", "reactivate")


def rotation_abandon(*, actor: Actor, rotation: Rotation, note: str = "") -> Rotation:
    """Stop a rotation before its end. Audited as ``rotation.abandoned``.

    In a routine rotation whose new version was made while the old one can still come back
    (retiring, or revoked by overlap 0 with its window open), the new version is revoked and
    the old one is active again: the credential is as it was before. Otherwise the versions
    stay as they are (an exposed version never comes back; a new version that is the only
    working one is kept). ``abandon_consequences`` says which, before the click.
    """
    note = free_text(note, 500)
    with transaction.atomic():
        _lock_credential(rotation.credential)
        rotation = Rotation.objects.select_for_update().get(pk=rotation.pk)
        if not rotation.in_progress:
            raise TransitionRefused(f"This rotation is already {rotation.get_state_display()}.")
        return _abandon_locked(rotation, actor, note)


def _abandon_plan(rotation: Rotation) -> tuple[str, list[str]]:
    new, old = rotation.new_version, rotation.old_version
    for version in (new, old):
        if version is not None:
            version.refresh_from_db()
    if new is None:
        return "none", ["No new version was made: the credential's versions stay as they are."]
    if new.state not in VERIFYING_STATES:
        return "none", [f"The new version {new.masked} has already stopped; nothing changes."]
    if rotation.mode == playbooks.EXPOSURE or old is None:
        return "keep", [
            f"The new version {new.masked} stays active: it is the only working one.",
            *(["The exposed version stays revoked for good."] if old else []),
        ]
    back = [f"The new version {new.masked} is revoked (its secret stops working now)."]
    if old.state == State.RETIRING and old.verifies_at(timezone.now()):
        return "restore", [*back, f"The old version {old.masked} becomes active again, with "
                           "no end to its overlap."]  # fmt: skip
    window_open = (
        old.state == State.REVOKED
        and old.revoke_reason == RevokeReason.ROTATED
        and old.reactivation_deadline is not None
        and timezone.now() <= old.reactivation_deadline
    )
    if window_open:
        return "reactivate", [*back, f"The old version {old.masked} is reactivated."]
    return "keep", [
        f"The new version {new.masked} stays active: the old version {old.masked} can no "
        f"longer come back ({old.state})."
    ]


def _abandon_locked(rotation: Rotation, actor: Actor, note: str) -> Rotation:
    plan, consequences = _abandon_plan(rotation)
    new, old = rotation.new_version, rotation.old_version
    if plan in ("restore", "reactivate"):
        version_revoke(actor=actor, version=new, reason=RevokeReason.OTHER,
                       note=f"Guided rotation #{rotation.pk} was abandoned.")  # fmt: skip
        if plan == "reactivate":
            version_reactivate(actor=actor, version=old)
        else:
            # Retiring → active: the overlap is cancelled, the version never stopped working.
            old.state, old.retire_at = State.ACTIVE, None
            old.save(update_fields=["state", "retire_at"])
    rotation.state = Rotation.Status.ABANDONED
    rotation.finished_at = timezone.now()
    rotation.finished_by = actor.label[:200]
    _log(rotation, actor, "abandoned", " ".join([*consequences, *([note] if note else [])]))
    rotation.save()
    _audit(rotation, actor, "rotation.abandoned", {
        "step": rotation.step, "outcome": plan, "note": note,
        "new_version": new.number if new else None, "old_version": old.number if old else None,
    })  # fmt: skip
    return rotation


# --------------------------------------------------------------------------- reading


def old_version_fate(old: CredentialVersion) -> str:
    """When the old version stops working on its own, in a sentence."""
    if old.state == State.RETIRING:
        return f"The old version {old.masked} keeps working until {_clock(old.retire_at)}."
    if old.state == State.REVOKED:
        return f"The old version {old.masked} stopped working at once (overlap 0)."
    return f"The old version {old.masked} is {old.state}."


def describe_seconds(seconds: int) -> str:
    if seconds == 0:
        return "none"
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day" + ("s" if seconds != 86400 else "")
    hours = f"{seconds / 3600:g}"
    return f"{hours} hour" + ("" if hours == "1" else "s")


# --------------------------------------------------------------------------- internals


def _lock_at(rotation: Rotation, step: int, kind: str | None, check: str = ""):
    """Lock credential then rotation; refuse unless ``step`` is current (and of ``kind``)."""
    _lock_credential(rotation.credential)
    rotation = (
        Rotation.objects.select_for_update(of=("self",))
        .select_related("credential__app", "old_version", "new_version")
        .get(pk=rotation.pk)
    )
    if not rotation.in_progress:
        raise TransitionRefused(
            f"This rotation is {rotation.get_state_display().lower()}; nothing was changed."
        )
    current = current_step(rotation)
    if step != rotation.step or current is None:
        raise TransitionRefused(
            "That step is not the current one any more (someone else, or another tab, moved "
            "the rotation on). Nothing was changed; here is where it stands now."
        )
    if (kind is not None and current.kind != kind) or (check and current.check != check):
        raise InvalidRequest("That action does not belong to the current step.")
    return rotation, current


def _advance(rotation: Rotation, actor: Actor, done: playbooks.Step, details: dict) -> Rotation:
    now = timezone.now()
    rotation.step += 1
    rotation.step_started_at = now
    _audit(rotation, actor, "rotation.step_completed", {"step": done.key, **details})
    steps = steps_of(rotation)
    if rotation.step >= len(steps):
        rotation.state = Rotation.Status.COMPLETED
        rotation.finished_at = now
        rotation.finished_by = actor.label[:200]
        _log(rotation, actor, "completed", "The rotation is complete.")
        _audit(rotation, actor, "rotation.completed", {"mode": rotation.mode})
    elif steps[rotation.step].check == playbooks.POSSESSION:
        _fresh_challenge(rotation)
    rotation.save()
    return rotation


def _fresh_challenge(rotation: Rotation) -> None:
    if rotation.challenge:
        rotation.earlier_challenges = [*rotation.earlier_challenges, rotation.challenge][-10:]
    rotation.challenge = crypto.new_challenge()


def _log(rotation: Rotation, actor: Actor, outcome: str, what: str, *, step=None, facts=None):
    steps = steps_of(rotation)
    key = step or (steps[rotation.step].key if rotation.step < len(steps) else "")
    entry = {"at": _iso(timezone.now()), "by": actor.label[:200], "step": key,
             "outcome": outcome, "what": crypto.redact(what)}  # fmt: skip
    if facts:
        entry["facts"] = facts
    rotation.log = [*rotation.log, entry]


def _audit(rotation: Rotation, actor: Actor, action: str, details: dict) -> None:
    audit.append(
        actor=actor,
        action=action,
        target=rotation,
        app_id=rotation.credential.app_id,
        credential_id=rotation.credential_id,
        details={"rotation": rotation.pk, **details},
    )


def _ago(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _clock(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")
