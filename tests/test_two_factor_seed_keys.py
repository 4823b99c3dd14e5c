"""TOTP seeds follow the encryption-key runbook of docs/keys.md: `key_usage` counts them under
their key, `reencrypt` moves them to the newest one, and sign-in keeps working throughout."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from credentials import crypto
from credentials.audit import Actor, verify_chain
from credentials.lifecycle import two_factor
from credentials.models import AuditEvent, Kind, TOTPSeed
from tests.signin import enrol_authenticator, totp

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def _new_key_first(settings, key_id: str) -> str:
    ring = settings.PORTAL_ENCRYPTION_KEYS
    fresh = crypto.parse_keyring("X", crypto.generate_key_line(key_id))
    settings.PORTAL_ENCRYPTION_KEYS = crypto.Keyring(fresh.keys + ring.keys)
    return ring.current[0]


def _usage(*options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("key_usage", *options, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


def test_rotating_the_encryption_key_and_reencrypting_moves_seeds_and_keeps_sign_in(
    settings, security_user, admin_user
):
    devices = [enrol_authenticator(security_user), enrol_authenticator(admin_user)]
    keys = [device.bin_key for device in devices]
    old = _new_key_first(settings, "enew")
    out, err = io.StringIO(), io.StringIO()

    call_command("reencrypt", stdout=out, stderr=err)

    assert "Re-encrypted 2 secret(s) under key 'enew'" in out.getvalue()
    assert "Keys still in use: enew." in out.getvalue()
    stored = TOTPSeed.objects.values_list("ciphertext", flat=True)
    assert {crypto.ciphertext_key_id(text) for text in stored} == {"enew"}
    moved = AuditEvent.objects.filter(action="user.totp_seed_reencrypted")
    assert sorted(e.details["device"] for e in moved) == sorted(d.pk for d in devices)
    assert {(e.details["from_key"], e.details["to_key"]) for e in moved} == {(old, "enew")}
    assert {e.target_id for e in moved} == {str(security_user.pk), str(admin_user.pk)}
    assert verify_chain().ok
    # The old key can go: the seeds open under the new one alone, and codes still sign in.
    settings.PORTAL_ENCRYPTION_KEYS = crypto.Keyring(settings.PORTAL_ENCRYPTION_KEYS.keys[:1])
    for user, key in ((security_user, keys[0]), (admin_user, keys[1])):
        assert two_factor.second_factor_verify(actor=ACTOR, user=user, code=totp(key))
    # Nothing the command printed or recorded repeats a seed.
    recorded = out.getvalue() + err.getvalue() + repr(list(moved.values_list()))
    for key in keys:
        assert key.hex() not in recorded
    call_command("reencrypt", stdout=(again := io.StringIO()))
    assert "Re-encrypted 0 secret(s)" in again.getvalue()


def test_reencrypt_reports_a_moved_seed_by_device_and_still_moves_the_rest(
    settings, security_user, admin_user
):
    good = enrol_authenticator(security_user)
    bad = enrol_authenticator(admin_user)
    TOTPSeed.objects.filter(device=bad).update(ciphertext=good.keyturn_seed.ciphertext)
    _new_key_first(settings, "enew")
    err = io.StringIO()

    with pytest.raises(CommandError, match="1 ciphertext"):
        call_command("reencrypt", stdout=io.StringIO(), stderr=err)

    assert f"TOTP device {bad.pk}: ciphertext failed authentication" in err.getvalue()
    assert crypto.ciphertext_key_id(TOTPSeed.objects.get(device=good).ciphertext) == "enew"
    assert good.bin_key.hex() not in err.getvalue()


def test_key_usage_counts_totp_seeds_under_the_key_they_were_encrypted_with(
    settings, issue, security_user, admin_user
):
    issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/a")
    enrol_authenticator(security_user)
    old = _new_key_first(settings, "enew")
    enrol_authenticator(admin_user)  # written under the new key

    out, err = _usage()

    assert _line(out, "PORTAL_ENCRYPTION_KEYS enew (newest)").endswith(
        ": 0 webhook signing secret(s), 0 stored API answer(s), 1 TOTP seed(s)"
    )
    assert _line(out, f"PORTAL_ENCRYPTION_KEYS {old}:").startswith(
        f"PORTAL_ENCRYPTION_KEYS {old}: 1 webhook signing secret(s), 0 stored API answer(s), "
        "1 TOTP seed(s) (to move off it: run `reencrypt`"
    )
    assert err == ""
    call_command("reencrypt", stdout=io.StringIO())
    assert _line(_usage()[0], f"PORTAL_ENCRYPTION_KEYS {old}:").endswith(
        ": nothing; it can be removed"
    )


def test_key_usage_names_a_seed_whose_key_is_not_configured(settings, security_user):
    enrol_authenticator(security_user)
    settings.PORTAL_ENCRYPTION_KEYS = crypto.parse_keyring("X", crypto.generate_key_line("other"))
    err = io.StringIO()
    with pytest.raises(CommandError, match="Stored data needs key"):
        call_command("key_usage", stdout=io.StringIO(), stderr=err)
    needed = "needed by 0 webhook signing secret(s), 0 stored API answer(s), 1 TOTP seed(s)"
    assert f"NOT CONFIGURED, {needed}" in err.getvalue()


def test_key_usage_decrypt_opens_every_seed_and_names_a_moved_one(security_user, admin_user):
    good = enrol_authenticator(security_user)
    moved = enrol_authenticator(admin_user)
    out = io.StringIO()
    call_command("key_usage", "--decrypt", stdout=out)
    assert "Decrypted 2 of 2 ciphertext(s)." in out.getvalue()

    TOTPSeed.objects.filter(device=moved).update(ciphertext=good.keyturn_seed.ciphertext)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 ciphertext"):
        call_command("key_usage", "--decrypt", stdout=io.StringIO(), stderr=err)
    assert f"TOTP seed of device {moved.pk}: ciphertext failed authentication" in err.getvalue()
    assert good.bin_key.hex() not in err.getvalue()
