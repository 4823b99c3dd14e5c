"""The re-authentication window and two-factor sign-in together: the window opens when the
second factor is given, not at the password step before it."""

import time

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials import sudo
from credentials.models import AuditEvent, KeyturnTOTPDevice, Kind
from tests.signin import (
    PASSWORD,
    enrol_authenticator,
    mark_verified,
    password_login,
    submit_code,
    totp,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def required(settings):
    settings.PORTAL_2FA_REQUIRED = True


def test_the_password_step_alone_does_not_open_the_window(client, required, security_user):
    enrol_authenticator(security_user)
    password_login(client, "sec")
    assert sudo.SESSION_KEY not in client.session


def test_the_code_at_sign_in_opens_the_window_so_the_first_rotation_is_not_asked_again(
    client, required, security_user, issue
):
    device = enrol_authenticator(security_user)
    credential = issue(Kind.API_KEY).credential
    rotate = reverse("admin:credentials_credential_rotate", args=[credential.pk])
    password_login(client, "sec")
    assert submit_code(client, totp(device.bin_key)).status_code == 302
    page = client.get(rotate)
    assert page.status_code == 200, page.get("Location")


def test_enrolling_at_sign_in_opens_the_window(client, required, security_user, issue):
    credential = issue(Kind.API_KEY).credential
    rotate = reverse("admin:credentials_credential_rotate", args=[credential.pk])
    password_login(client, "sec")
    client.get(reverse("admin:two_factor_enrol"))  # makes the pending device
    pending = KeyturnTOTPDevice.objects.get(user=security_user, confirmed=False)
    session = client.session
    session.pop(sudo.SESSION_KEY, None)  # as for someone whose sign-in did not open it
    session.save()
    client.post(reverse("admin:two_factor_enrol"), {"code": totp(pending.bin_key)})
    assert client.get(rotate).status_code == 200


# ------------------------------------------------- second-factor and lockout management


def _stale(client):
    session = client.session
    session[sudo.SESSION_KEY] = int(time.time()) - settings.PORTAL_SUDO_SECONDS - 1
    session.save()


def _confirm(client, next_url, **extra):
    return client.post(
        reverse("admin:confirm_identity"), {"password": PASSWORD, "next": next_url, **extra}
    )


def test_new_backup_codes_need_the_window_and_the_page_comes_back_after(client, security_user):
    device = enrol_authenticator(security_user)
    client.force_login(security_user)
    mark_verified(client, device)
    _stale(client)
    status_page = reverse("admin:two_factor_enrol")

    asked = client.post(reverse("admin:two_factor_backup_codes"))

    assert asked.status_code == 302 and asked["Location"] == sudo.confirm_url(status_page)
    assert not AuditEvent.objects.filter(action="user.backup_codes_generated").exists()
    assert not StaticDevice.objects.filter(user=security_user).exists()
    code = totp(device.bin_key)
    assert _confirm(client, status_page, otp_token=code)["Location"] == status_page
    assert client.post(reverse("admin:two_factor_backup_codes")).status_code == 200
    assert AuditEvent.objects.filter(action="user.backup_codes_generated").count() == 1


def _enrolled(request):
    person = request.getfixturevalue("security_user")
    enrol_authenticator(person)
    return [person]


def _locked(request):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        password_login(client, "sec", "wrong password", ip=f"192.0.2.{n + 1}")
    return list(AccessAttempt.objects.all())


# name, model (as in the admin's URL names), action, objects to select, done?, audit event
IMMEDIATE = [
    ("reset two-factor sign-in", "auth_user", "reset_two_factor", _enrolled,
     lambda: not TOTPDevice.objects.exists(), "user.two_factor_reset"),
    ("unlock", "axes_accessattempt", "unlock", _locked,
     lambda: not AccessAttempt.objects.exists(), "user.unlocked"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "action", "prepare", "done", "audit"),
    [case[1:] for case in IMMEDIATE],
    ids=[case[0] for case in IMMEDIATE],
)
def test_a_stale_user_management_action_does_nothing_until_confirmed(
    client, request, admin_user, security_user, model, action, prepare, done, audit
):
    objects = prepare(request)
    client.force_login(admin_user)
    _stale(client)
    changelist = reverse(f"admin:{model}_changelist")
    resume = reverse(f"admin:{model}_resume_action")
    selection = {"action": action, "_selected_action": [o.pk for o in objects], "index": 0}

    asked = client.post(changelist, selection)

    assert asked.status_code == 302 and asked["Location"] == sudo.confirm_url(resume)
    assert not done() and not AuditEvent.objects.filter(action=audit).exists()
    assert _confirm(client, resume)["Location"] == resume
    client.post(changelist, selection)
    assert done()
    assert AuditEvent.objects.filter(action=audit).count() == len(objects)  # one per row


def test_wrong_passwords_at_the_confirm_page_lock_the_account_and_sign_the_session_out(
    client, security_user
):
    client.force_login(security_user)
    _stale(client)
    answers = [
        _confirm(client, "/admin/", password="guess") for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert [a.status_code for a in answers[:-1]] == [400] * (settings.AXES_FAILURE_LIMIT - 1)
    assert answers[-1].status_code == 429
    assert "_auth_user_id" not in client.session  # signed out
    assert AuditEvent.objects.filter(action="user.locked_out").count() == 1
    assert not AuditEvent.objects.filter(action="user.reauthenticated").exists()
    # And the right password at sign-in is refused for the cool-off.
    assert password_login(Client(), "sec").status_code == 429
