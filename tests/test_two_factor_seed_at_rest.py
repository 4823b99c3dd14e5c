"""TOTP seeds at rest: encrypted under PORTAL_ENCRYPTION_KEYS, bound to their device row, and
never in django-otp's table, so a database backup alone cannot compute anyone's codes."""

import base64
import importlib
import logging
import re
import secrets

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials import crypto
from credentials.audit import Actor
from credentials.lifecycle import two_factor
from credentials.models import SEED_ELSEWHERE, KeyturnTOTPDevice, TOTPSeed
from tests.signin import (
    enrol_authenticator,
    key_from_base32,
    password_login,
    submit_code,
    totp,
)

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
MIGRATION = importlib.import_module("credentials.migrations.0010_totp_seeds_encrypted")
SECRET_ON_PAGE = r'<code id="kt-totp-secret" class="kt-code">([A-Z2-7 ]+)</code>'


def _enrol_through_the_page(client, user) -> bytes:
    """Enrol ``user`` as a person would; the seed as the enrolment page showed it."""
    password_login(client, user.username)
    page = client.get(reverse("admin:two_factor_enrol")).content.decode()
    key = key_from_base32(re.search(SECRET_ON_PAGE, page).group(1))
    confirmed = client.post(reverse("admin:two_factor_enrol"), {"code": totp(key)})
    assert confirmed.status_code == 200 and "backup codes" in confirmed.content.decode().lower()
    assert KeyturnTOTPDevice.objects.get(user=user).confirmed
    return key


def _raw_rows(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return "\n".join(repr(row) for row in cursor.fetchall())


def _forms(key: bytes) -> list[str]:
    b32 = base64.b32encode(key).decode().rstrip("=")
    return [key.hex(), key.hex().upper(), b32, b32.lower(), base64.b64encode(key).decode()]


def _verifies(user, key: bytes) -> bool:
    return two_factor.second_factor_verify(actor=ACTOR, user=user, code=totp(key)) is not None


def test_after_enrolment_no_row_holds_the_seed_in_hex_or_base32(client, security_user):
    key = _enrol_through_the_page(client, security_user)

    device_rows = _raw_rows(TOTPDevice._meta.db_table)
    seed_rows = _raw_rows(TOTPSeed._meta.db_table)
    assert SEED_ELSEWHERE in device_rows  # django-otp's key column holds the marker only
    assert "v1." in seed_rows  # and the seed is a ciphertext of ours
    for text in _forms(key):
        assert text not in device_rows and text not in seed_rows
    # django-otp's own reading of its column fails loudly instead of yielding a key.
    with pytest.raises(ValueError):
        TOTPDevice.objects.get(user=security_user).bin_key  # noqa: B018


def test_codes_from_the_seed_shown_at_enrolment_still_sign_in(client, settings, security_user):
    settings.PORTAL_2FA_REQUIRED = True
    key = _enrol_through_the_page(client, security_user)
    client.post(reverse("admin:logout"))

    password_login(client, security_user.username)
    assert client.get(reverse("admin:index")).status_code == 302  # not verified yet
    response = submit_code(client, totp(key, steps_ahead=1))

    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_wrong_code_for_an_encrypted_seed_is_refused(security_user):
    device = enrol_authenticator(security_user)
    wrong = totp(secrets.token_bytes(20))
    assert wrong != totp(device.bin_key)
    assert two_factor.second_factor_verify(actor=ACTOR, user=security_user, code=wrong) is None
    assert _verifies(security_user, device.bin_key)


def test_a_seed_ciphertext_copied_to_another_device_row_does_not_verify_there(
    security_user, admin_user, caplog
):
    theirs = enrol_authenticator(security_user)
    mine = enrol_authenticator(admin_user)
    their_key, my_key = theirs.bin_key, mine.bin_key
    TOTPSeed.objects.filter(device=mine).update(ciphertext=theirs.keyturn_seed.ciphertext)
    caplog.set_level(logging.WARNING)

    assert not _verifies(admin_user, their_key)  # the copied seed opens nowhere but its row
    assert not _verifies(admin_user, my_key)
    assert _verifies(security_user, their_key)
    assert f"TOTP device {mine.pk} has no readable seed: DecryptionFailed" in caplog.text
    assert their_key.hex() not in caplog.text and my_key.hex() not in caplog.text


def test_a_device_without_a_seed_row_verifies_nothing_even_with_a_hex_key(security_user):
    # As a device made behind Keyturn's back would be: django-otp's own default, a hex seed.
    key = secrets.token_bytes(20)
    TOTPDevice.objects.create(user=security_user, name="phone", confirmed=True, key=key.hex())
    assert not _verifies(security_user, key)


def test_a_seed_under_a_key_that_is_not_loaded_verifies_nothing(security_user, settings):
    device = enrol_authenticator(security_user)
    key = device.bin_key
    settings.PORTAL_ENCRYPTION_KEYS = crypto.parse_keyring("X", crypto.generate_key_line("other"))
    assert not _verifies(security_user, key)


def test_a_reload_of_the_enrolment_page_keeps_one_pending_device_and_one_seed(security_user):
    first = two_factor.totp_pending_device(user=security_user)
    again = two_factor.totp_pending_device(user=security_user)
    assert first.pk == again.pk and first.bin_key == again.bin_key
    assert TOTPSeed.objects.count() == 1


def test_resetting_two_factor_removes_the_seed(security_user):
    enrol_authenticator(security_user)
    two_factor.two_factor_reset(actor=ACTOR, user=security_user)
    assert not TOTPSeed.objects.exists()


# --------------------------------------------------------------------------- the data migration


def test_the_migration_encrypts_a_seed_stored_in_the_clear_and_it_still_signs_in(security_user):
    key = secrets.token_bytes(20)
    device = TOTPDevice.objects.create(
        user=security_user, name="phone", confirmed=True, key=key.hex()
    )
    garbled = TOTPDevice.objects.create(user=security_user, name="old", key="not hex at all")

    MIGRATION.encrypt_plaintext_seeds(apps, None)

    device.refresh_from_db()
    garbled.refresh_from_db()
    assert device.key == garbled.key == SEED_ELSEWHERE
    assert not TOTPSeed.objects.filter(device=garbled).exists()  # nothing usable to keep
    for text in _forms(key):
        assert text not in _raw_rows(TOTPDevice._meta.db_table)
        assert text not in _raw_rows(TOTPSeed._meta.db_table)
    assert KeyturnTOTPDevice.objects.get(pk=device.pk).bin_key == key
    assert _verifies(security_user, key)


def test_running_the_migration_again_changes_nothing(security_user):
    device = enrol_authenticator(security_user)
    before = TOTPSeed.objects.get(device=device).ciphertext
    MIGRATION.encrypt_plaintext_seeds(apps, None)
    assert TOTPSeed.objects.get(device=device).ciphertext == before


def test_the_migration_backwards_puts_each_seed_back_in_the_clear(security_user):
    device = enrol_authenticator(security_user)
    key = device.bin_key
    MIGRATION.decrypt_seeds_back(apps, None)
    assert not TOTPSeed.objects.exists()
    assert TOTPDevice.objects.get(pk=device.pk).bin_key == key  # django-otp reads it again


def test_a_session_names_the_device_as_django_otp_does(security_user):
    # Sessions verified before this change, and django-otp's middleware, use its own label.
    device = enrol_authenticator(security_user)
    assert device.persistent_id == f"otp_totp.totpdevice/{device.pk}"
    assert TOTPDevice.from_persistent_id(device.persistent_id).pk == device.pk
