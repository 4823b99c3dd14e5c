"""Idempotency-Key: a retried POST is answered with the original response and acts once."""

import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from credentials import crypto
from credentials.api import idempotency
from credentials.models import IdempotencyRecord, Kind
from tests.management_api import call, management_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def rotator():
    return management_key("credentials:rotate", "credentials:revoke").plaintext


@pytest.fixture
def target(issue):
    return issue(Kind.API_KEY).credential


def _rotate(client, key, credential, idempotency_key, overlap=60):
    path = f"/api/v1/credentials/{credential.pk}/rotations"
    return call(client, "post", path, key, {"overlap_seconds": overlap}, idempotency_key)


def test_replay_returns_the_same_secret_and_says_it_is_a_replay(client, rotator, target):
    first = _rotate(client, rotator, target, "deploy-42")
    again = _rotate(client, rotator, target, "deploy-42")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.json()["secret"] == first.json()["secret"]
    assert crypto.token_is_well_formed(first.json()["secret"])
    assert again["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first
    assert again["Cache-Control"] == "no-store"
    assert target.versions.count() == 2  # one rotation, not two


def test_same_key_with_another_body_is_refused_and_changes_nothing(client, rotator, target):
    _rotate(client, rotator, target, "deploy-42", overlap=60)
    other = _rotate(client, rotator, target, "deploy-42", overlap=0)
    assert other.status_code == 422
    assert other.json()["type"] == "urn:keyturn:problem:idempotency-key-reused"
    assert target.versions.count() == 2


def test_same_key_on_another_path_is_refused(client, rotator, target, issue):
    _rotate(client, rotator, target, "deploy-42")
    elsewhere = _rotate(client, rotator, issue(Kind.API_KEY).credential, "deploy-42")
    assert elsewhere.status_code == 422


def test_keys_belong_to_the_calling_key(client, rotator, target):
    other_pipeline = management_key("credentials:rotate").plaintext
    first = _rotate(client, rotator, target, "deploy-42")
    second = _rotate(client, other_pipeline, target, "deploy-42")
    assert second.status_code == 201
    assert "Idempotency-Replayed" not in second
    assert second.json()["secret"] != first.json()["secret"]
    assert target.versions.count() == 3


def test_a_request_still_in_flight_is_a_409(client, rotator, target):
    # What a concurrent duplicate sees: the first request's claim, not yet completed.
    from credentials.verification import verify_bearer

    caller = verify_bearer(rotator)
    path = f"/api/v1/credentials/{target.pk}/rotations"
    body = b'{"overlap_seconds": 60}'
    IdempotencyRecord.objects.create(
        caller_id=caller.version_id,
        key="deploy-42",
        request_hash=_hash("POST", path, body),
        claim="someone-else",
    )
    response = call(client, "post", path, rotator, {"overlap_seconds": 60}, "deploy-42")
    assert response.status_code == 409
    assert response.json()["type"] == "urn:keyturn:problem:idempotency-in-flight"
    assert response["Retry-After"] == "1"
    assert target.versions.count() == 1


def test_a_claim_abandoned_by_a_dead_process_can_be_retried(client, rotator, target):
    from credentials.verification import verify_bearer

    caller = verify_bearer(rotator)
    path = f"/api/v1/credentials/{target.pk}/rotations"
    IdempotencyRecord.objects.create(
        caller_id=caller.version_id,
        key="deploy-42",
        request_hash=_hash("POST", path, b'{"overlap_seconds": 60}'),
        claim="died",
        created_at=timezone.now() - timedelta(minutes=6),
    )
    response = _rotate(client, rotator, target, "deploy-42")
    assert response.status_code == 201
    assert target.versions.count() == 2


def _hash(method, path, body):
    import hashlib

    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def test_after_24_hours_the_same_key_is_a_new_request(client, rotator, target, monkeypatch):
    first = _rotate(client, rotator, target, "deploy-42")
    later = timezone.now() + timedelta(hours=24, seconds=1)
    monkeypatch.setattr(idempotency.timezone, "now", lambda: later)
    again = _rotate(client, rotator, target, "deploy-42")
    assert again.status_code == 201
    assert "Idempotency-Replayed" not in again
    assert again.json()["secret"] != first.json()["secret"]
    assert target.versions.count() == 3


def test_just_before_24_hours_it_is_still_a_replay(client, rotator, target, monkeypatch):
    first = _rotate(client, rotator, target, "deploy-42")
    later = timezone.now() + timedelta(hours=23, minutes=59)
    monkeypatch.setattr(idempotency.timezone, "now", lambda: later)
    again = _rotate(client, rotator, target, "deploy-42")
    assert again.content == first.content
    assert again["Idempotency-Replayed"] == "true"


def test_prune_deletes_stored_answers_older_than_24_hours(client, rotator, target):
    _rotate(client, rotator, target, "old")
    _rotate(client, rotator, target, "new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert idempotency.prune() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_prune_command_deletes_them_too(client, rotator, target):
    from django.core.management import call_command

    _rotate(client, rotator, target, "old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    call_command("prune_idempotency")
    assert not IdempotencyRecord.objects.exists()


def test_the_stored_answer_is_encrypted_and_bound_to_its_row(client, rotator, target):
    secret = _rotate(client, rotator, target, "deploy-42").json()["secret"]
    record = IdempotencyRecord.objects.get()
    row = repr(list(IdempotencyRecord.objects.values()))
    assert secret not in row
    assert secret[-12:] not in row
    stored = json.loads(
        crypto.decrypt(
            record.response,
            keyring=settings.PORTAL_ENCRYPTION_KEYS,
            associated_data=record.associated_data,
        )
    )
    assert secret.encode() in base64.b64decode(stored["body"])
    other = IdempotencyRecord(public_id=uuid.uuid4())
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(
            record.response,
            keyring=settings.PORTAL_ENCRYPTION_KEYS,
            associated_data=other.associated_data,
        )


def test_a_stored_answer_moved_to_another_caller_does_not_decrypt(client, rotator, target):
    # Someone with write access to the database, but no encryption key, relabels the stored
    # answer (which holds the new secret) as another pipeline's, then asks as that pipeline.
    _rotate(client, rotator, target, "deploy-42")
    other = management_key("credentials:rotate")
    IdempotencyRecord.objects.update(caller=other.version)
    again = _rotate(client, other.plaintext, target, "deploy-42")
    assert again.status_code == 409
    assert again.json()["type"] == "urn:keyturn:problem:idempotency-answer-unreadable"
    assert "secret" not in again.json()
    assert target.versions.count() == 2  # refused, never run again


def test_a_stored_answer_is_bound_to_its_request_hash(client, rotator, target):
    _rotate(client, rotator, target, "deploy-42")
    record = IdempotencyRecord.objects.get()
    record.request_hash = "0" * 64
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(
            record.response,
            keyring=settings.PORTAL_ENCRYPTION_KEYS,
            associated_data=record.associated_data,
        )


def test_a_refusal_is_stored_and_replayed_as_well(client, rotator, issue):
    version = issue(Kind.API_KEY).version
    path = f"/api/v1/credentials/{version.credential_id}/versions/{version.number}/reactivate"
    first = call(client, "post", path, rotator, {}, "undo-1")
    again = call(client, "post", path, rotator, {}, "undo-1")
    assert first.status_code == 409
    assert first.json()["type"] == "urn:keyturn:problem:transition-refused"
    assert again.content == first.content
    assert again["Idempotency-Replayed"] == "true"


BAD_KEYS = {
    "empty": "",
    "too long": "k" * 256,
    "a space": "deploy 42",
    "a tab": "deploy\t42",
    "non-ASCII": "déploiement",
    "secret-shaped": crypto.generate_token("api_key"),
}


@pytest.mark.parametrize("name", sorted(BAD_KEYS))
def test_malformed_keys_are_refused_before_anything_happens(client, rotator, target, name):
    bad = BAD_KEYS[name]
    response = _rotate(client, rotator, target, bad)
    assert response.status_code == 400
    assert response.json()["type"] == "urn:keyturn:problem:idempotency-key-invalid"
    assert target.versions.count() == 1
    if name == "secret-shaped":
        assert bad not in response.content.decode()


def test_the_longest_allowed_key_works(client, rotator, target):
    assert _rotate(client, rotator, target, "~" * 255).status_code == 201


def test_a_post_without_a_key_is_refused(client, rotator, target):
    response = _rotate(client, rotator, target, None)
    assert response.status_code == 400
    assert response.json()["type"] == "urn:keyturn:problem:idempotency-key-missing"
    assert target.versions.count() == 1


def test_a_server_error_is_not_stored_so_the_retry_runs_again(client, rotator, target, monkeypatch):
    from credentials import lifecycle

    real = lifecycle.credential_rotate
    calls = []

    def fails_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(lifecycle, "credential_rotate", fails_once)
    failed = _rotate(client, rotator, target, "deploy-42")
    assert failed.status_code == 500
    assert failed.json()["type"] == "urn:keyturn:problem:server-error"
    retried = _rotate(client, rotator, target, "deploy-42")
    assert retried.status_code == 201
    assert "Idempotency-Replayed" not in retried
    assert target.versions.count() == 2


def test_an_answer_under_a_retired_key_is_refused_never_run_again(
    client, rotator, target, settings
):
    _rotate(client, rotator, target, "deploy-42")
    settings.PORTAL_ENCRYPTION_KEYS = crypto.parse_keyring(
        "PORTAL_ENCRYPTION_KEYS", crypto.generate_key_line("fresh")
    )
    again = _rotate(client, rotator, target, "deploy-42")
    assert again.status_code == 409
    assert again.json()["type"] == "urn:keyturn:problem:idempotency-answer-unreadable"
    assert target.versions.count() == 2


def test_the_clock_deletes_stored_answers_older_than_24_hours(client, rotator, target):
    from credentials.webhooks.clock import sweep

    _rotate(client, rotator, target, "old")
    _rotate(client, rotator, target, "new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    report = sweep()
    assert report.pruned_answers == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
