"""Rotation: overlap makes the old version retire, no overlap revokes it, never two active."""

from datetime import timedelta

import pytest

from credentials import lifecycle
from credentials.models import AuditEvent, Kind, RevokeReason, State
from credentials.verification import verify_bearer
from tests.states import ACTOR, make_version

pytestmark = pytest.mark.django_db


def _states(credential):
    return {v.number: v.state for v in credential.versions.all()}


@pytest.mark.parametrize("kind", Kind.values)
def test_rotation_with_overlap_keeps_the_old_version_retiring_until_the_overlap_ends(issue, kind):
    old = issue(kind).version
    rotated = lifecycle.credential_rotate(
        actor=ACTOR,
        credential=old.credential,
        overlap_seconds=600,
        public_key_pem=_key_if_needed(kind),
    )
    old.refresh_from_db()
    assert _states(old.credential) == {1: State.RETIRING, 2: State.ACTIVE}
    assert old.retire_at == rotated.version.activated_at + timedelta(seconds=600)
    assert rotated.version.number == 2
    assert (rotated.plaintext is None) == (kind == Kind.SERVICE_ACCOUNT_KEY)


@pytest.mark.parametrize("kind", Kind.values)
def test_rotation_without_overlap_revokes_the_old_version_as_rotated(issue, kind):
    old = issue(kind).version
    lifecycle.credential_rotate(
        actor=ACTOR,
        credential=old.credential,
        overlap_seconds=0,
        public_key_pem=_key_if_needed(kind),
    )
    old.refresh_from_db()
    assert _states(old.credential) == {1: State.REVOKED, 2: State.ACTIVE}
    assert old.revoke_reason == RevokeReason.ROTATED
    assert old.reactivation_deadline is not None


def test_both_versions_verify_during_the_overlap_and_only_the_new_after_it(issue):
    old = issue(Kind.API_KEY)
    new = lifecycle.credential_rotate(actor=ACTOR, credential=old.credential, overlap_seconds=60)
    assert verify_bearer(old.plaintext).state == State.RETIRING
    assert verify_bearer(new.plaintext).state == State.ACTIVE
    later = new.version.activated_at + timedelta(seconds=61)
    assert verify_bearer(old.plaintext, now=later) is None
    assert verify_bearer(new.plaintext, now=later).state == State.ACTIVE


def test_rotating_again_during_an_overlap_revokes_the_version_still_retiring(issue):
    first = issue(Kind.API_KEY)
    lifecycle.credential_rotate(actor=ACTOR, credential=first.credential, overlap_seconds=3600)
    third = lifecycle.credential_rotate(
        actor=ACTOR, credential=first.credential, overlap_seconds=3600
    )
    assert _states(first.credential) == {1: State.REVOKED, 2: State.RETIRING, 3: State.ACTIVE}
    first.version.refresh_from_db()
    assert first.version.revoke_reason == RevokeReason.ROTATED
    assert verify_bearer(first.plaintext) is None
    assert verify_bearer(third.plaintext) is not None
    details = AuditEvent.objects.filter(action="credential.rotated").first().details
    assert details["retiring_version_revoked"] == 1


def test_rotating_a_credential_with_no_live_version_issues_a_new_active_one(issue):
    version = make_version(issue, "exposed")
    rotated = lifecycle.credential_rotate(actor=ACTOR, credential=version.credential)
    assert _states(version.credential) == {1: State.REVOKED, 2: State.ACTIVE}
    assert verify_bearer(rotated.plaintext) is not None


def test_rotating_an_active_version_past_its_expiry_expires_it_instead_of_retiring_it(issue):
    old = issue(Kind.API_KEY, lifetime_days=1).version
    old.expires_at = old.activated_at
    old.save(update_fields=["expires_at"])
    lifecycle.credential_rotate(actor=ACTOR, credential=old.credential, overlap_seconds=600)
    assert _states(old.credential) == {1: State.EXPIRED, 2: State.ACTIVE}


def test_rotation_uses_the_credentials_default_overlap_when_none_is_given(issue):
    old = issue(Kind.API_KEY, overlap_seconds=120).version
    lifecycle.credential_rotate(actor=ACTOR, credential=old.credential)
    old.refresh_from_db()
    assert old.state == State.RETIRING
    assert (old.retire_at - old.credential.versions.get(number=2).activated_at).seconds == 120


@pytest.mark.parametrize("overlap", [-1, 30 * 24 * 3600 + 1, "60", 1.5])
def test_rotation_with_a_bad_overlap_changes_nothing(issue, overlap):
    old = issue(Kind.API_KEY).version
    with pytest.raises(lifecycle.InvalidRequest, match="overlap"):
        lifecycle.credential_rotate(actor=ACTOR, credential=old.credential, overlap_seconds=overlap)
    assert _states(old.credential) == {1: State.ACTIVE}


def test_service_account_rotation_refuses_a_key_already_registered(issue):
    old = issue(Kind.SERVICE_ACCOUNT_KEY).version
    with pytest.raises(lifecycle.TransitionRefused, match="already registered"):
        lifecycle.credential_rotate(
            actor=ACTOR, credential=old.credential, public_key_pem=old.public_key_pem
        )
    assert _states(old.credential) == {1: State.ACTIVE}


def test_service_account_rotation_refuses_a_private_key_and_changes_nothing(issue):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    old = issue(Kind.SERVICE_ACCOUNT_KEY).version
    with pytest.raises(lifecycle.InvalidRequest, match="private key") as refused:
        lifecycle.credential_rotate(
            actor=ACTOR, credential=old.credential, public_key_pem=private_pem
        )
    assert private_pem.splitlines()[1] not in str(refused.value)
    assert _states(old.credential) == {1: State.ACTIVE}


def test_a_failed_rotation_leaves_no_audit_event_and_no_half_change(issue):
    old = issue(Kind.SERVICE_ACCOUNT_KEY).version
    events_before = AuditEvent.objects.count()
    with pytest.raises(lifecycle.InvalidRequest):
        lifecycle.credential_rotate(
            actor=ACTOR, credential=old.credential, overlap_seconds=600, public_key_pem="garbage"
        )
    old.refresh_from_db()
    assert old.state == State.ACTIVE and old.retire_at is None
    assert AuditEvent.objects.count() == events_before


def test_rotation_of_an_archived_apps_credential_is_refused(issue, app):
    version = issue(Kind.API_KEY).version
    app.archived_at = version.created_at
    app.save(update_fields=["archived_at"])
    with pytest.raises(lifecycle.TransitionRefused, match="archived"):
        lifecycle.credential_rotate(actor=ACTOR, credential=version.credential)


def _key_if_needed(kind):
    from tests.conftest import new_public_key_pem

    return new_public_key_pem() if kind == Kind.SERVICE_ACCOUNT_KEY else None


def test_rotating_with_no_active_version_leaves_a_retiring_one_its_overlap(issue):
    old = make_version(issue, "retiring")
    active = old.credential.versions.get(state=State.ACTIVE)
    lifecycle.version_revoke(actor=ACTOR, version=active, reason=RevokeReason.OTHER, note="bad")
    lifecycle.credential_rotate(actor=ACTOR, credential=old.credential)
    assert _states(old.credential) == {1: State.RETIRING, 2: State.REVOKED, 3: State.ACTIVE}
