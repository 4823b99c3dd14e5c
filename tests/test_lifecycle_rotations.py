"""Guided rotations through the lifecycle: start and join, each step, back, abandon, exposure."""

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import IntegrityError, transaction
from django.utils import timezone

from credentials import lifecycle, playbooks, webhooks
from credentials.lifecycle.rotations import abandon_consequences, steps_of
from credentials.models import AuditEvent, CredentialVersion, Kind, RevokeReason, Rotation, State
from tests.receiver import Receiver
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


def _used(version, ago=timedelta(0)):
    CredentialVersion.objects.filter(pk=version.pk).update(
        last_used_at=timezone.now() - ago, use_count=1
    )


def _actions(rotation):
    return list(
        AuditEvent.objects.filter(target_type="rotation", target_id=str(rotation.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def _planned(credential, overlap=3600):
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=credential)
    return lifecycle.rotation_confirm(
        actor=ACTOR, rotation=rotation, step=0, ticked=[0, 1], overlap_seconds=overlap
    )


def _deployed(issue):
    """An API-key rotation with its new version made and deployed: at the activity check."""
    old = issue(Kind.API_KEY).version
    rotation = _planned(old.credential)
    new = lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1).version
    lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=2, ticked=[0, 1, 2])
    return old, new, rotation


def test_a_second_start_joins_the_rotation_in_progress(issue):
    credential = issue(Kind.API_KEY).credential
    first, started = lifecycle.rotation_start(actor=ACTOR, credential=credential)
    again, started_again = lifecycle.rotation_start(actor=ACTOR, credential=credential)
    assert (started, started_again) == (True, False)
    assert again.pk == first.pk
    assert Rotation.objects.filter(credential=credential).count() == 1
    assert _actions(first) == ["rotation.started", "rotation.resumed"]
    assert again.log[-1]["outcome"] == "joined"


def test_the_database_refuses_two_rotations_in_progress_for_one_credential(issue):
    credential = issue(Kind.API_KEY).credential
    lifecycle.rotation_start(actor=ACTOR, credential=credential)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rotation.objects.create(credential=credential, playbook="api_key", started_by="x")


def test_an_api_key_rotation_walks_every_step_to_completion(issue):
    old = issue(Kind.API_KEY).version
    rotation = _planned(old.credential)
    issued = lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
    assert issued.plaintext.startswith("ktak_")
    old.refresh_from_db()
    assert old.state == State.RETIRING
    rotation.refresh_from_db()
    assert (rotation.old_version, rotation.new_version) == (old, issued.version)
    lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=2, ticked=[0, 1, 2])

    not_yet = lifecycle.rotation_check_activity(actor=ACTOR, rotation=rotation, step=3)
    assert not not_yet.passed
    _used(issued.version)
    assert lifecycle.rotation_check_activity(actor=ACTOR, rotation=rotation, step=3).passed

    done = lifecycle.rotation_revoke_old(actor=ACTOR, rotation=rotation, step=4)
    old.refresh_from_db()
    assert (old.state, old.revoke_reason) == (State.REVOKED, RevokeReason.ROTATED)
    assert done.state == Rotation.Status.COMPLETED
    assert _actions(rotation) == ["rotation.started", *["rotation.step_completed"] * 3,
                                  "rotation.check_failed", *["rotation.step_completed"] * 2,
                                  "rotation.completed"]  # fmt: skip
    assert plaintext_nowhere(issued.plaintext, done)


def plaintext_nowhere(plaintext, rotation) -> bool:
    rotation.refresh_from_db()
    texts = [str(rotation.log), str(rotation), *map(str, AuditEvent.objects.values("details"))]
    return not any(plaintext in text for text in texts)


def test_a_step_already_done_is_refused_and_changes_nothing(issue):
    rotation = _planned(issue(Kind.API_KEY).credential)
    before = (rotation.step, len(rotation.log), AuditEvent.objects.count())
    with pytest.raises(lifecycle.TransitionRefused, match="not the current one"):
        lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=0, ticked=[0, 1],
                                   overlap_seconds=60)  # fmt: skip
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.rotation_revoke_old(actor=ACTOR, rotation=rotation, step=4)
    rotation.refresh_from_db()
    assert (rotation.step, len(rotation.log), AuditEvent.objects.count()) == before


@pytest.mark.parametrize("ticked", [[], [0], [1], [5]])
def test_a_checklist_with_an_unticked_item_is_refused(issue, ticked):
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=issue().credential)
    with pytest.raises(lifecycle.InvalidRequest, match="Tick every item"):
        lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=0, ticked=ticked,
                                   overlap_seconds=60)  # fmt: skip


@pytest.mark.parametrize("overlap", [-1, 7 * 86400 + 1, None, "3600"])
def test_the_plan_refuses_an_overlap_outside_zero_to_seven_days(issue, overlap):
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=issue().credential)
    with pytest.raises(lifecycle.InvalidRequest, match="0 to 7 days"):
        lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=0, ticked=[0, 1],
                                   overlap_seconds=overlap)  # fmt: skip


def test_the_revoke_step_asks_twice_while_the_old_version_is_still_in_use(issue):
    old, new, rotation = _deployed(issue)
    _used(new)
    lifecycle.rotation_check_activity(actor=ACTOR, rotation=rotation, step=3)
    _used(old, ago=timedelta(minutes=3))
    with pytest.raises(lifecycle.OldVersionInUse, match="within the last 15 minutes"):
        lifecycle.rotation_revoke_old(actor=ACTOR, rotation=rotation, step=4)
    old.refresh_from_db()
    assert old.state == State.RETIRING
    lifecycle.rotation_revoke_old(actor=ACTOR, rotation=rotation, step=4, in_use_confirmed=True)
    old.refresh_from_db()
    assert old.state == State.REVOKED


def test_a_use_counted_in_the_cache_but_not_yet_written_still_stops_the_revoke(issue):
    from credentials import usage

    old, new, rotation = _deployed(issue)
    _used(new)
    lifecycle.rotation_check_activity(actor=ACTOR, rotation=rotation, step=3)
    usage.record_use(old.pk)  # a service just used the old key; the row is written later
    old.refresh_from_db()
    assert old.last_used_at is None and usage.pending_uses(old.pk) == 1

    with pytest.raises(lifecycle.OldVersionInUse, match="within the last 15 minutes"):
        lifecycle.rotation_revoke_old(actor=ACTOR, rotation=rotation, step=4)
    old.refresh_from_db()
    assert old.state == State.RETIRING


def test_the_activity_check_sees_uses_not_yet_written(issue):
    from credentials import usage

    _, new, rotation = _deployed(issue)
    usage.record_use(new.pk)
    rotation.refresh_from_db()

    from credentials.lifecycle.rotation_checks import activity_finding

    finding = activity_finding(rotation, now=timezone.now())

    assert "has not been used yet" not in finding.summary


def test_a_quiet_old_version_is_revoked_without_a_second_question(issue):
    old = issue(Kind.API_KEY).version
    rotation = _planned(old.credential)
    lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
    lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=2, ticked=[0, 1, 2])
    lifecycle.rotation_check_activity(actor=ACTOR, rotation=rotation, step=3, proceed_anyway=True)
    _used(old, ago=timedelta(minutes=16))
    lifecycle.rotation_revoke_old(actor=ACTOR, rotation=rotation, step=4)
    old.refresh_from_db()
    assert old.state == State.REVOKED


def test_overlap_zero_revokes_at_generate_and_the_revoke_step_only_records_it(issue):
    old = issue(Kind.API_KEY).version
    rotation = _planned(old.credential, overlap=0)
    lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
    old.refresh_from_db()
    assert old.state == State.REVOKED
    lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=2, ticked=[0, 1, 2])
    lifecycle.rotation_check_activity(actor=ACTOR, rotation=rotation, step=3, proceed_anyway=True)
    done = lifecycle.rotation_revoke_old(actor=ACTOR, rotation=rotation, step=4)
    assert done.state == Rotation.Status.COMPLETED
    assert "had already stopped" in done.log[-2]["what"]


def test_back_is_offered_only_where_it_cannot_mint_or_revoke_again(issue):
    rotation = _planned(issue(Kind.API_KEY).credential)
    rotation = lifecycle.rotation_back(actor=ACTOR, rotation=rotation, step=1)
    assert rotation.step == 0
    rotation = lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=0, ticked=[0, 1],
                                          overlap_seconds=60)  # fmt: skip
    lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
    with pytest.raises(lifecycle.TransitionRefused, match="not possible"):
        lifecycle.rotation_back(actor=ACTOR, rotation=rotation, step=2)
    assert "rotation.stepped_back" in _actions(rotation)


def test_abandoning_after_generate_revokes_the_new_version_and_restores_the_old(issue):
    old = issue(Kind.API_KEY).version
    rotation = _planned(old.credential)
    new = lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1).version
    rotation.refresh_from_db()
    assert "becomes active again" in " ".join(abandon_consequences(rotation))
    lifecycle.rotation_abandon(actor=ACTOR, rotation=rotation, note="wrong credential")
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, old.retire_at) == (State.ACTIVE, None)
    assert new.state == State.REVOKED
    rotation.refresh_from_db()
    assert rotation.state == Rotation.Status.ABANDONED
    assert _actions(rotation)[-1] == "rotation.abandoned"
    with pytest.raises(lifecycle.TransitionRefused, match="Abandoned"):
        lifecycle.rotation_abandon(actor=ACTOR, rotation=rotation)


def test_abandoning_after_overlap_zero_reactivates_the_old_version(issue):
    old = issue(Kind.API_KEY).version
    rotation = _planned(old.credential, overlap=0)
    lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
    lifecycle.rotation_abandon(actor=ACTOR, rotation=rotation)
    old.refresh_from_db()
    assert old.state == State.ACTIVE


def test_abandoning_before_generate_changes_no_version(issue):
    old = issue(Kind.API_KEY).version
    rotation = _planned(old.credential)
    assert abandon_consequences(rotation) == [
        "No new version was made: the credential's versions stay as they are."
    ]
    lifecycle.rotation_abandon(actor=ACTOR, rotation=rotation)
    old.refresh_from_db()
    assert old.state == State.ACTIVE
    assert old.credential.versions.count() == 1


def test_rotate_now_is_refused_while_a_guided_rotation_is_in_progress(issue):
    credential = issue(Kind.API_KEY).credential
    lifecycle.rotation_start(actor=ACTOR, credential=credential)
    with pytest.raises(lifecycle.TransitionRefused, match="guided rotation"):
        lifecycle.credential_rotate(actor=ACTOR, credential=credential)
    assert credential.versions.count() == 1


def _exposure_walk(issued):
    """Start an exposure rotation from the active version, then yield after each step."""
    exposed = issued.version
    rotation, _ = lifecycle.rotation_start(
        actor=ACTOR, credential=exposed.credential, mode="exposure", exposed_version=exposed
    )
    yield rotation
    for step in steps_of(rotation)[1:]:
        rotation.refresh_from_db()
        if step.kind == playbooks.CONFIRM:
            lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=rotation.step,
                                       ticked=list(range(len(step.checklist))))  # fmt: skip
        elif step.kind == playbooks.GENERATE:
            lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=rotation.step)
        else:
            lifecycle.rotation_check_activity(actor=ACTOR, rotation=rotation,
                                              step=rotation.step, proceed_anyway=True)  # fmt: skip
        yield rotation


def test_an_exposure_rotation_revokes_first_and_never_lets_the_exposed_version_back(issue):
    issued = issue(Kind.CLIENT_SECRET)
    exposed = issued.version
    for rotation in _exposure_walk(issued):
        assert rotation.old_version_id == exposed.pk
        exposed.refresh_from_db()
        assert (exposed.state, exposed.revoke_reason) == (State.REVOKED, RevokeReason.EXPOSED)
        with pytest.raises(lifecycle.TransitionRefused, match="exposed"):
            lifecycle.version_reactivate(actor=ACTOR, version=exposed)
    rotation.refresh_from_db()
    assert rotation.state == Rotation.Status.COMPLETED
    assert steps_of(rotation)[0].key == "revoke_exposed"
    assert steps_of(rotation)[-1].kind != playbooks.REVOKE
    assert rotation.credential.versions.get(state=State.ACTIVE).number == 2


def test_abandoning_an_exposure_rotation_keeps_the_exposed_version_revoked(issue):
    issued = issue(Kind.API_KEY)
    walk = _exposure_walk(issued)
    for rotation in walk:
        if rotation.new_version_id:
            break
    lifecycle.rotation_abandon(actor=ACTOR, rotation=rotation)
    exposed = CredentialVersion.objects.get(pk=issued.version.pk)
    assert exposed.revoke_reason == RevokeReason.EXPOSED
    assert rotation.credential.versions.get(state=State.ACTIVE).pk == rotation.new_version_id
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.version_reactivate(actor=ACTOR, version=exposed)


def test_an_exposure_takes_over_a_routine_rotation_in_progress(issue):
    old = issue(Kind.API_KEY).version
    routine = _planned(old.credential)
    exposure, started = lifecycle.rotation_start(
        actor=ACTOR, credential=old.credential, mode="exposure", exposed_version=old
    )
    routine.refresh_from_db()
    assert started and routine.state == Rotation.Status.ABANDONED
    assert exposure.mode == "exposure" and exposure.step == 1


def _ed25519_pair():
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, pem.decode()


def test_possession_fails_on_a_wrong_signature_then_passes_on_the_right_one(issue):
    credential = issue(Kind.SERVICE_ACCOUNT_KEY).credential
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=credential)
    lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=0, ticked=[0],
                               overlap_seconds=3600)  # fmt: skip
    private, public = _ed25519_pair()
    lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1, public_key_pem=public)
    rotation.refresh_from_db()
    challenge = rotation.challenge
    assert challenge.startswith("keyturn-challenge-")

    wrong = base64.b64encode(private.sign(b"another text")).decode()
    finding = lifecycle.rotation_check_possession(actor=ACTOR, rotation=rotation, step=2,
                                                  signature=wrong)  # fmt: skip
    assert not finding.passed and finding.facts == {"reason": "mismatch"}
    rotation.refresh_from_db()
    assert (rotation.step, rotation.challenge) == (2, challenge)
    assert wrong not in str(rotation.log)

    right = base64.b64encode(private.sign(challenge.encode())).decode()
    assert lifecycle.rotation_check_possession(
        actor=ACTOR, rotation=rotation, step=2, signature=right
    ).passed
    rotation.refresh_from_db()
    assert rotation.step == 3 and rotation.challenge == ""
    assert challenge in rotation.earlier_challenges


@pytest.fixture
def private_targets(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver runs on 127.0.0.1


@pytest.mark.parametrize(("script", "passes"), [([200], True), ([204], True), ([301], False),
                                                ([401], False), ([500], False)])  # fmt: skip
def test_a_test_event_passes_only_on_a_2xx_answer(issue, private_targets, script, passes):
    with Receiver(script=script) as receiver:
        endpoint = issue(Kind.ENDPOINT_SECRET, url=receiver.url).credential.endpoint
        rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=endpoint.credential)
        lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=0, ticked=[0],
                                   overlap_seconds=3600)  # fmt: skip
        lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
        finding, receipt = lifecycle.rotation_test_event(
            actor=ACTOR, rotation=rotation, step=2,
            send=lambda: webhooks.send_test_ping(endpoint=endpoint, actor=ACTOR),
        )  # fmt: skip
    rotation.refresh_from_db()
    assert finding.passed is passes and receipt.status_code == script[0]
    assert rotation.step == (3 if passes else 2)
    assert rotation.log[-1]["facts"]["signed_versions"] == [1, 2]  # both sign during overlap
    assert len(receiver.requests) == 1


def test_opening_a_rotation_as_a_new_person_is_recorded_once(issue, admin_user):
    from credentials.audit import Actor

    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=issue().credential)
    other = Actor.for_user(admin_user)
    for _ in range(3):
        lifecycle.rotation_join(actor=other, rotation=rotation)
    lifecycle.rotation_join(actor=ACTOR, rotation=rotation)  # who started it does not join
    rotation.refresh_from_db()
    assert [entry["by"] for entry in rotation.log] == [admin_user.username]
    assert _actions(rotation) == ["rotation.started", "rotation.resumed"]
