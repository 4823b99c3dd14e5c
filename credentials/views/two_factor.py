"""Two-factor sign-in pages: enrol an authenticator, verify a code, new backup codes.

The seed and the backup codes appear only in the response that shows them (never in the
session, a message or a URL), with ``Cache-Control: no-store``; codes posted here are hidden
from error reports.
"""

from __future__ import annotations

import base64

import segno
from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from .. import signin, sudo
from ..audit import Actor
from ..crypto.backup_codes import format_backup_code
from ..lifecycle import two_factor
from . import render_admin

# The sign-in steps show no model list: none of it opens before the second factor is given.
_NO_SIDEBAR = {"is_nav_sidebar_enabled": False}


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=40,
        strip=True,
        label="Code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


class TOTPCodeForm(CodeForm):
    code = forms.RegexField(
        regex=r"^\s*[0-9]{3}\s?[0-9]{3}\s*$",
        max_length=12,
        label="Code from the app",
        error_messages={"invalid": "Enter the six digits your app shows now."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


@sensitive_post_parameters("code")
@sensitive_variables("form")
@require_http_methods(["GET", "POST"])
def verify_view(request):
    """Second step of signing in: a code from the authenticator app, or a backup code."""
    user = request.user
    done = signin.safe_next(request, reverse("admin:index"))
    if user.is_verified():
        return redirect(done)
    if two_factor.second_factor_step(user) != "verify":
        return redirect(reverse("admin:two_factor_enrol"))
    username = user.get_username()
    if signin.is_locked_out(request, username):
        logout(request)
        return signin.lockout_response(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        actor = Actor.for_user(user, request)
        device = two_factor.second_factor_verify(
            actor=actor, user=user, code=form.cleaned_data["code"]
        )
        if device is not None:
            _mark_verified(request, device)
            return redirect(done)
        if signin.record_failed_code(request, username):
            logout(request)  # locked: the half-signed-in session goes too
            return signin.lockout_response(request)
        form.add_error("code", "That code is not valid. Try the newest code, or a backup code.")
    return render_admin(
        request,
        "admin/keyturn/two_factor/verify.html",
        {"form": form, "next": done, **_NO_SIDEBAR},
        title="Two-factor sign-in",
    )


@sensitive_post_parameters("code")
@sensitive_variables("enrolled", "device", "secret")
@require_http_methods(["GET", "POST"])
def enrol_view(request):
    """Set up an authenticator app: scan the QR code (or type the secret), confirm with a code.

    Once a device is confirmed this page shows the state of the user's second factor instead,
    and offers fresh backup codes."""
    user = request.user
    if not user.is_verified() and two_factor.second_factor_step(user) == "verify":
        return redirect(reverse("admin:two_factor_verify"))
    status = two_factor.second_factor_status(user)
    if status.has_authenticator:
        return render_admin(
            request,
            "admin/keyturn/two_factor/status.html",
            {"status": status, "required": settings.PORTAL_2FA_REQUIRED},
            title="Two-factor sign-in",
        )
    device = two_factor.totp_pending_device(user=user)
    form = TOTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        enrolled = two_factor.totp_confirm(
            actor=Actor.for_user(user, request), user=user, token=form.cleaned_data["code"]
        )
        if enrolled is not None:
            _mark_verified(request, enrolled.device)
            return _show_backup_codes(request, enrolled.backup_codes, first=True)
        form.add_error("code", "That code does not match. Enter the code the app shows now.")
    secret = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return render_admin(
        request,
        "admin/keyturn/two_factor/enrol.html",
        {
            "form": form,
            "qr_svg": _qr_svg(device.config_url),
            "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
            **_NO_SIDEBAR,
        },
        title="Set up two-factor sign-in",
    )


@require_POST
def backup_codes_view(request):
    """Replace the user's backup codes with a fresh set, shown once. Needs a verified session:
    a password alone must never be enough to mint a way in."""
    user = request.user
    if not user.is_verified():
        return redirect(reverse("admin:two_factor_verify"))
    if not sudo.is_fresh(request):
        # A walked-away session must not mint a lasting way in: the password again first,
        # then back to the page with the button.
        return sudo.ask(request, next_url=reverse("admin:two_factor_enrol"))
    codes = two_factor.backup_codes_generate(actor=Actor.for_user(user, request), user=user)
    return _show_backup_codes(request, codes, first=False)


@sensitive_variables("codes")
def _show_backup_codes(request, codes, *, first):
    return render_admin(
        request,
        "admin/keyturn/two_factor/backup_codes.html",
        {"codes": [format_backup_code(code) for code in codes], "first": first},
        title="Your backup codes",
    )


def _mark_verified(request, device):
    otp_login(request, device)
    # The sign-in's record, if this session's sign-in has none yet (enrolling of one's own
    # accord once in, or again after a reset, is not a sign-in).
    factor = "backup code" if isinstance(device, StaticDevice) else "authenticator app"
    signin.note_sign_in(request, request.user, second_factor=factor)
    # A new session id for the now fully signed-in session (as Django does on login).
    request.session.cycle_key()
    # Password and code were both just given: the re-authentication window opens here (the
    # password step alone does not open it for someone with a second factor).
    sudo.start(request)


@sensitive_variables("uri")
def _qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code, drawn here: no image request, no script, no
    style attribute (the page's Content-Security-Policy allows neither)."""
    return segno.make(uri, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", border=4, svgclass="kt-qr", title="QR code to scan"
    )
