"""No answer of any API operation carries an old secret, a digest or a ciphertext; the one
secret that appears is the new one, in the answer that minted it (and its exact replay)."""

import logging

import pytest

from credentials import lifecycle
from credentials.models import AuditEvent, CredentialVersion, IdempotencyRecord, Kind
from tests.management_api import ALL_SCOPES, call, management_key
from tests.states import ACTOR
from tests.test_api_scopes import OPERATIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def secrets_so_far(issue, app):
    """Every kind issued and rotated, so each credential has old and new secrets."""
    known = []
    for kind in (Kind.API_KEY, Kind.CLIENT_SECRET, Kind.ENDPOINT_SECRET):
        issued = issue(kind)
        known.append(issued.plaintext)
        rotated = lifecycle.credential_rotate(
            actor=ACTOR, credential=issued.credential, overlap_seconds=600
        )
        known.append(rotated.plaintext)
    return known


def _forbidden_strings(known):
    versions = CredentialVersion.objects.all()
    digests = [v.digest for v in versions if v.digest]
    ciphertexts = [v.ciphertext for v in versions if v.ciphertext]
    stored = list(IdempotencyRecord.objects.exclude(response="").values_list("response", flat=True))
    return [*known, *digests, *ciphertexts, *stored]


def test_no_answer_of_any_operation_holds_an_old_secret_or_a_digest(
    client, issue, secrets_so_far, caplog
):
    caplog.set_level(logging.DEBUG)
    key_issued = management_key(*ALL_SCOPES)
    known = [*secrets_so_far, key_issued.plaintext]
    key = key_issued.plaintext
    answers = []

    def issue_and_remember(kind=Kind.API_KEY, **options):
        issued = issue(kind, **options)
        known.append(issued.plaintext)
        return issued

    for name, (method, path_for, body, _, success) in sorted(OPERATIONS.items()):
        response = call(client, method, path_for(issue_and_remember), key, body)
        assert response.status_code == success, name
        minted = response.json().get("secret") if name == "rotate_credential" else None
        answers.append((name, response.content.decode(), minted))
        if minted:
            known.append(minted)
    for path in ("/api/v1/openapi.json", "/api/v1/docs", "/api/v1/audit?limit=100"):
        answers.append((path, call(client, "get", path, key).content.decode(), None))
    for path in ("/api/v1/apps", "/api/v1/credentials?limit=100", "/api/v1/endpoints"):
        answers.append((path, call(client, "get", path, key).content.decode(), None))
    for credential_id in CredentialVersion.objects.values_list("credential_id", flat=True):
        path = f"/api/v1/credentials/{credential_id}/versions?limit=100"
        answers.append((path, call(client, "get", path, key).content.decode(), None))

    # Every secret ever minted so far, every digest and ciphertext now stored.
    forbidden = _forbidden_strings(known)
    assert len(known) >= 15  # the test really knows the secrets it looks for
    for name, text, minted in answers:
        for value in forbidden:
            if value == minted:
                continue
            assert value not in text, f"{name} leaks a stored secret or digest"

    # Nor does the new secret reach the audit trail or the logs.
    audit = repr(list(AuditEvent.objects.values()))
    logs = caplog.text
    for value in known:
        assert value not in audit
        assert value not in logs


def test_a_rotation_shows_its_secret_once_and_only_to_an_exact_replay(client, issue):
    key = management_key("credentials:rotate", "credentials:read", "audit:read").plaintext
    credential = issue(Kind.API_KEY).credential
    path = f"/api/v1/credentials/{credential.pk}/rotations"
    first = call(client, "post", path, key, {"overlap_seconds": 60}, "r-1")
    secret = first.json()["secret"]
    assert first["Cache-Control"] == "no-store"
    assert first.json()["version"]["last_four"] == secret[-4:]
    for later in (
        call(client, "get", f"/api/v1/credentials/{credential.pk}/versions", key),
        call(client, "get", f"/api/v1/credentials/{credential.pk}/versions/2", key),
        call(client, "get", "/api/v1/audit?limit=100", key),
        call(client, "post", path, key, {"overlap_seconds": 61}, "r-1"),  # not a replay
    ):
        assert secret not in later.content.decode()
