"""The guided rotation's pages: start or join, one page per step, abandon, live activity.

Every step form carries a one-time token (``credentials/once.py``) bound to the user, the
rotation and the step number. The POST claims it in the transaction that acts, and the
lifecycle refuses a step that is no longer current: a double click, a reload, a back button
or a stale tab changes nothing, never mints a second secret and never repeats a revoke. The
generate step renders the secret in the response to its POST only (``Cache-Control:
no-store``); a re-sent form gets "already displayed" and the last four characters.

Security staff and administrators act; auditors see every page and its log, without forms.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .. import crypto, lifecycle, once, playbooks, sudo, webhooks
from ..admin.access import as_id, object_for
from ..audit import Actor
from ..lifecycle import rotation_checks as checks
from ..lifecycle import rotations as walk
from ..models import VERIFYING_STATES, Credential, Kind, Rotation
from . import render_admin
from .reveal import STALE_FORM, already_displayed, credential_url

ACT = "credentials.rotate_credential"
_ROTATIONS = Rotation.objects.select_related("credential__app", "old_version", "new_version")


def rotation_url(rotation: Rotation) -> str:
    return reverse("admin:credentials_rotation", args=[rotation.pk])


def _rotation_for(request, rotation_id, *, act: bool) -> Rotation:
    """Outsiders get 404; people who may look but not rotate get 403 when they try to act."""
    if not request.user.has_perm("credentials.view_credential") or as_id(rotation_id) is None:
        raise Http404
    rotation = get_object_or_404(_ROTATIONS, pk=rotation_id)
    if act and not request.user.has_perm(ACT):
        raise PermissionDenied
    return rotation


def _target(rotation: Rotation, step: int | None) -> str:
    return f"rotation:{rotation.pk}:{step}"


def _step_needs_sudo(rotation: Rotation) -> bool:
    """A step that mints (and shows) a secret or revokes a version needs the sudo window."""
    current = walk.current_step(rotation)
    return current is not None and current.kind in (playbooks.GENERATE, playbooks.REVOKE)


# --------------------------------------------------------------------------- start and join


def rotation_start_view(request, object_id):
    """What the playbook will do, and one button: start it, or join the one in progress."""
    credential = object_for(
        request, Credential, object_id, perm=ACT, queryset=Credential.objects.select_related("app")
    )
    error = None
    if request.method == "POST":
        try:
            rotation, _ = lifecycle.rotation_start(
                actor=Actor.for_user(request.user, request), credential=credential
            )
        except lifecycle.LifecycleError as refused:
            error = str(refused)
        else:
            return redirect(rotation_url(rotation))
    playbook = playbooks.for_kind(credential.kind)
    return render_admin(
        request,
        "admin/credentials/rotation/start.html",
        {
            "credential": credential,
            "playbook": playbook,
            "steps": playbook.steps(playbooks.ROUTINE),
            "current": credential.rotations.filter(state=Rotation.Status.IN_PROGRESS).first(),
            "error": error,
            "credential_url": credential_url(credential),
        },
        title=f"Guided rotation of {credential.name}",
        status=409 if error else 200,
        no_store=False,
    )


# --------------------------------------------------------------------------- the step page


@sensitive_post_parameters("signature", "public_key")
def rotation_view(request, rotation_id):
    rotation = _rotation_for(request, rotation_id, act=request.method == "POST")
    # Asked before the step's form is shown, and again (doing nothing) on a stale POST.
    sensitive = request.user.has_perm(ACT) and _step_needs_sudo(rotation)
    if sensitive and (asked := sudo.confirm_first(request)) is not None:
        return asked
    if request.method != "POST":
        if request.user.has_perm(ACT) and rotation.in_progress:
            # Opening someone else's rotation is joining it: logged and audited, once.
            rotation = lifecycle.rotation_join(
                actor=Actor.for_user(request.user, request), rotation=rotation
            )
        return _page(request, rotation)
    step = as_id(request.POST.get("step"))
    try:
        nonce = once.check(
            request.POST.get("once", ""), user=request.user, purpose="rotation",
            target=_target(rotation, step),
        )  # fmt: skip
    except once.InvalidToken:
        return _page(request, rotation, error=STALE_FORM, status=409)
    actor = Actor.for_user(request.user, request)
    action = request.POST.get("action", "complete")
    current = walk.current_step(rotation)
    try:
        if action == "back":
            with transaction.atomic():
                once.claim(nonce, user=request.user, purpose="rotation")
                lifecycle.rotation_back(actor=actor, rotation=rotation, step=step)
            return redirect(rotation_url(rotation))
        if action != "complete":
            raise lifecycle.InvalidRequest("That is not something this page can do.")
        if current is None:
            with transaction.atomic():  # a re-sent form from earlier gets its own answer
                once.claim(nonce, user=request.user, purpose="rotation")
                raise lifecycle.TransitionRefused(
                    f"This rotation is {rotation.get_state_display().lower()}; nothing was changed."
                )
        if current.kind == playbooks.GENERATE:
            return _generate(request, rotation, step, nonce, actor)
        if current.check == playbooks.TEST_EVENT:
            return _test_event(request, rotation, step, nonce, actor)
        with transaction.atomic():
            once.claim(nonce, user=request.user, purpose="rotation")
            _complete(request, rotation, step, current, actor)
    except once.AlreadyUsed as used:
        if used.version is not None:
            return already_displayed(request, used.version)
        rotation.refresh_from_db()
        return _page(request, rotation, error="This form was already sent; nothing was done "
                     "twice. Here is where the rotation stands now.", status=409)  # fmt: skip
    except lifecycle.OldVersionInUse as in_use:
        return _page(request, rotation, error=str(in_use), in_use=True, status=409)
    except lifecycle.LifecycleError as refused:
        rotation.refresh_from_db()
        status = 400 if isinstance(refused, lifecycle.InvalidRequest) else 409
        return _page(request, rotation, error=str(refused), status=status)
    return redirect(rotation_url(rotation))


def _complete(request, rotation, step, current, actor) -> None:
    """Act on a confirm, activity, possession or revoke step (the caller holds the claim)."""
    data = request.POST
    if current.kind == playbooks.CONFIRM:
        ticked = [n for n in range(len(current.checklist)) if data.get(f"tick_{n}") == "on"]
        overlap = None
        if current.plan and rotation.mode == playbooks.ROUTINE:
            overlap = _overlap_seconds(data.get("overlap_hours"))
        lifecycle.rotation_confirm(
            actor=actor, rotation=rotation, step=step, ticked=ticked, overlap_seconds=overlap
        )
    elif current.check == playbooks.ACTIVITY:
        lifecycle.rotation_check_activity(
            actor=actor, rotation=rotation, step=step, proceed_anyway=data.get("anyway") == "on"
        )
    elif current.check == playbooks.POSSESSION:
        lifecycle.rotation_check_possession(
            actor=actor, rotation=rotation, step=step, signature=data.get("signature", "")
        )
    elif current.kind == playbooks.REVOKE:
        lifecycle.rotation_revoke_old(
            actor=actor, rotation=rotation, step=step, in_use_confirmed=data.get("in_use") == "on"
        )


def _overlap_seconds(text) -> int:
    try:
        hours = Decimal(str(text or "").strip())
    except InvalidOperation:
        raise lifecycle.InvalidRequest("Enter the overlap in hours, from 0 to 168.") from None
    if not hours.is_finite() or not 0 <= hours <= playbooks.MAX_OVERLAP_DAYS * 24:
        raise lifecycle.InvalidRequest("Choose an overlap from 0 to 7 days (0 to 168 hours).")
    return int(hours * 3600)


@sensitive_variables("issued")
def _generate(request, rotation, step, nonce, actor):
    """Mint once, in the transaction that claims the token; show the secret in this response."""
    public_key = request.POST.get("public_key", "")
    is_key = rotation.credential.kind == Kind.SERVICE_ACCOUNT_KEY
    with transaction.atomic():
        claimed = once.claim(nonce, user=request.user, purpose="rotation")
        issued = lifecycle.rotation_generate(
            actor=actor, rotation=rotation, step=step,
            public_key_pem=(public_key or None) if is_key else None,
        )  # fmt: skip
        once.attach(claimed, issued.version)
        if issued.plaintext is not None:
            lifecycle.version_record_reveal(actor=actor, version=issued.version, channel="portal")
    rotation.refresh_from_db()
    return render_admin(
        request,
        "admin/credentials/rotation/generated.html",
        {
            "rotation": rotation,
            "version": issued.version,
            "credential": rotation.credential,
            "plaintext": issued.plaintext,
            "old_fate": walk.old_version_fate(rotation.old_version) if rotation.old_version else "",
            "rotation_url": rotation_url(rotation),
            **_indicator(rotation),
        },
        title=f"{rotation.credential.name}: version {issued.version.number}",
    )


def _test_event(request, rotation, step, nonce, actor):
    # The claim commits before anything is sent: a re-sent form never sends a second event.
    with transaction.atomic():
        once.claim(nonce, user=request.user, purpose="rotation")
    endpoint = rotation.credential.endpoint
    finding, receipt = lifecycle.rotation_test_event(
        actor=actor, rotation=rotation, step=step,
        send=lambda: webhooks.send_test_ping(endpoint=endpoint, actor=actor),
    )  # fmt: skip
    rotation.refresh_from_db()
    return _page(request, rotation, receipt=receipt, finding=finding)


# --------------------------------------------------------------------------- abandon, activity


def rotation_abandon_view(request, rotation_id):
    rotation = _rotation_for(request, rotation_id, act=True)
    sensitive = rotation.in_progress and walk.abandon_brings_old_back(rotation)
    if sensitive and (asked := sudo.confirm_first(request)) is not None:
        return asked
    error = None
    if request.method == "POST":
        if request.POST.get("confirm") != "on":
            error = "Tick the box to confirm you want to abandon this rotation."
        else:
            try:
                lifecycle.rotation_abandon(
                    actor=Actor.for_user(request.user, request), rotation=rotation,
                    note=request.POST.get("note", ""),
                )  # fmt: skip
            except lifecycle.LifecycleError as refused:
                error = str(refused)
            else:
                return redirect(rotation_url(rotation))
        rotation.refresh_from_db()
    return render_admin(
        request,
        "admin/credentials/rotation/abandon.html",
        {
            "rotation": rotation,
            "credential": rotation.credential,
            "consequences": walk.abandon_consequences(rotation) if rotation.in_progress else [],
            "error": error,
            "rotation_url": rotation_url(rotation),
        },
        title=f"Abandon the rotation of {rotation.credential.name}",
        status=409 if error else 200,
    )


def rotation_activity_view(request, rotation_id):
    """JSON for the page's live activity panel: last use of the old and the new version."""
    rotation = _rotation_for(request, rotation_id, act=False)
    response = JsonResponse(_activity(rotation))
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


def _activity(rotation: Rotation) -> dict:
    now = timezone.now()
    finding = checks.activity_finding(rotation, now=now)
    quiet = settings.PORTAL_ROTATION_QUIET_MINUTES

    def describe(version):
        if version is None:
            return None
        used = version.last_used_at
        return {
            "number": version.number,
            "masked": version.masked,
            "state": version.state,
            "last_used_at": used.isoformat() if used else None,
            "use_count": version.use_count,
            "used_since_step": bool(used and used >= rotation.step_started_at),
            "used_within_quiet_period": bool(used and (now - used).total_seconds() < quiet * 60),
            "stops_at": version.retire_at.isoformat()
            if version.state == "retiring" and version.retire_at
            else None,
        }

    return {
        "since": rotation.step_started_at.isoformat(),
        "quiet_minutes": quiet,
        "passed": finding.passed,
        "summary": finding.summary,
        "old": describe(rotation.old_version),
        "new": describe(rotation.new_version),
    }


# --------------------------------------------------------------------------- rendering


def _indicator(rotation: Rotation) -> dict:
    steps = walk.steps_of(rotation)
    marks = []
    for index, step in enumerate(steps):
        if rotation.state == Rotation.Status.COMPLETED or index < rotation.step:
            status = "done"
        elif index == rotation.step and rotation.in_progress:
            status = "current"
        else:
            status = "todo"
        marks.append({"number": index + 1, "step": step, "status": status})
    return {"marks": marks, "step_count": len(steps)}


def _page(request, rotation, *, error=None, status=200, in_use=False, receipt=None, finding=None):
    user = request.user
    can_act = user.has_perm(ACT) and rotation.in_progress
    current = walk.current_step(rotation)
    token = (
        once.new_token(user=user, purpose="rotation", target=_target(rotation, rotation.step))
        if can_act
        else ""
    )
    old = rotation.old_version
    if old is not None:
        old.refresh_from_db()
    context = {
        "rotation": rotation,
        "credential": rotation.credential,
        "current": current,
        "can_act": can_act,
        "can_back": can_act and walk.can_go_back(rotation),
        "once_token": token,
        "error": error,
        "in_use": in_use,
        "receipt": receipt,
        "receipt_facts": checks.receipt_facts(receipt) if receipt is not None else None,
        "receipt_excerpt": crypto.redact(receipt.response_excerpt[:500]) if receipt else "",
        "finding": finding,
        "last_failure": _last_failure(rotation, current),
        "log": list(reversed(rotation.log)),
        "old": old,
        "old_fate": walk.old_version_fate(old) if old is not None else "",
        "overlap_text": walk.describe_seconds(rotation.overlap_seconds or 0),
        "old_live": old is not None and old.state in VERIFYING_STATES,
        "quiet_minutes": settings.PORTAL_ROTATION_QUIET_MINUTES,
        "max_overlap_hours": playbooks.MAX_OVERLAP_DAYS * 24,
        "default_overlap_hours": min(
            round(rotation.credential.overlap_seconds / 3600, 2), playbooks.MAX_OVERLAP_DAYS * 24
        ),
        "activity_url": reverse("admin:credentials_rotation_activity", args=[rotation.pk]),
        "abandon_url": reverse("admin:credentials_rotation_abandon", args=[rotation.pk]),
        "credential_url": credential_url(rotation.credential),
        **_indicator(rotation),
    }
    if current is not None and current.check == playbooks.POSSESSION:
        algorithm = rotation.new_version.key_algorithm if rotation.new_version else "Ed25519"
        context["sign_commands"] = playbooks.sign_commands(algorithm, rotation.challenge)
    if current is not None and current.check == playbooks.ACTIVITY:
        context["activity"] = _activity(rotation)
    title = f"{rotation.get_mode_display()} rotation of {rotation.credential.name}"
    return render_admin(request, "admin/credentials/rotation/page.html", context,
                        title=title, status=status)  # fmt: skip


def _last_failure(rotation: Rotation, current) -> dict | None:
    """The latest failed attempt at the current step, to show above its form."""
    if current is None or not rotation.log:
        return None
    last = rotation.log[-1]
    return last if last.get("outcome") == "failed" and last.get("step") == current.key else None
