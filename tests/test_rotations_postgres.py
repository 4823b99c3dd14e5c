"""Many people on one guided rotation at once, on PostgreSQL with real row locks: one rotation
in progress, one new version, one revoke, however many click together."""

from collections import Counter

import pytest

from credentials import lifecycle
from credentials.audit import Actor, verify_chain
from credentials.models import AuditEvent, Kind, Rotation, State
from tests.races import together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 8


def _together(work):
    def attempt(index):
        try:
            return work(Actor.system(f"person {index}"))
        except lifecycle.LifecycleError:
            return "refused"

    return Counter(together(attempt, THREADS))


def test_people_starting_together_get_one_rotation_and_the_rest_join_it(issue):
    credential = issue(Kind.API_KEY).credential
    outcomes = _together(
        lambda actor: (
            "started"
            if lifecycle.rotation_start(actor=actor, credential=credential)[1]
            else "joined"
        )
    )
    assert outcomes["started"] == 1
    assert outcomes["started"] + outcomes["joined"] + outcomes["refused"] == THREADS
    assert Rotation.objects.filter(credential=credential, state="in_progress").count() == 1


def test_a_generate_clicked_by_many_at_once_makes_one_version_and_one_revoke(issue):
    old = issue(Kind.API_KEY).version
    actor = Actor.system("tests")
    rotation, _ = lifecycle.rotation_start(actor=actor, credential=old.credential)
    lifecycle.rotation_confirm(actor=actor, rotation=rotation, step=0, ticked=[0, 1],
                               overlap_seconds=3600)  # fmt: skip
    made = _together(
        lambda actor: lifecycle.rotation_generate(actor=actor, rotation=rotation, step=1) and "made"
    )
    assert made == Counter({"made": 1, "refused": THREADS - 1})
    assert old.credential.versions.count() == 2
    rotation.refresh_from_db()
    lifecycle.rotation_confirm(actor=actor, rotation=rotation, step=2, ticked=[0, 1, 2])
    lifecycle.rotation_check_activity(actor=actor, rotation=rotation, step=3, proceed_anyway=True)
    revoked = _together(
        lambda actor: (
            lifecycle.rotation_revoke_old(actor=actor, rotation=rotation, step=4) and "revoked"
        )
    )
    assert revoked == Counter({"revoked": 1, "refused": THREADS - 1})
    old.refresh_from_db()
    assert old.state == State.REVOKED
    assert AuditEvent.objects.filter(action="credential.revoked").count() == 1
    assert verify_chain().ok
