"""Many writers on one credential at once: one active version at most, an unbroken chain.

Real threads, each with its own PostgreSQL connection, start together at a barrier and race
rotations, revokes and reactivations against the same credential.
"""

import random
from collections import Counter

import pytest

from credentials import lifecycle
from credentials.audit import Actor, verify_chain
from credentials.models import AuditEvent, CredentialVersion, Kind, RevokeReason, State
from credentials.verification import verify_bearer
from tests.races import together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
ROUNDS = 12


def _race(work, threads=THREADS):
    def rounds(index):
        rng, outcomes = random.Random(index), Counter()
        for _ in range(ROUNDS):
            try:
                outcomes[work(rng, index)] += 1
            except lifecycle.LifecycleError:
                outcomes["refused"] += 1
        return outcomes

    return sum(together(rounds, threads), Counter())


def _assert_consistent(credential):
    versions = list(CredentialVersion.objects.filter(credential=credential).order_by("number"))
    states = Counter(v.state for v in versions)
    assert states[State.ACTIVE] <= 1
    assert states[State.RETIRING] <= 1
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    for version in versions:
        if version.state == State.REVOKED:
            assert version.revoke_reason and version.revoked_at
        if version.state == State.RETIRING:
            assert version.retire_at is not None
    report = verify_chain()
    assert report.ok, report.problem
    return versions


def test_racing_rotations_revokes_and_reactivations_keep_the_invariants(app):
    issued = lifecycle.credential_issue(
        actor=Actor.system("tests"), app=app, kind=Kind.API_KEY, name="contended"
    )
    credential = issued.credential

    def work(rng, index):
        actor = Actor.system(f"worker {index}")
        versions = list(CredentialVersion.objects.filter(credential=credential))
        choice = rng.random()
        if choice < 0.4:
            lifecycle.credential_rotate(
                actor=actor, credential=credential, overlap_seconds=rng.choice([0, 600])
            )
            return "rotated"
        live = [v for v in versions if v.state in (State.ACTIVE, State.RETIRING)]
        revoked = [v for v in versions if v.state == State.REVOKED]
        if choice < 0.7 and live:
            lifecycle.version_revoke(
                actor=actor, version=rng.choice(live), reason=RevokeReason.ROUTINE
            )
            return "revoked"
        if revoked:
            lifecycle.version_reactivate(actor=actor, version=rng.choice(revoked))
            return "reactivated"
        return "nothing to do"

    outcomes = _race(work)
    versions = _assert_consistent(credential)
    actions = Counter(AuditEvent.objects.values_list("action", flat=True))
    assert actions["credential.rotated"] == outcomes["rotated"] == len(versions) - 1
    assert actions["credential.reactivated"] == outcomes["reactivated"]
    # Every revoke is audited: the direct ones and those a rotation made (overlap 0, or the
    # version still retiring when the next rotation came).
    assert actions["credential.revoked"] == outcomes["revoked"]
    assert outcomes["rotated"] > THREADS  # the race really happened
    first = versions[0]
    first_verifies = first.state in (State.ACTIVE, State.RETIRING)
    assert (verify_bearer(issued.plaintext) is not None) == first_verifies


def test_concurrent_reactivations_of_two_versions_leave_one_active(app):
    actor = Actor.system("tests")
    first = lifecycle.credential_issue(actor=actor, app=app, kind=Kind.API_KEY, name="pair")
    second = lifecycle.credential_rotate(
        actor=actor, credential=first.credential, overlap_seconds=0
    )
    lifecycle.version_revoke(actor=actor, version=second.version, reason=RevokeReason.ROUTINE)
    # Now both versions are revoked, both inside their window, both were active before.
    candidates = [first.version, second.version]

    def work(rng, index):
        lifecycle.version_reactivate(actor=actor, version=candidates[index % 2])
        return "reactivated"

    outcomes = _race(work)
    _assert_consistent(first.credential)
    assert outcomes["reactivated"] == 1
    assert CredentialVersion.objects.filter(state=State.ACTIVE).count() == 1


def test_concurrent_issues_across_credentials_never_fork_the_audit_chain(app):
    def work(rng, index):
        lifecycle.credential_issue(
            actor=Actor.system(f"worker {index}"), app=app, kind=Kind.API_KEY, name=f"w{index}"
        )
        return "issued"

    outcomes = _race(work)
    assert outcomes["issued"] == THREADS * ROUNDS
    report = verify_chain()
    assert report.ok and report.checked == AuditEvent.objects.count()
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
