"""Revoke, reactivate and report exposure: one confirmation page each, then the lifecycle.

Each page names the version by its last four characters and says what will happen before the
click; a refusal from the lifecycle (already revoked, window closed...) is shown on the page
with status 409 and changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from .. import lifecycle, sudo
from ..admin.access import object_for
from ..audit import Actor
from ..forms import ExposureForm, RevokeForm
from ..models import CredentialVersion, RevokeReason, State
from . import render_admin
from .reveal import credential_url

_VERSIONS = CredentialVersion.objects.select_related("credential__app")


def _label(version: CredentialVersion) -> str:
    return f"version {version.number} ({version.masked}) of {version.credential.name}"


def revoke_view(request, object_id):
    version = object_for(
        request, CredentialVersion, object_id, perm="credentials.revoke_credential",
        queryset=_VERSIONS,
    )  # fmt: skip
    if (asked := sudo.confirm_first(request)) is not None:
        return asked
    form = RevokeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            version = lifecycle.version_revoke(
                actor=Actor.for_user(request.user, request),
                version=version,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except lifecycle.LifecycleError as error:
            form.add_error(None, str(error))
            status = 409
        else:
            deadline = timezone.localtime(version.reactivation_deadline)
            undo = (
                f"it can be reactivated until {deadline:%H:%M %Z}."
                if settings.PORTAL_REACTIVATION_WINDOW_MINUTES
                else "this organisation allows no reactivation."
            )
            messages.success(request, f"Revoked {_label(version)}. It stopped working now; {undo}")
            return redirect(credential_url(version.credential))
    return render_admin(
        request,
        "admin/credentials/version_revoke.html",
        {
            "version": version,
            "form": form,
            "window_minutes": settings.PORTAL_REACTIVATION_WINDOW_MINUTES,
            "credential_url": credential_url(version.credential),
        },
        title=f"Revoke {_label(version)}",
        status=status,
    )


def reactivate_view(request, object_id):
    version = object_for(
        request, CredentialVersion, object_id, perm="credentials.reactivate_credential",
        queryset=_VERSIONS,
    )  # fmt: skip
    if (asked := sudo.confirm_first(request)) is not None:
        return asked
    error = None
    if request.method == "POST":
        try:
            version = lifecycle.version_reactivate(
                actor=Actor.for_user(request.user, request), version=version
            )
        except lifecycle.LifecycleError as refused:
            error = str(refused)
            version.refresh_from_db()
        else:
            messages.success(
                request, f"Reactivated {_label(version)}: it is {version.state} again."
            )
            return redirect(credential_url(version.credential))
    now = timezone.now()
    open_window = (
        version.state == State.REVOKED
        and version.revoke_reason != RevokeReason.EXPOSED
        and version.reactivation_deadline is not None
        and now <= version.reactivation_deadline
    )
    return render_admin(
        request,
        "admin/credentials/version_reactivate.html",
        {
            "version": version,
            "error": error,
            "open_window": open_window,
            "credential_url": credential_url(version.credential),
        },
        title=f"Reactivate {_label(version)}",
        status=409 if error else 200,
    )


def expose_view(request, object_id):
    version = object_for(
        request, CredentialVersion, object_id, perm="credentials.report_exposure",
        queryset=_VERSIONS,
    )  # fmt: skip
    if (asked := sudo.confirm_first(request)) is not None:
        return asked
    form = ExposureForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            # The version is revoked for good first; the exposure rotation then walks the
            # person to a new one (an archived app gets the revoke alone).
            rotation = lifecycle.exposure_report(
                actor=Actor.for_user(request.user, request),
                version=version,
                note=form.cleaned_data["note"],
            )
        except lifecycle.LifecycleError as error:
            form.add_error(None, str(error))
            status = 409
        else:
            if rotation is None:
                messages.warning(
                    request,
                    f"Reported {_label(version)} as exposed: it stopped working and can never "
                    "be reactivated. No exposure rotation was opened: the version had already "
                    "stopped working, its app is archived, or another rotation began at the same "
                    "moment. Issue a replacement if one is needed.",
                )
                return redirect(credential_url(version.credential))
            messages.warning(
                request,
                f"Reported {_label(version)} as exposed: it stopped working and can never be "
                "reactivated. Follow the exposure rotation below so its users get a new secret.",
            )
            return redirect(reverse("admin:credentials_rotation", args=[rotation.pk]))
    return render_admin(
        request,
        "admin/credentials/version_expose.html",
        {"version": version, "form": form, "credential_url": credential_url(version.credential)},
        title=f"Report {_label(version)} as exposed",
        status=status,
    )
