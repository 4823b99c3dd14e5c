"""The management commands: issue from the command line, re-encrypt, seed the demo, roles."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.utils import timezone

from credentials import crypto
from credentials.audit import verify_chain
from credentials.models import (
    AuditEvent,
    Credential,
    CredentialVersion,
    Kind,
    RevokeReason,
    State,
)
from credentials.verification import verify_bearer

pytestmark = pytest.mark.django_db


def _issue_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_credential", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- issue_credential


def test_issue_credential_prints_only_the_secret_on_stdout_once(app):
    out, err = _issue_cli(
        "--app", app.client_id, "--kind", "api_key", "--name", "CI deploy",
        "--scopes", "orders:read, introspect", "--lifetime-days", "30",
    )  # fmt: skip
    secret = out.strip()
    assert out.count("\n") == 1 and crypto.token_is_well_formed(secret)
    assert secret not in err and f"••••{secret[-4:]}" in err
    found = verify_bearer(secret)
    assert found.scopes == ("orders:read", "introspect")
    assert (found.expires_at - found.activated_at).days == 30
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["credential.issued", "credential.revealed"]
    assert AuditEvent.objects.get(action="credential.revealed").details["channel"] == "command line"


def test_issue_credential_registers_a_service_account_key_from_a_file(app, tmp_path):
    from tests.conftest import new_public_key_pem

    key_file = tmp_path / "key.pub"
    key_file.write_text(new_public_key_pem())
    out, err = _issue_cli(
        "--app", app.client_id, "--kind", "service_account_key", "--name", "batch",
        "--public-key-file", str(key_file),
    )  # fmt: skip
    assert out == ""
    assert "SHA256:" in err
    assert CredentialVersion.objects.get().key_algorithm == "Ed25519"


def test_issue_credential_creates_an_endpoint_with_its_secret(app):
    out, _ = _issue_cli(
        "--app", app.client_id, "--kind", "endpoint_secret", "--name", "hooks",
        "--endpoint-url", "https://hooks.example.com/in",
    )  # fmt: skip
    assert out.startswith("whsec_")
    credential = Credential.objects.get()
    assert (credential.endpoint.url, credential.name) == ("https://hooks.example.com/in", "hooks")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "app_nope", "--kind", "api_key", "--name", "x"], "No app has client_id"),
        (["--kind", "password", "--name", "x"], "invalid choice"),
        (["--kind", "api_key", "--name", "x", "--scopes", "root"], "Unknown scope"),
        (["--kind", "api_key", "--name", "x", "--lifetime-days", "0"], "Lifetime"),
        (["--kind", "api_key", "--name", "  "], "Enter a name"),
        (["--kind", "endpoint_secret", "--name", "x"], "--endpoint-url is required"),
        (["--kind", "service_account_key", "--name", "x"], "--public-key-file is required"),
        (
            ["--kind", "service_account_key", "--name", "x", "--public-key-file", "/nonexistent"],
            "Cannot read",
        ),
        (
            ["--kind", "endpoint_secret", "--name", "x", "--endpoint-url", "gopher://x"],
            "http:// or https://",
        ),
    ],
)
def test_issue_credential_with_bad_arguments_explains_and_changes_nothing(app, args, message):
    if "--app" not in args:
        args = ["--app", app.client_id, *args]
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=message):
        _issue_cli(*args)
    assert not Credential.objects.exists()
    assert AuditEvent.objects.count() == events


# --------------------------------------------------------------------------- reencrypt


def test_reencrypt_moves_every_ciphertext_to_the_newest_key(issue, settings):
    old_ring = settings.PORTAL_ENCRYPTION_KEYS
    secrets = [
        issue(Kind.ENDPOINT_SECRET, url=f"https://h{i}.example/").plaintext for i in range(3)
    ]
    newest = crypto.parse_keyring("X", crypto.generate_key_line("newest"))
    settings.PORTAL_ENCRYPTION_KEYS = crypto.Keyring(newest.keys + old_ring.keys)
    out = io.StringIO()
    call_command("reencrypt", stdout=out)
    assert "Re-encrypted 3 secret(s) under key 'newest'" in out.getvalue()
    assert "Keys still in use: newest." in out.getvalue()
    versions = CredentialVersion.objects.exclude(ciphertext="").order_by("pk")
    recovered = [
        crypto.decrypt(v.ciphertext, keyring=newest, associated_data=v.associated_data).decode()
        for v in versions
    ]
    assert recovered == secrets  # readable with the newest key alone: the old one can go
    moved = AuditEvent.objects.filter(action="credential.reencrypted")
    assert moved.count() == 3 and {e.details["to_key"] for e in moved} == {"newest"}
    assert verify_chain().ok
    call_command("reencrypt", stdout=(again := io.StringIO()))
    assert "Re-encrypted 0 secret(s)" in again.getvalue()


def test_reencrypt_reports_a_tampered_ciphertext_and_still_moves_the_rest(issue, settings):
    good = issue(Kind.ENDPOINT_SECRET, url="https://good.example/").version
    bad = issue(Kind.ENDPOINT_SECRET, url="https://bad.example/").version
    CredentialVersion.objects.filter(pk=bad.pk).update(ciphertext=good.ciphertext)  # moved row
    newest = crypto.parse_keyring("X", crypto.generate_key_line("newest"))
    settings.PORTAL_ENCRYPTION_KEYS = crypto.Keyring(
        newest.keys + settings.PORTAL_ENCRYPTION_KEYS.keys
    )
    with pytest.raises(CommandError, match="1 ciphertext"):
        call_command("reencrypt", stdout=io.StringIO(), stderr=io.StringIO())
    good.refresh_from_db()
    assert crypto.ciphertext_key_id(good.ciphertext) == "newest"


# --------------------------------------------------------------------------- demo data and roles


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-for-tests")
    call_command("seed_demo", stdout=io.StringIO())


def test_seed_demo_covers_the_states_people_need_to_see(demo):
    now = timezone.now()
    live = CredentialVersion.objects.filter(state=State.ACTIVE)
    assert live.filter(expires_at__lte=now + timedelta(days=7)).exists()
    assert CredentialVersion.objects.filter(
        state=State.REVOKED, reactivation_deadline__gt=now
    ).exists()
    assert CredentialVersion.objects.filter(revoke_reason=RevokeReason.EXPOSED).exists()
    assert CredentialVersion.objects.filter(state=State.RETIRING, retire_at__gt=now).exists()
    assert set(Credential.objects.values_list("kind", flat=True)) == set(Kind.values)
    assert verify_chain().ok


def test_seed_demo_is_idempotent(demo):
    counts = (CredentialVersion.objects.count(), AuditEvent.objects.count())
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "already loaded" in out.getvalue()
    assert (CredentialVersion.objects.count(), AuditEvent.objects.count()) == counts


@pytest.mark.parametrize("username", ["security", "auditor", "admin"])
def test_each_demo_login_signs_in_with_the_demo_password(demo, username):
    # Axes' backend comes first and needs the request, as every sign-in has one.
    request = RequestFactory().post("/admin/login/")
    assert authenticate(request, username=username, password="demo-password-for-tests") is not None
    assert authenticate(request, username=username, password="wrong") is None


def test_seed_demo_without_a_demo_password_refuses(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        call_command("seed_demo", stdout=io.StringIO())


ROLE_PERMISSIONS = {
    # permission:                        security, auditor, administrator
    "credentials.view_credential":        (True, True, True),
    "credentials.view_audit":             (True, True, True),
    "credentials.rotate_credential":      (True, False, True),
    "credentials.revoke_credential":      (True, False, True),
    "credentials.reactivate_credential":  (True, False, True),
    "credentials.add_credential":         (True, False, True),
    "credentials.report_exposure":        (False, False, True),
    "credentials.export_audit":           (False, True, True),
    "auth.change_user":                   (False, False, True),
}  # fmt: skip


@pytest.mark.parametrize("permission", ROLE_PERMISSIONS)
def test_role_groups_grant_exactly_their_permissions(
    permission, security_user, auditor_user, admin_user, outsider_user
):
    users = (security_user, auditor_user, admin_user)
    assert tuple(u.has_perm(permission) for u in users) == ROLE_PERMISSIONS[permission]
    assert not outsider_user.has_perm(permission)


def test_the_three_role_groups_exist_after_migrate(db):
    names = set(Group.objects.values_list("name", flat=True))
    assert {"Security staff", "Auditors", "Administrators"} <= names


def test_ensure_roles_rebuilds_groups_removed_since_the_migration(db):
    from credentials.roles import ROLES, ensure_roles

    Group.objects.all().delete()
    ensure_roles()
    ensure_roles()  # idempotent
    for name, permissions in ROLES.items():
        group = Group.objects.get(name=name)
        assert group.permissions.count() == len(permissions)


def test_the_clock_prunes_one_time_tokens_older_than_a_day(security_user):
    from credentials import once
    from credentials.models import OneTimeSubmission

    old = once.claim("old-nonce", user=security_user, purpose="rotate")
    OneTimeSubmission.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    once.claim("fresh-nonce", user=security_user, purpose="rotate")
    call_command("expire_versions", stdout=io.StringIO())
    assert list(OneTimeSubmission.objects.values_list("pk", flat=True)) != [old.pk]
    assert OneTimeSubmission.objects.count() == 1
