"""Every transition of the version state machine, allowed and refused, as one table each."""

import pytest

from credentials import lifecycle
from credentials.audit import verify_chain
from credentials.models import AuditEvent, CredentialVersion, Kind, RevokeReason, State
from tests.states import ACTOR, make_version

pytestmark = pytest.mark.django_db

ALL_STATES = ["active", "retiring", "revoked", "revoked_from_retiring", "exposed", "expired"]


def _events(version, action):
    return AuditEvent.objects.filter(action=action, target_id=str(version.pk))


# --------------------------------------------------------------------------- revoke

REVOKE_ALLOWED = {"active", "retiring"}


@pytest.mark.parametrize("state", ALL_STATES)
def test_revoke_is_allowed_only_from_a_verifying_state(issue, state):
    version = make_version(issue, state)
    before = version.state
    if state in REVOKE_ALLOWED:
        revoked = lifecycle.version_revoke(
            actor=ACTOR, version=version, reason=RevokeReason.OFFBOARDING
        )
        assert revoked.state == State.REVOKED
        assert revoked.state_before_revoke == before
        assert revoked.revoke_reason == RevokeReason.OFFBOARDING
        assert revoked.reactivation_deadline is not None
        assert _events(version, "credential.revoked").count() == 1
    else:
        with pytest.raises(lifecycle.TransitionRefused, match="already"):
            lifecycle.version_revoke(actor=ACTOR, version=version, reason=RevokeReason.ROUTINE)
        version.refresh_from_db()
        assert version.state == before


@pytest.mark.parametrize(
    ("reason", "note", "message"),
    [
        ("", "", "Choose a reason"),
        ("because", "", "Choose a reason"),
        (RevokeReason.OTHER, "", "note"),
        (RevokeReason.OTHER, "   ", "note"),
        (RevokeReason.ROUTINE, "x" * 2001, "under 2000"),
    ],
    ids=["no-reason", "unknown-reason", "other-without-note", "other-blank-note", "long-note"],
)
def test_revoke_with_a_bad_reason_or_note_changes_nothing(issue, reason, note, message):
    version = issue(Kind.API_KEY).version
    with pytest.raises(lifecycle.InvalidRequest, match=message):
        lifecycle.version_revoke(actor=ACTOR, version=version, reason=reason, note=note)
    version.refresh_from_db()
    assert version.state == State.ACTIVE
    assert not _events(version, "credential.revoked").exists()


def test_an_exposure_cannot_be_filed_as_an_ordinary_revoke(issue):
    version = issue(Kind.API_KEY).version
    with pytest.raises(lifecycle.InvalidRequest, match="Report an exposed version as exposed"):
        lifecycle.version_revoke(actor=ACTOR, version=version, reason=RevokeReason.EXPOSED)
    version.refresh_from_db()
    assert version.state == State.ACTIVE


LEAKED = "whsec_MfKQ9r8GKYqrTFWN5Qq7uGzfXvmzpdX5RWYNz6E8nJU="


def test_a_note_quoting_a_leaked_secret_is_redacted_and_never_blocks_the_revoke(issue):
    version = issue(Kind.API_KEY).version
    note = f"found {LEAKED} in a gist"
    exposed = lifecycle.version_report_exposure(actor=ACTOR, version=version, note=note)
    assert exposed.state == State.REVOKED
    assert exposed.revoke_note == "found [redacted] in a gist"
    event = _events(version, "credential.exposed").get()
    assert LEAKED not in str(event.details) and "[redacted]" in event.details["note"]


@pytest.mark.parametrize(
    "name", [f"key {LEAKED}", "ktcs_" + "a" * 46, "-----BEGIN RSA PRIVATE KEY-----"]
)
def test_a_name_containing_a_secret_is_refused_before_anything_is_stored(issue, name):
    with pytest.raises(lifecycle.InvalidRequest, match="shaped like a secret"):
        issue(Kind.API_KEY, name=name)
    assert not AuditEvent.objects.filter(action="credential.issued").exists()


# --------------------------------------------------------------------------- reactivate


@pytest.mark.parametrize(
    ("state", "restored"),
    [("revoked", State.ACTIVE), ("revoked_from_retiring", State.RETIRING)],
)
def test_reactivate_inside_the_window_restores_the_previous_state(issue, state, restored):
    version = make_version(issue, state)
    reactivated = lifecycle.version_reactivate(actor=ACTOR, version=version)
    assert reactivated.state == restored
    assert reactivated.revoke_reason == ""
    assert reactivated.reactivation_deadline is None
    assert _events(version, "credential.reactivated").count() == 1


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("active", "only a revoked version"),
        ("retiring", "only a revoked version"),
        ("expired", "only a revoked version"),
        ("exposed", "exposed"),
    ],
)
def test_reactivate_is_refused_outside_a_reversible_revoke(issue, state, message):
    version = make_version(issue, state)
    before = version.state
    with pytest.raises(lifecycle.TransitionRefused, match=message):
        lifecycle.version_reactivate(actor=ACTOR, version=version)
    version.refresh_from_db()
    assert version.state == before
    assert not _events(version, "credential.reactivated").exists()


def test_reactivate_after_the_window_closed_is_refused(issue, settings):
    settings.PORTAL_REACTIVATION_WINDOW_MINUTES = 0
    version = make_version(issue, "revoked")
    with pytest.raises(lifecycle.TransitionRefused, match=r"window .* closed"):
        lifecycle.version_reactivate(actor=ACTOR, version=version)
    version.refresh_from_db()
    assert version.state == State.REVOKED


def test_reactivate_refuses_to_leave_two_active_versions(issue):
    old = issue(Kind.API_KEY).version
    lifecycle.credential_rotate(actor=ACTOR, credential=old.credential, overlap_seconds=0)
    old.refresh_from_db()
    assert (old.state, old.revoke_reason) == (State.REVOKED, RevokeReason.ROTATED)
    with pytest.raises(lifecycle.TransitionRefused, match="two active versions"):
        lifecycle.version_reactivate(actor=ACTOR, version=old)
    assert old.credential.versions.filter(state=State.ACTIVE).count() == 1


def test_reactivate_after_the_new_version_is_revoked_brings_the_old_one_back(issue):
    old = issue(Kind.API_KEY).version
    new = lifecycle.credential_rotate(
        actor=ACTOR, credential=old.credential, overlap_seconds=0
    ).version
    lifecycle.version_revoke(actor=ACTOR, version=new, reason=RevokeReason.OTHER, note="bad deploy")
    assert lifecycle.version_reactivate(actor=ACTOR, version=old).state == State.ACTIVE


def test_reactivate_of_a_retiring_version_whose_overlap_ended_is_refused(issue):
    version = make_version(issue, "revoked_from_retiring")
    CredentialVersion.objects.filter(pk=version.pk).update(retire_at=version.revoked_at)
    with pytest.raises(lifecycle.TransitionRefused, match="overlap ended"):
        lifecycle.version_reactivate(actor=ACTOR, version=version)


def test_reactivate_of_a_version_past_its_expiry_is_refused(issue):
    version = make_version(issue, "revoked")
    CredentialVersion.objects.filter(pk=version.pk).update(expires_at=version.revoked_at)
    with pytest.raises(lifecycle.TransitionRefused, match="expiry"):
        lifecycle.version_reactivate(actor=ACTOR, version=version)


# --------------------------------------------------------------------------- report exposure


@pytest.mark.parametrize("state", ["active", "retiring", "revoked"])
def test_report_exposure_revokes_for_good(issue, state):
    version = make_version(issue, state)
    exposed = lifecycle.version_report_exposure(actor=ACTOR, version=version, note="in a gist")
    assert exposed.state == State.REVOKED
    assert exposed.revoke_reason == RevokeReason.EXPOSED
    assert exposed.reactivation_deadline is None
    assert _events(version, "credential.exposed").count() == 1
    with pytest.raises(lifecycle.TransitionRefused, match="exposed"):
        lifecycle.version_reactivate(actor=ACTOR, version=exposed)


def test_reporting_the_same_exposure_twice_is_refused(issue):
    version = make_version(issue, "exposed")
    with pytest.raises(lifecycle.TransitionRefused, match="already reported"):
        lifecycle.version_report_exposure(actor=ACTOR, version=version)
    assert _events(version, "credential.exposed").count() == 1


def test_reporting_an_expired_version_records_the_report_and_keeps_it_expired(issue):
    version = make_version(issue, "expired")
    reported = lifecycle.version_report_exposure(actor=ACTOR, version=version)
    assert reported.state == State.EXPIRED
    assert _events(version, "credential.exposed").count() == 1


# ------------------------------------------------------------ every transition audited


def test_every_transition_above_left_an_intact_chain(issue):
    for state in ALL_STATES:
        make_version(issue, state)
    report = verify_chain()
    assert report.ok, report.problem
    assert report.checked == AuditEvent.objects.count() > len(ALL_STATES)
