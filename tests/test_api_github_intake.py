"""GitHub secret-scanning intake: a signed report of a leaked key revokes it within the one
request; anything unsigned, badly signed, altered, oversized or malformed revokes nothing."""

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from credentials import crypto
from credentials.api.github import MAX_REPORT_BYTES
from credentials.models import AuditEvent, CredentialVersion, Kind, RevokeReason, State

pytestmark = pytest.mark.django_db

URL = "/api/v1/exposures/github"
KEY_ID = "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d"


def _new_key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem(private_key):
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _sign(private_key, body: bytes) -> str:
    return base64.b64encode(private_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode("ascii")


@pytest.fixture
def github_key(settings):
    """A key pair standing in for GitHub's; its public half configured in the portal."""
    private_key = _new_key()
    settings.PORTAL_GITHUB_SCANNING_KEYS = {KEY_ID: _pem(private_key)}
    return private_key


def _report(*tokens, url="https://github.com/octo/repo/blob/abc/config.yml"):
    matches = [
        {"token": t, "type": "keyturn_api_key", "url": url, "source": "content"} for t in tokens
    ]
    return json.dumps(matches).encode()


def _post(client, body: bytes, signature=None, key_id=KEY_ID, **extra):
    headers = {}
    if key_id is not None:
        headers["HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER"] = key_id
    if signature is not None:
        headers["HTTP_GITHUB_PUBLIC_KEY_SIGNATURE"] = signature
    return client.post(URL, body, content_type="application/json", **headers, **extra)


def _states():
    return sorted(CredentialVersion.objects.values_list("pk", "state", "revoke_reason"))


def test_a_signed_report_revokes_the_leaked_key_as_exposed(client, github_key, issue):
    leaked = issue(Kind.API_KEY)
    bystander = issue(Kind.API_KEY)
    unknown = crypto.generate_token("api_key")
    body = _report(leaked.plaintext, unknown, "not-a-keyturn-token")
    response = _post(client, body, _sign(github_key, body))
    assert response.status_code == 200
    assert response.json() == [
        {
            "token_hash": hashlib.sha256(token.encode()).hexdigest(),
            "token_type": "keyturn_api_key",
            "label": label,
        }
        for token, label in (
            (leaked.plaintext, "true_positive"),
            (unknown, "false_positive"),
            ("not-a-keyturn-token", "false_positive"),
        )
    ]
    leaked.version.refresh_from_db()
    assert leaked.version.state == State.REVOKED
    assert leaked.version.revoke_reason == RevokeReason.EXPOSED
    assert leaked.version.reactivation_deadline is None
    bystander.version.refresh_from_db()
    assert bystander.version.state == State.ACTIVE
    event = AuditEvent.objects.get(action="credential.exposed")
    assert event.credential_id == leaked.credential.pk
    assert event.actor_label.startswith("GitHub secret scanning")
    assert "github.com/octo/repo" in event.details["note"]
    # The answer names tokens by hash only: it never carries the secret back.
    assert leaked.plaintext not in response.content.decode()


def test_a_client_secret_is_matched_too(client, github_key, issue):
    leaked = issue(Kind.CLIENT_SECRET)
    body = _report(leaked.plaintext)
    assert _post(client, body, _sign(github_key, body)).json()[0]["label"] == "true_positive"
    leaked.version.refresh_from_db()
    assert leaked.version.revoke_reason == RevokeReason.EXPOSED


def test_a_repeated_report_changes_nothing_more(client, github_key, issue):
    leaked = issue(Kind.API_KEY)
    body = _report(leaked.plaintext)
    signature = _sign(github_key, body)
    _post(client, body, signature)
    again = _post(client, body, signature)
    assert again.status_code == 200
    assert again.json()[0]["label"] == "true_positive"
    assert AuditEvent.objects.filter(action="credential.exposed").count() == 1


def test_a_retiring_version_that_leaked_is_revoked(client, github_key, issue):
    from credentials import lifecycle
    from tests.states import ACTOR

    old = issue(Kind.API_KEY)
    lifecycle.credential_rotate(actor=ACTOR, credential=old.credential, overlap_seconds=600)
    body = _report(old.plaintext)
    _post(client, body, _sign(github_key, body))
    old.version.refresh_from_db()
    assert (old.version.state, old.version.revoke_reason) == (State.REVOKED, "exposed")
    assert old.credential.versions.get(state=State.ACTIVE)  # the new one is untouched


def _forged(github_key, body):
    return _sign(_new_key(), body)


def _altered(github_key, body):
    # A report GitHub did sign, replayed with a different body.
    return _sign(github_key, body.replace(b"config.yml", b"other.yml"))


REFUSED = {
    "no signature": (lambda key, body: None, KEY_ID, 401, "signature-missing"),
    "no key identifier": (lambda key, body: _sign(key, body), None, 401, "signature-missing"),
    "signed by another key": (_forged, KEY_ID, 401, "signature-invalid"),
    "signature of another body": (_altered, KEY_ID, 401, "signature-invalid"),
    "unknown key identifier": (lambda key, body: _sign(key, body), "abc", 401, "signature-invalid"),
    "signature not base64": (lambda key, body: "%%%", KEY_ID, 401, "signature-invalid"),
    "signature garbage": (
        lambda key, body: base64.b64encode(b"x" * 70).decode(), KEY_ID, 401, "signature-invalid",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_reports_that_do_not_verify_revoke_nothing(client, github_key, issue, case):
    sign, key_id, status, slug = REFUSED[case]
    leaked = issue(Kind.API_KEY)
    body = _report(leaked.plaintext)
    before = _states()
    response = _post(client, body, sign(github_key, body), key_id=key_id)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:keyturn:problem:{slug}"
    assert _states() == before
    assert not AuditEvent.objects.filter(action="credential.exposed").exists()
    assert leaked.plaintext not in response.content.decode()


def test_a_report_is_refused_when_no_keys_are_configured(client, issue, settings):
    settings.PORTAL_GITHUB_SCANNING_KEYS = {}
    leaked = issue(Kind.API_KEY)
    body = _report(leaked.plaintext)
    response = _post(client, body, _sign(_new_key(), body))
    assert response.status_code == 401
    leaked.version.refresh_from_db()
    assert leaked.version.state == State.ACTIVE


MALFORMED = {
    "not JSON": b"{nope",
    "an object": b'{"token": "x", "type": "y"}',
    "an empty array": b"[]",
    "a match without a token": b'[{"type": "keyturn_api_key"}]',
    "a number as token": b'[{"token": 5, "type": "keyturn_api_key"}]',
    "a list as url": b'[{"token": "x", "type": "t", "url": []}]',
    "invalid UTF-8": b'[{"token": "\xff", "type": "t"}]',
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_reports_are_refused_even_when_signed(client, github_key, issue, case):
    issue(Kind.API_KEY)
    body = MALFORMED[case]
    before = _states()
    response = _post(client, body, _sign(github_key, body))
    assert response.status_code == 400
    assert response.json()["type"] == "urn:keyturn:problem:malformed-report"
    assert _states() == before


def test_an_oversized_report_is_refused_before_it_is_read(client, github_key, issue):
    leaked = issue(Kind.API_KEY)
    body = _report(leaked.plaintext, url="https://github.com/" + "a" * MAX_REPORT_BYTES)
    response = _post(client, body, _sign(github_key, body))
    assert response.status_code == 413
    assert response.json()["type"] == "urn:keyturn:problem:body-too-large"
    leaked.version.refresh_from_db()
    assert leaked.version.state == State.ACTIVE


def test_reports_are_rate_limited_per_source_address(client, github_key, issue, settings):
    settings.PORTAL_EXPOSURE_INTAKE_RATE = 2
    body = _report(crypto.generate_token("api_key"))
    signature = _sign(github_key, body)
    assert _post(client, body, signature).status_code == 200
    assert _post(client, body, signature).status_code == 200
    limited = _post(client, body, signature)
    assert limited.status_code == 429
    assert limited.json()["type"] == "urn:keyturn:problem:rate-limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    other_address = _post(client, body, signature, REMOTE_ADDR="10.1.2.3")
    assert other_address.status_code == 200


def test_the_intake_needs_no_management_key_and_ignores_one(client, github_key, issue):
    from tests.management_api import management_key

    key = management_key("exposures:report").plaintext
    body = _report(crypto.generate_token("api_key"))
    response = _post(client, body, None, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 401  # a key is no substitute for GitHub's signature


def test_reported_tokens_reach_neither_the_logs_nor_the_trail(client, github_key, issue, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    leaked = issue(Kind.API_KEY)
    body = _report(leaked.plaintext, crypto.generate_token("client_secret"))
    _post(client, body, _sign(github_key, body))
    _post(client, body, _sign(_new_key(), body))  # and a forged one
    trail = repr(list(AuditEvent.objects.values()))
    for token in (match["token"] for match in json.loads(body)):
        assert token not in caplog.text
        assert token not in trail


@pytest.mark.parametrize(
    "configured",
    ["not a key", "P-384", "Ed25519"],
)
def test_a_misconfigured_public_key_refuses_reports_without_failing(
    client, issue, settings, configured
):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    signer = _new_key()
    pem = {
        "not a key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "P-384": _pem(ec.generate_private_key(ec.SECP384R1())),
        "Ed25519": ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }[configured]
    settings.PORTAL_GITHUB_SCANNING_KEYS = {KEY_ID: pem}
    leaked = issue(Kind.API_KEY)
    body = _report(leaked.plaintext)
    response = _post(client, body, _sign(signer, body))
    assert response.status_code == 401
    leaked.version.refresh_from_db()
    assert leaked.version.state == State.ACTIVE


def test_a_signed_report_opens_the_exposure_rotation_that_replaces_the_key(
    client, github_key, issue
):
    from credentials.models import Rotation

    leaked = issue(Kind.API_KEY)
    body = _report(leaked.plaintext)
    assert _post(client, body, _sign(github_key, body)).status_code == 200
    rotation = Rotation.objects.get(credential=leaked.credential)
    assert (rotation.mode, rotation.state, rotation.old_version_id) == (
        "exposure",
        "in_progress",
        leaked.version.pk,
    )
