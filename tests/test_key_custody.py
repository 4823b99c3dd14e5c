"""The key runbooks of docs/keys.md, step by step: `key_usage` says what each key is still
needed for, and an old key is only ever reported removable once removing it breaks nothing."""

import base64
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from credentials import crypto, lifecycle
from credentials.models import CredentialVersion, IdempotencyRecord, Kind, State
from credentials.verification import verify_bearer
from credentials.webhooks.signing import signing_keys
from tests.management_api import call, management_key
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


def _usage() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("key_usage", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


def _with_new_key_first(settings, name: str, key_id: str) -> str:
    """Step 1 of both runbooks: a fresh key, first in the list, the old ones after it."""
    ring = getattr(settings, name)
    fresh = crypto.parse_keyring(name, crypto.generate_key_line(key_id))
    setattr(settings, name, crypto.Keyring(fresh.keys + ring.keys))
    return ring.current[0]


def _without(settings, name: str, key_id: str) -> None:
    ring = getattr(settings, name)
    setattr(settings, name, crypto.Keyring(tuple(k for k in ring.keys if k[0] != key_id)))


def test_key_usage_names_each_configured_key_and_what_needs_it(issue, settings):
    issue(Kind.API_KEY)
    issue(Kind.CLIENT_SECRET)
    issue(Kind.ENDPOINT_SECRET)
    out, err = _usage()
    hash_id = settings.PORTAL_TOKEN_HASH_KEYS.current[0]
    encryption_id = settings.PORTAL_ENCRYPTION_KEYS.current[0]
    bearer_credentials = sorted(
        CredentialVersion.objects.filter(digest__isnull=False).values_list(
            "credential_id", flat=True
        )
    )
    assert _line(out, f"PORTAL_TOKEN_HASH_KEYS {hash_id} (newest)").endswith(
        ": 2 version(s) that verify or can be reactivated, on credential(s) "
        + ", ".join(map(str, bearer_credentials))
    )
    assert _line(out, f"PORTAL_ENCRYPTION_KEYS {encryption_id} (newest)").endswith(
        ": 1 webhook signing secret(s), 0 stored API answer(s)"
    )
    assert err == ""


def test_the_hash_key_runbook_retires_a_key_only_when_no_live_version_needs_it(issue, settings):
    issued = issue(Kind.API_KEY)
    old = _with_new_key_first(settings, "PORTAL_TOKEN_HASH_KEYS", "hnew")
    assert verify_bearer(issued.plaintext) is not None  # the old key still verifies its keys
    assert "(to move off it: rotate those credentials" in _line(
        _usage()[0], f"PORTAL_TOKEN_HASH_KEYS {old}:"
    )

    rotated = lifecycle.credential_rotate(actor=ACTOR, credential=issued.credential)
    assert rotated.version.digest_key_id == "hnew"
    # Retiring, then revoked but reactivatable: both could verify again, so still needed.
    assert "1 version(s)" in _line(_usage()[0], f"PORTAL_TOKEN_HASH_KEYS {old}:")
    lifecycle.version_revoke(actor=ACTOR, version=issued.version, reason="routine")
    assert "1 version(s)" in _line(_usage()[0], f"PORTAL_TOKEN_HASH_KEYS {old}:")

    # The reactivation window runs out (moved back here, rather than waited for).
    CredentialVersion.objects.filter(pk=issued.version.pk).update(
        reactivation_deadline=timezone.now() - timedelta(seconds=1)
    )
    assert _line(_usage()[0], f"PORTAL_TOKEN_HASH_KEYS {old}:").endswith(
        ": nothing; it can be removed"
    )
    _without(settings, "PORTAL_TOKEN_HASH_KEYS", old)
    assert verify_bearer(rotated.plaintext).version_id == rotated.version.pk
    _usage()  # and nothing stored names a key that is gone


def test_removing_a_hash_key_a_live_version_needs_is_reported_by_name(issue, settings):
    issued = issue(Kind.API_KEY)
    old = _with_new_key_first(settings, "PORTAL_TOKEN_HASH_KEYS", "hnew")
    _without(settings, "PORTAL_TOKEN_HASH_KEYS", old)
    with pytest.raises(CommandError, match=f"PORTAL_TOKEN_HASH_KEYS {old}") as refused:
        _usage()
    assert refused.value.returncode == 1
    assert verify_bearer(issued.plaintext) is None  # what key_usage warns of


def test_an_expired_version_under_a_removed_hash_key_needs_nothing(issue, settings):
    issued = issue(Kind.API_KEY)
    CredentialVersion.objects.filter(pk=issued.version.pk).update(state=State.EXPIRED)
    old = _with_new_key_first(settings, "PORTAL_TOKEN_HASH_KEYS", "hnew")
    _without(settings, "PORTAL_TOKEN_HASH_KEYS", old)
    out, err = _usage()
    assert "hnew (newest): nothing yet" in out and err == ""


def test_the_encryption_key_runbook_waits_for_stored_api_answers_to_be_pruned(issue, settings):
    hook = issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/a")
    key = management_key("credentials:rotate").plaintext
    target = issue(Kind.API_KEY)
    path = f"/api/v1/credentials/{target.credential.pk}/rotations"
    assert call(Client(), "post", path, key, {"overlap_seconds": 60}).status_code == 201

    old = _with_new_key_first(settings, "PORTAL_ENCRYPTION_KEYS", "enew")
    call_command("reencrypt", stdout=io.StringIO())
    # The signing secret moved; the stored API answer did not, and is needed for 24 hours.
    assert _line(_usage()[0], f"PORTAL_ENCRYPTION_KEYS {old}:").startswith(
        f"PORTAL_ENCRYPTION_KEYS {old}: 0 webhook signing secret(s), 1 stored API answer(s)"
    )
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    call_command("prune_idempotency", stdout=io.StringIO())
    assert _line(_usage()[0], f"PORTAL_ENCRYPTION_KEYS {old}:").endswith(
        ": nothing; it can be removed"
    )
    _without(settings, "PORTAL_ENCRYPTION_KEYS", old)
    keys = signing_keys(hook.credential.endpoint)  # still signs, under the new key alone
    assert [k.key for k in keys] == [crypto.webhook_secret_key(hook.plaintext)]


def test_a_ciphertext_under_a_key_that_is_not_configured_is_reported_by_name(issue, settings):
    hook = issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/a")
    garbled = CredentialVersion.objects.filter(pk=hook.version.pk)
    settings.PORTAL_ENCRYPTION_KEYS = crypto.parse_keyring("X", crypto.generate_key_line("other"))
    err = io.StringIO()
    with pytest.raises(CommandError, match="PORTAL_ENCRYPTION_KEYS k"):
        call_command("key_usage", stdout=io.StringIO(), stderr=err)
    assert "NOT CONFIGURED, needed by 1 webhook signing secret(s)" in err.getvalue()
    garbled.update(ciphertext="not-a-ciphertext")
    with pytest.raises(CommandError, match=r"\(unreadable\)"):
        _usage()


def test_key_usage_prints_key_ids_and_never_key_material(issue, settings):
    issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/a")
    out, err = _usage()
    rings = [settings.PORTAL_ENCRYPTION_KEYS, settings.PORTAL_TOKEN_HASH_KEYS]
    for ring in rings:
        for _, material in ring.keys:
            for form in (base64.urlsafe_b64encode(material), base64.b64encode(material)):
                assert form.decode().rstrip("=") not in out + err


# --------------------------------------------------------------------------- rolling out a new key


def _rings(name: str, settings):
    """The lists of the runbooks' steps: before, "read" (new key second), "write" (new first)."""
    before = getattr(settings, name)
    new = crypto.parse_keyring(name, crypto.generate_key_line("knew"))
    return before, crypto.Keyring(before.keys + new.keys), crypto.Keyring(new.keys + before.keys)


def test_a_process_with_the_new_encryption_key_second_reads_what_the_first_writes(issue, settings):
    before, read, write = _rings("PORTAL_ENCRYPTION_KEYS", settings)
    settings.PORTAL_ENCRYPTION_KEYS = read
    under_old = issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/a")
    assert crypto.ciphertext_key_id(under_old.version.ciphertext) == before.current[0]
    settings.PORTAL_ENCRYPTION_KEYS = write  # a host that has moved on to step 3
    under_new = issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/b")
    assert crypto.ciphertext_key_id(under_new.version.ciphertext) == "knew"
    expected = crypto.webhook_secret_key(under_new.plaintext)
    settings.PORTAL_ENCRYPTION_KEYS = read  # a host still at step 2 signs with it
    assert [k.key for k in signing_keys(under_new.credential.endpoint)] == [expected]
    settings.PORTAL_ENCRYPTION_KEYS = before  # a host skipped in step 2 could not
    assert signing_keys(under_new.credential.endpoint) == []


def test_a_process_with_the_new_hash_key_second_verifies_what_the_first_issues(issue, settings):
    before, read, write = _rings("PORTAL_TOKEN_HASH_KEYS", settings)
    settings.PORTAL_TOKEN_HASH_KEYS = read
    assert issue(Kind.API_KEY).version.digest_key_id == before.current[0]
    settings.PORTAL_TOKEN_HASH_KEYS = write
    issued = issue(Kind.API_KEY)
    assert issued.version.digest_key_id == "knew"
    settings.PORTAL_TOKEN_HASH_KEYS = read
    assert verify_bearer(issued.plaintext).version_id == issued.version.pk
    settings.PORTAL_TOKEN_HASH_KEYS = before
    assert verify_bearer(issued.plaintext) is None


def test_a_recorded_head_keeps_verifying_as_the_chain_grows(issue):
    issue(Kind.API_KEY)
    out = io.StringIO()
    call_command("audit_head", stdout=out)
    recorded = out.getvalue().strip()
    for _ in range(3):  # a day's work after the hourly export
        lifecycle.credential_rotate(actor=ACTOR, credential=issue(Kind.API_KEY).credential)
    out = io.StringIO()
    call_command("verify_audit", expect_head=recorded, stdout=out)
    assert "Audit chain intact" in out.getvalue()


# --------------------------------------------------------------------------- restore drill checks


def _verify_secret(monkeypatch, text: str) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    out = io.StringIO()
    call_command("verify_secret", stdout=out)
    return out.getvalue()


def test_verify_secret_names_the_version_of_each_secret_and_never_the_secret(issue, monkeypatch):
    first, second = issue(Kind.API_KEY, name="orders"), issue(Kind.CLIENT_SECRET, name="login")
    out = _verify_secret(monkeypatch, f"{first.plaintext}\n\n  {second.plaintext}  \n")
    assert out.splitlines() == [
        f"1: verifies: credential {first.credential.pk} (orders), version 1 (active)",
        f"2: verifies: credential {second.credential.pk} (login), version 1 (active)",
    ]
    assert first.plaintext not in out and second.plaintext not in out


@pytest.mark.parametrize(
    "line",
    ["not-a-key", "ktak_" + "A" * 46, "\x00\x01", "ü" * 50, "whsec_" + "A" * 44],
)
def test_verify_secret_refuses_anything_that_does_not_verify(issue, monkeypatch, line):
    good = issue(Kind.API_KEY)
    with pytest.raises(CommandError, match="1 of 2 secret") as refused:
        _verify_secret(monkeypatch, f"{good.plaintext}\n{line}\n")
    assert refused.value.returncode == 1


def test_verify_secret_with_nothing_on_stdin_says_how_to_use_it(db, monkeypatch):
    with pytest.raises(CommandError, match="on stdin, one per line"):
        _verify_secret(monkeypatch, "\n  \n")


def test_verify_secret_refuses_a_revoked_key(issue, monkeypatch):
    revoked = issue(Kind.API_KEY)
    lifecycle.version_revoke(actor=ACTOR, version=revoked.version, reason="routine")
    with pytest.raises(CommandError, match="1 of 1 secret"):
        _verify_secret(monkeypatch, revoked.plaintext)


def test_key_usage_decrypt_opens_every_ciphertext_and_names_the_ones_that_fail(issue):
    good = issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/a")
    moved = issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/b")
    out = io.StringIO()
    call_command("key_usage", "--decrypt", stdout=out)
    assert "Decrypted 2 of 2 ciphertext(s)." in out.getvalue()
    # A ciphertext copied onto another row is bound to the wrong row: it must not open there.
    CredentialVersion.objects.filter(pk=moved.version.pk).update(ciphertext=good.version.ciphertext)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 ciphertext"):
        call_command("key_usage", "--decrypt", stdout=io.StringIO(), stderr=err)
    assert f"version {moved.version.public_id}: ciphertext failed authentication" in err.getvalue()
    assert good.plaintext not in err.getvalue()
