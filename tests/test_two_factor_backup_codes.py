"""Backup codes: each signs in once, kept only as digests, replaced as a set."""

import pytest
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken

from credentials.audit import Actor
from credentials.crypto import backup_codes
from credentials.lifecycle import two_factor
from credentials.models import AuditEvent
from tests.signin import enrol_authenticator, mark_verified, password_login, submit_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def codes(settings, security_user):
    settings.PORTAL_2FA_REQUIRED = True
    enrol_authenticator(security_user)
    return two_factor.backup_codes_generate(actor=Actor.system("tests"), user=security_user)


def signed_in_with(client, user, code):
    password_login(client, user.username)
    response = submit_code(client, code)
    return response.status_code == 302 and client.get(reverse("admin:index")).status_code == 200


def test_a_backup_code_signs_in_once(client, security_user, codes):
    assert signed_in_with(client, security_user, codes[0])
    client.post(reverse("admin:logout"))

    assert not signed_in_with(client, security_user, codes[0])
    assert StaticToken.objects.filter(device__user=security_user).count() == 9
    used = AuditEvent.objects.get(action="user.backup_code_used")
    assert used.details == {"backup_codes_left": 9}


@pytest.mark.parametrize(
    "shape",
    [str.upper, lambda c: backup_codes.format_backup_code(c), lambda c: f" {c[:3]} {c[3:]} "],
)
def test_a_backup_code_may_be_typed_in_capitals_or_with_a_hyphen_or_spaces(
    client, security_user, codes, shape
):
    assert signed_in_with(client, security_user, shape(codes[1]))


def test_the_database_keeps_only_digests_of_the_codes(security_user, codes):
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert len(stored) == 10
    assert not stored & set(codes)
    assert all(len(token) == backup_codes.DIGEST_LENGTH for token in stored)


def test_new_codes_replace_the_old_set(client, security_user, codes):
    fresh = two_factor.backup_codes_generate(actor=Actor.system("tests"), user=security_user)
    assert not set(fresh) & set(codes)
    assert not signed_in_with(client, security_user, codes[2])
    assert signed_in_with(client, security_user, fresh[0])


def test_a_verified_user_gets_new_codes_from_the_page_once_and_audited(
    client, security_user, codes
):
    device = security_user.totpdevice_set.get()
    client.force_login(security_user)
    mark_verified(client, device)

    response = client.post(reverse("admin:two_factor_backup_codes"))

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert html.count("<li><code>") == 10
    assert not any(backup_codes.format_backup_code(code) in html for code in codes)
    assert AuditEvent.objects.filter(action="user.backup_codes_generated").count() == 2
    assert client.get(reverse("admin:two_factor_backup_codes")).status_code == 405


def test_a_code_of_someone_else_does_not_sign_in(client, security_user, auditor_user, codes):
    # Backup codes belong to their device: another user's code is just a wrong code.
    password_login(client, auditor_user.username)
    enrol_authenticator(auditor_user)
    assert submit_code(client, codes[0]).status_code == 200
    assert StaticToken.objects.filter(device__user=security_user).count() == 10


@pytest.mark.parametrize(
    "text", ["abcde-fghi", "abcde-fghij-k", "abcde-fgh1j", "ABCDE_FGHIJ", "", "a" * 41, None, 12]
)
def test_things_that_cannot_be_backup_codes_are_refused(text):
    assert backup_codes.normalise_backup_code(text) is None


def test_generated_codes_are_distinct_well_formed_and_random():
    first, second = backup_codes.generate_backup_codes(), backup_codes.generate_backup_codes()
    assert len(set(first)) == 10 and not set(first) & set(second)
    assert all(backup_codes.normalise_backup_code(code) == code for code in first)
