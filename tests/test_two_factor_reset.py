"""Administrators reset a person's second factor (a lost phone); nobody else can."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials.audit import Actor, verify_chain
from credentials.lifecycle import two_factor
from credentials.models import AuditEvent
from tests.signin import enrol_authenticator, mark_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrolled(security_user):
    device = enrol_authenticator(security_user)
    two_factor.backup_codes_generate(actor=Actor.system("tests"), user=security_user)
    return device


def reset(client, *users):
    return client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "reset_two_factor", "_selected_action": [u.pk for u in users]},
    )


def test_an_administrator_resets_a_users_devices_and_it_is_audited(
    client, admin_user, security_user, enrolled
):
    client.force_login(admin_user)

    response = reset(client, security_user)

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=security_user).exists()
    assert not StaticDevice.objects.filter(user=security_user).exists()
    event = AuditEvent.objects.get(action="user.two_factor_reset")
    assert event.target_id == str(security_user.pk) and event.actor_label == "adm"
    assert event.details == {"devices_removed": 2}
    assert verify_chain().ok


def test_a_session_verified_with_a_removed_device_must_enrol_again(
    client, settings, admin_user, security_user, enrolled
):
    settings.PORTAL_2FA_REQUIRED = True
    client.force_login(security_user)
    mark_verified(client, enrolled)
    assert client.get(reverse("admin:index")).status_code == 200

    two_factor.two_factor_reset(actor=Actor.system("tests"), user=security_user)

    assert client.get(reverse("admin:index"))["Location"].startswith(
        reverse("admin:two_factor_enrol")
    )


@pytest.mark.parametrize("role_user", ["security_user", "auditor_user", "outsider_user"])
def test_nobody_but_an_administrator_can_reset(request, client, role_user, admin_user):
    device = enrol_authenticator(admin_user)
    client.force_login(request.getfixturevalue(role_user))

    response = reset(client, admin_user)

    assert response.status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not AuditEvent.objects.filter(action="user.two_factor_reset").exists()


def test_an_administrator_cannot_reset_a_superuser(client, admin_user):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 20)
    device = enrol_authenticator(root)
    client.force_login(admin_user)

    reset(client, root)

    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not AuditEvent.objects.filter(action="user.two_factor_reset").exists()


def test_the_user_list_says_who_has_a_second_factor_never_the_seed(
    client, admin_user, security_user, enrolled
):
    client.force_login(admin_user)
    html = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "column-two_factor" in html and ">app<" in html
    assert enrolled.key not in html


@pytest.mark.parametrize("model", [TOTPDevice, StaticDevice])
def test_django_otps_own_device_pages_are_not_offered(client, admin_user, model):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 20)
    client.force_login(root)
    opts = model._meta
    response = client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
    assert response.status_code == 404
