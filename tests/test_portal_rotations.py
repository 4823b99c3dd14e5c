"""The guided rotation pages through the test client: walking, replays and skips, roles."""

import base64
import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.urls import reverse
from django.utils import timezone

from credentials import once
from credentials.lifecycle.rotations import steps_of
from credentials.models import AuditEvent, CredentialVersion, Kind, RevokeReason, Rotation, State
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'name="once" value="([^"]+)"')
STEP = re.compile(r'name="step" value="(\d+)"')


def rotation_url(rotation):
    return reverse("admin:credentials_rotation", args=[rotation.pk])


def start(client, credential) -> Rotation:
    response = client.post(
        reverse("admin:credentials_credential_rotation_start", args=[credential.pk])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Rotation.objects.get(credential=credential, state="in_progress")


def form_of(client, rotation) -> dict:
    page = client.get(rotation_url(rotation)).content.decode()
    return {"once": TOKEN.search(page).group(1), "step": STEP.search(page).group(1)}


def fields_for(rotation, signer=None) -> dict:
    """What a person fills in on the current step to get past it."""
    rotation.refresh_from_db()
    step = steps_of(rotation)[rotation.step]
    fields = {f"tick_{n}": "on" for n in range(len(step.checklist))}
    if step.plan:
        fields["overlap_hours"] = "2"
    if step.check == "activity":
        fields["anyway"] = "on"
    if step.kind == "generate" and rotation.credential.kind == Kind.SERVICE_ACCOUNT_KEY:
        fields["public_key"] = signer.public_pem
    if step.check == "possession":
        fields["signature"] = signer.sign(rotation.challenge)
    if step.kind == "revoke":
        fields["in_use"] = "on"
    return fields


class Signer:
    def __init__(self):
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.public_pem = (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, challenge):
        return base64.b64encode(self.key.sign(challenge.encode())).decode()


def step_post(client, rotation, signer=None, **extra):
    data = {**form_of(client, rotation), **fields_for(rotation, signer), **extra}
    return client.post(rotation_url(rotation), data), data


def snapshot(rotation):
    rotation.refresh_from_db()
    return (
        rotation.step, rotation.state, len(rotation.log),
        list(CredentialVersion.objects.order_by("pk").values_list("pk", "state")),
        AuditEvent.objects.count(),
    )  # fmt: skip


WALKABLE = [Kind.API_KEY, Kind.CLIENT_SECRET, Kind.SERVICE_ACCOUNT_KEY]


@pytest.mark.parametrize("kind", WALKABLE)
def test_each_playbook_walks_to_completion_and_shows_the_plaintext_in_one_response(
    client, security_user, issue, kind
):
    client.force_login(security_user)
    old = issue(kind).version
    rotation = start(client, old.credential)
    signer = Signer()
    bodies = []
    while rotation.in_progress:
        response, _ = step_post(client, rotation, signer)
        assert response.status_code in (200, 302), response.content.decode()[:3000]
        bodies.append(response.content.decode())
        bodies.append(client.get(rotation_url(rotation)).content.decode())
        rotation.refresh_from_db()
    assert rotation.state == Rotation.Status.COMPLETED
    old.refresh_from_db()
    assert (old.state, old.revoke_reason) == (State.REVOKED, RevokeReason.ROTATED)
    new = rotation.new_version
    if kind != Kind.SERVICE_ACCOUNT_KEY:
        shown = [body for body in bodies if re.search(r'id="kt-secret"[^>]*value="kt', body)]
        assert len(shown) == 1
        plaintext = re.search(r'id="kt-secret"[^>]*value="([^"]+)"', shown[0]).group(1)
        assert plaintext.endswith(new.last_four)
        assert sum(plaintext in body for body in bodies) == 1


def test_the_generate_response_is_never_stored_and_a_resend_shows_only_the_last_four(
    client, security_user, issue
):
    client.force_login(security_user)
    rotation = start(client, issue(Kind.API_KEY).credential)
    step_post(client, rotation)  # the plan
    response, sent = step_post(client, rotation)
    assert "no-store" in response["Cache-Control"]
    assert 'id="kt-secret"' in response.content.decode()
    before = snapshot(rotation)
    again = client.post(rotation_url(rotation), sent)  # reload = the same form again
    body = again.content.decode()
    assert again.status_code == 409
    assert "already displayed" in body and 'id="kt-secret"' not in body
    rotation.refresh_from_db()
    assert rotation.new_version.masked in body
    assert snapshot(rotation) == before


def _cases():
    """(playbook kind, step index) for every step a routine rotation of each kind has."""
    from credentials import playbooks

    return [(kind, index) for kind in [*WALKABLE, Kind.ENDPOINT_SECRET]
            for index, _ in enumerate(playbooks.for_kind(kind).steps("routine"))]  # fmt: skip


def _walk_to(client, rotation, index, signer):
    while rotation.step < index:
        step_post(client, rotation, signer)
        rotation.refresh_from_db()


@pytest.fixture
def private_targets(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receivers run on 127.0.0.1


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


ATTACKS = ["replay", "skip_ahead", "stale_step", "forged_token", "other_users_token", "no_token"]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize(("kind", "index"), _cases())
def test_replays_and_skips_against_each_step_are_refused_with_nothing_changed(
    client, security_user, admin_user, issue, kind, index, attack, receiver, private_targets
):
    client.force_login(security_user)
    options = {"url": receiver.url} if kind == Kind.ENDPOINT_SECRET else {}
    rotation = start(client, issue(kind, **options).credential)
    signer = Signer()
    _walk_to(client, rotation, index, signer)
    if attack == "replay":
        _, sent = step_post(client, rotation, signer)
        rotation.refresh_from_db()
        data = sent
    else:
        data = {**form_of(client, rotation), **fields_for(rotation, signer)}
        here = rotation.step
        if attack == "skip_ahead":
            target = f"rotation:{rotation.pk}:{here + 1}"
            data["once"] = once.new_token(user=security_user, purpose="rotation", target=target)
            data["step"] = str(here + 1)
        elif attack == "stale_step" and here > 0:
            target = f"rotation:{rotation.pk}:{here - 1}"
            data["once"] = once.new_token(user=security_user, purpose="rotation", target=target)
            data["step"] = str(here - 1)
        elif attack == "stale_step":
            data["step"] = "0x"
        elif attack == "forged_token":
            data["once"] = data["once"][:-3] + "AAA"
        elif attack == "other_users_token":
            target = f"rotation:{rotation.pk}:{here}"
            data["once"] = once.new_token(user=admin_user, purpose="rotation", target=target)
        else:
            del data["once"]
    before, sent_before = snapshot(rotation), len(receiver.requests)
    response = client.post(rotation_url(rotation), data)
    assert response.status_code in (409, 400), (attack, response.status_code)
    assert snapshot(rotation) == before
    assert len(receiver.requests) == sent_before  # no test event went out either
    assert 'id="kt-secret"' not in response.content.decode()


def test_a_second_person_joins_the_rotation_and_a_stale_tab_cannot_repeat_a_step(
    client, security_user, admin_user, issue
):
    credential = issue(Kind.API_KEY).credential
    client.force_login(security_user)
    rotation = start(client, credential)
    other = type(client)()
    other.force_login(admin_user)
    assert start(other, credential).pk == rotation.pk
    theirs = {**form_of(other, rotation), **fields_for(rotation)}
    step_post(client, rotation)  # the first person completes the plan meanwhile
    before = snapshot(rotation)
    response = other.post(rotation_url(rotation), theirs)
    assert response.status_code == 409
    assert "not the current one" in response.content.decode()
    assert snapshot(rotation) == before
    assert [entry["outcome"] for entry in rotation.log][:2] == ["joined", "done"]


def test_the_revoke_step_warns_and_needs_a_second_confirmation_while_the_old_key_is_used(
    client, security_user, issue
):
    client.force_login(security_user)
    old = issue(Kind.API_KEY).version
    rotation = start(client, old.credential)
    _walk_to(client, rotation, 4, None)
    CredentialVersion.objects.filter(pk=old.pk).update(last_used_at=timezone.now())
    response, _ = step_post(client, rotation, in_use="")
    body = response.content.decode()
    assert response.status_code == 409
    assert "within the last 15 minutes" in body and 'name="in_use"' in body
    old.refresh_from_db()
    assert old.state == State.RETIRING
    response, _ = step_post(client, rotation)  # with the box ticked
    old.refresh_from_db()
    assert response.status_code == 302 and old.state == State.REVOKED


def test_an_auditor_sees_the_rotation_and_its_log_but_no_form_and_cannot_act(
    client, security_user, auditor_user, issue
):
    credential = issue(Kind.API_KEY).credential
    client.force_login(security_user)
    rotation = start(client, credential)
    sent = {**form_of(client, rotation), **fields_for(rotation)}
    client.force_login(auditor_user)
    page = client.get(rotation_url(rotation))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="kt-rotation-log"' in body and 'name="once"' not in body
    before = snapshot(rotation)
    for url, data in [(rotation_url(rotation), sent),
                      (reverse("admin:credentials_rotation_abandon", args=[rotation.pk]),
                       {"confirm": "on"})]:  # fmt: skip
        assert client.post(url, data).status_code == 403
    assert snapshot(rotation) == before
    assert client.get(reverse("admin:credentials_rotation_activity", args=[rotation.pk])).json()


def test_the_activity_endpoint_reports_last_use_of_old_and_new(client, security_user, issue):
    client.force_login(security_user)
    old = issue(Kind.API_KEY).version
    rotation = start(client, old.credential)
    _walk_to(client, rotation, 3, None)
    url = reverse("admin:credentials_rotation_activity", args=[rotation.pk])
    data = client.get(url).json()
    assert data["passed"] is False and data["new"]["last_used_at"] is None
    assert data["old"]["stops_at"] is not None  # the overlap end: when it stops on its own
    rotation.refresh_from_db()
    CredentialVersion.objects.filter(pk=rotation.new_version_id).update(
        last_used_at=timezone.now(), use_count=3
    )
    CredentialVersion.objects.filter(pk=old.pk).update(
        last_used_at=rotation.step_started_at - timedelta(minutes=1)
    )
    response = client.get(url)
    data = response.json()
    assert data["passed"] is True and data["new"]["use_count"] == 3
    assert "no-store" in response["Cache-Control"]


def test_abandoning_halfway_explains_then_restores_the_old_version(client, security_user, issue):
    client.force_login(security_user)
    old = issue(Kind.API_KEY).version
    rotation = start(client, old.credential)
    _walk_to(client, rotation, 2, None)
    url = reverse("admin:credentials_rotation_abandon", args=[rotation.pk])
    assert "becomes active again" in client.get(url).content.decode()
    assert client.post(url, {}).status_code == 409  # the box was not ticked: nothing happens
    assert client.post(url, {"confirm": "on", "note": "wrong app"}).status_code == 302
    old.refresh_from_db()
    rotation.refresh_from_db()
    assert old.state == State.ACTIVE and rotation.state == Rotation.Status.ABANDONED
    assert rotation.new_version.state == State.REVOKED


def test_reporting_exposure_starts_an_exposure_rotation_flagged_on_the_credential_and_home(
    client, admin_user, issue
):
    client.force_login(admin_user)
    version = issue(Kind.API_KEY).version
    response = client.post(
        reverse("admin:credentials_credentialversion_expose", args=[version.pk]),
        {"note": "pasted in chat", "confirm": "on"},
    )
    rotation = Rotation.objects.get(credential=version.credential)
    assert response["Location"] == rotation_url(rotation)
    assert rotation.mode == "exposure" and rotation.step == 1
    credential_page = reverse("admin:credentials_credential_change", args=[version.credential_id])
    for url in (credential_page, reverse("admin:index"), rotation_url(rotation)):
        assert "kt-exposure-banner" in client.get(url).content.decode(), url
    while rotation.in_progress:
        step_post(client, rotation)
        rotation.refresh_from_db()
        version.refresh_from_db()
        assert version.revoke_reason == RevokeReason.EXPOSED
    for url in (credential_page, reverse("admin:index")):
        assert "kt-exposure-banner" not in client.get(url).content.decode(), url


def test_bad_input_on_a_step_is_a_clear_error_not_a_server_error(client, security_user, issue):
    client.force_login(security_user)
    client.raise_request_exception = False
    rotation = start(client, issue(Kind.SERVICE_ACCOUNT_KEY).credential)
    signer = Signer()
    for hours in ("lots", "NaN", "-1", "169", "1e400"):
        response, _ = step_post(client, rotation, signer, overlap_hours=hours)
        assert response.status_code == 400, hours
        assert "overlap" in response.content.decode().lower()
    step_post(client, rotation, signer)
    response, _ = step_post(
        client, rotation, signer, public_key="-----BEGIN PRIVATE KEY-----\nMC4=\n"
    )
    assert response.status_code == 400 and "private key" in response.content.decode()
    assert "MC4=" not in response.content.decode()


def test_a_failing_then_passing_test_event_shows_each_receipt(client, security_user, issue,
                                                              private_targets):  # fmt: skip
    client.force_login(security_user)
    with Receiver(script=[503, 200]) as receiver:
        rotation = start(client, issue(Kind.ENDPOINT_SECRET, url=receiver.url).credential)
        _walk_to(client, rotation, 2, None)
        failed, _ = step_post(client, rotation)
        rotation.refresh_from_db()
        assert rotation.step == 2 and "Failed:" in failed.content.decode()
        assert "503" in failed.content.decode()
        passed, sent = step_post(client, rotation)
        before = snapshot(rotation)
        replay = client.post(rotation_url(rotation), sent)
    assert "Passed: the endpoint accepted the signature." in passed.content.decode()
    rotation.refresh_from_db()
    assert rotation.step == 3
    assert replay.status_code == 409 and snapshot(rotation) == before
    assert len(receiver.requests) == 2  # the replay sent nothing


def test_the_secret_form_resent_after_the_rotation_finished_still_shows_only_the_last_four(
    client, security_user, issue
):
    client.force_login(security_user)
    rotation = start(client, issue(Kind.API_KEY).credential)
    step_post(client, rotation)
    _, generate_form = step_post(client, rotation)
    _walk_to(client, rotation, 5, None)
    rotation.refresh_from_db()
    assert rotation.state == Rotation.Status.COMPLETED
    before = snapshot(rotation)
    again = client.post(rotation_url(rotation), generate_form)
    assert again.status_code == 409 and "already displayed" in again.content.decode()
    assert snapshot(rotation) == before
