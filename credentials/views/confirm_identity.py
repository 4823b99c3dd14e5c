"""The confirm page of sudo mode: the password again (and the code, with a second factor).

Success opens the window (``credentials/sudo.py``) and goes back to ``next``. A wrong password
or code opens nothing and sends ``user_login_failed``, so the sign-in lockout counts guesses
made here as it counts those made at sign-in; the guess that locks the account also signs the
session out.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, logout
from django.db import transaction
from django.http import HttpResponseRedirect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .. import audit, signin, sudo
from ..audit import Actor
from ..lifecycle import two_factor
from . import render_admin

WRONG = "That password or code is not right. Nothing was opened; try again."


class ConfirmIdentityForm(forms.Form):
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    otp_token = forms.CharField(
        label="Code from your authenticator app (or a backup code)",
        required=False,
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args, second_factor: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].widget.attrs["autofocus"] = True
        if second_factor:
            self.fields["otp_token"].required = True
        else:
            del self.fields["otp_token"]


@sensitive_variables("password", "code")
def _verified(request, form, *, second_factor: bool) -> bool:
    user = request.user
    password = form.cleaned_data["password"]
    # authenticate() goes through every backend (the lockout's too) and sends
    # user_login_failed itself when the password is wrong.
    checked = authenticate(request, username=user.get_username(), password=password)
    if checked is None or checked.pk != user.pk:
        return False
    if not second_factor:
        return True
    # The code is checked as at sign-in: a TOTP code once per time step, a backup code used
    # up (and audited); a wrong one counts toward the lockout like a wrong password.
    code = form.cleaned_data.get("otp_token", "")
    actor = Actor.for_user(user, request)
    if two_factor.second_factor_verify(actor=actor, user=user, code=code) is not None:
        return True
    signin.record_failed_code(request, user.get_username())
    return False


@sensitive_post_parameters("password", "otp_token")
def confirm_identity_view(request):
    next_url = sudo.safe_next(request, request.POST.get("next") or request.GET.get("next"))
    second_factor = sudo.has_second_factor(request.user)
    form = ConfirmIdentityForm(
        request.POST if request.method == "POST" else None, second_factor=second_factor
    )
    status, error = 200, None
    if request.method == "POST" and form.is_valid():
        if _verified(request, form, second_factor=second_factor):
            with transaction.atomic():
                sudo.start(request)
                audit.append(
                    actor=Actor.for_user(request.user, request),
                    action="user.reauthenticated",
                    target=request.user,
                    details={"second_factor": second_factor},
                )
            return HttpResponseRedirect(next_url)
        if getattr(request, "axes_locked_out", False):
            # That guess locked the account: whoever is at this session is not let go on
            # trying, nor on browsing.
            logout(request)
            return signin.lockout_response(request)
        form = ConfirmIdentityForm(second_factor=second_factor)  # never echo what was typed
        error = WRONG
    if request.method == "POST":
        status = 400
    return render_admin(
        request,
        "admin/keyturn/confirm_identity.html",
        {
            "form": form,
            "error": error,
            "next": next_url,
            "second_factor": second_factor,
            "sudo_minutes": settings.PORTAL_SUDO_SECONDS // 60,
        },
        title="Confirm it is you",
        status=status,
    )
