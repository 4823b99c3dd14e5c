"""The confirm page of sudo mode: the password again (and the code, with a second factor).

Success opens the window (``credentials/sudo.py``) and goes back to ``next``. A wrong password
or code opens nothing and sends ``user_login_failed``, so the sign-in lockout counts guesses
made here as it counts those made at sign-in.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpResponseRedirect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .. import audit, sudo
from ..audit import Actor
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


@sensitive_variables("password", "token")
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
    token = form.cleaned_data.get("otp_token", "").replace(" ", "")
    if _device_accepting(user, token) is not None:
        return True
    user_login_failed.send(
        sender=__name__, credentials={"username": user.get_username()}, request=request
    )
    return False


@sensitive_variables("token")
def _device_accepting(user, token: str):
    """The confirmed device that accepts ``token`` (TOTP or backup code), or None.

    Devices are locked while checked, so the same code cannot pass twice at once; each
    device's own throttling and replay rules apply.
    """
    from django_otp import devices_for_user

    if not token:
        return None
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(token):
                return device
    return None


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
