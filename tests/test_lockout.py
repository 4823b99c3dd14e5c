"""Lockout (django-axes): by username and by address, wrong codes count, audited unlock."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from credentials.audit import verify_chain
from credentials.models import AuditEvent
from tests.signin import PASSWORD, enrol_authenticator, password_login, submit_code, totp

pytestmark = pytest.mark.django_db
LIMIT = settings.AXES_FAILURE_LIMIT


def is_locked_page(response) -> bool:
    html = response.content.decode()
    return response.status_code == 429 and 'id="kt-locked-out"' in html and "Keyturn" in html


def signs_in(client, username, *, ip="127.0.0.1") -> bool:
    response = password_login(client, username, ip=ip)
    return response.status_code == 302 and client.get(reverse("admin:index")).status_code == 200


def test_failures_from_many_addresses_lock_the_username(client, security_user):
    for n in range(LIMIT):
        response = password_login(client, "sec", "wrong password", ip=f"192.0.2.{n + 1}")
    assert is_locked_page(response)

    # The right password, from an address never seen before, is refused too.
    assert is_locked_page(password_login(client, "sec", ip="198.51.100.7"))
    assert not signs_in(client, "sec", ip="198.51.100.7")
    locked = AuditEvent.objects.get(action="user.locked_out")
    assert locked.target_type == "user" and locked.target_id == str(security_user.pk)
    assert locked.details["known_user"] is True
    assert verify_chain().ok


def test_failures_for_many_usernames_lock_the_address(client, auditor_user):
    for n in range(LIMIT):
        password_login(client, f"nobody{n}", "guess", ip="203.0.113.9")

    assert is_locked_page(password_login(client, "aud", ip="203.0.113.9"))
    assert signs_in(client, "aud", ip="203.0.113.10")  # another address is not locked
    locked = AuditEvent.objects.get(action="user.locked_out")
    # An unknown username may be a mistyped password: the append-only trail never keeps it.
    assert locked.target_type == "accessattempt" and locked.details["known_user"] is False
    assert "nobody" not in (locked.target_label + str(locked.details) + locked.actor_label)


def test_wrong_second_factor_codes_count_toward_the_lockout(client, settings, security_user):
    settings.PORTAL_2FA_REQUIRED = True
    device = enrol_authenticator(security_user)
    password_login(client, "sec")
    for _ in range(LIMIT - 1):
        assert submit_code(client, "000000").status_code == 200

    response = submit_code(client, "000000")

    assert is_locked_page(response)
    # The half-signed-in session is gone, and even the right password and code are refused.
    assert client.get(reverse("admin:index"))["Location"].startswith(reverse("admin:login"))
    assert is_locked_page(password_login(client, "sec"))
    assert AuditEvent.objects.filter(action="user.locked_out").count() == 1
    assert AccessAttempt.objects.get().path_info == reverse("admin:two_factor_verify")
    client.force_login(security_user)  # as if the password had got through before the lock
    assert is_locked_page(submit_code(client, totp(device.bin_key)))


def test_tries_while_locked_are_refused_not_audited_again(client, security_user):
    for _ in range(LIMIT + 3):
        password_login(client, "sec", "wrong password")
    assert AuditEvent.objects.filter(action="user.locked_out").count() == 1
    assert AccessAttempt.objects.get().failures_since_start == LIMIT


def test_the_lock_ends_after_the_cool_off(client, security_user):
    for _ in range(LIMIT):
        password_login(client, "sec", "wrong password")
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timezone.timedelta(seconds=1)
    )
    assert signs_in(client, "sec")


def test_the_address_is_remote_addr_never_x_forwarded_for(client, security_user):
    for n in range(LIMIT):
        client.post(
            reverse("admin:login"),
            {"username": f"nobody{n}", "password": "guess"},
            REMOTE_ADDR="192.0.2.50",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.50"}
    response = client.post(
        reverse("admin:login"),
        {"username": "sec", "password": PASSWORD},
        REMOTE_ADDR="192.0.2.50",
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )
    assert is_locked_page(response)


def test_failed_attempts_keep_no_password_or_code(client, settings, security_user):
    settings.PORTAL_2FA_REQUIRED = True
    enrol_authenticator(security_user)
    password_login(client, "sec", "my-secret-typo-password")
    password_login(client, "sec")
    submit_code(client, "424242")
    kept = " ".join(f"{a.get_data} {a.post_data} {a.username}" for a in AccessAttempt.objects.all())
    assert "my-secret-typo-password" not in kept and "424242" not in kept


# --------------------------------------------------------------------------- unlock


@pytest.fixture
def locked_out(client, security_user):
    for n in range(LIMIT):
        password_login(client, "sec", "wrong password", ip=f"192.0.2.{n + 1}")
    assert is_locked_page(password_login(client, "sec"))


def unlock(client, attempts):
    return client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "unlock", "_selected_action": [a.pk for a in attempts]},
    )


def test_administrators_see_the_locks_and_unlocking_restores_sign_in(
    client, locked_out, admin_user, security_user
):
    client.force_login(admin_user)
    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and "192.0.2.1" in listing.content.decode()
    assert "wrong password" not in listing.content.decode()

    response = unlock(client, AccessAttempt.objects.filter(ip_address="192.0.2.1"))

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()  # every failure under that username went
    event = AuditEvent.objects.get(action="user.unlocked")
    assert event.target_id == str(security_user.pk) and event.actor_label == "adm"
    assert verify_chain().ok
    client.post(reverse("admin:logout"))
    assert signs_in(client, "sec")


@pytest.mark.parametrize("role_user", ["security_user", "auditor_user"])
def test_only_administrators_see_or_lift_locks(request, client, locked_out, role_user):
    client.force_login(request.getfixturevalue(role_user))
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    assert unlock(client, AccessAttempt.objects.all()).status_code == 403
    assert AccessAttempt.objects.count() == LIMIT
    assert not AuditEvent.objects.filter(action="user.unlocked").exists()


def test_nobody_edits_or_deletes_attempts_through_the_admin(client, locked_out, admin_user):
    client.force_login(admin_user)
    attempt = AccessAttempt.objects.first()
    change = reverse("admin:axes_accessattempt_change", args=[attempt.pk])
    page = client.get(change).content.decode()
    assert "post_data" not in page and 'type="submit" value="Save"' not in page
    assert client.post(change, {"failures_since_start": "0"}).status_code == 403
    delete = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AccessAttempt.objects.count() == LIMIT


def test_a_password_typed_as_the_username_is_not_shown_to_administrators(
    client, admin_user, security_user
):
    typed = "Tr0ub4dor&3-typed-in-the-wrong-box"
    password_login(client, typed, "whatever")
    password_login(client, "sec", "wrong password", ip="192.0.2.9")
    client.force_login(admin_user)

    listing = client.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    stray = AccessAttempt.objects.get(ip_address="127.0.0.1")
    detail = client.get(reverse("admin:axes_accessattempt_change", args=[stray.pk]))

    assert typed not in listing and "(not an account)" in listing
    assert ">sec<" in listing  # a real account is named
    assert detail.status_code == 200
    assert typed not in detail.content.decode()
