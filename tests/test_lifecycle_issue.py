"""Issuing: first versions of every kind, input checks, and endpoints owning one secret."""

import re

import pytest
from django.db import IntegrityError, transaction

from credentials import crypto, lifecycle
from credentials.models import AuditEvent, Credential, CredentialVersion, Endpoint, Kind, State
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kind", "shape"),
    [
        (Kind.API_KEY, r"ktak_[0-9A-Za-z]{46}"),
        (Kind.CLIENT_SECRET, r"ktcs_[0-9A-Za-z]{46}"),
        (Kind.ENDPOINT_SECRET, r"whsec_[A-Za-z0-9+/]{43}="),
    ],
)
def test_issue_returns_the_plaintext_once_and_stores_only_metadata(issue, kind, shape):
    issued = issue(kind)
    version = CredentialVersion.objects.get(pk=issued.version.pk)
    assert re.fullmatch(shape, issued.plaintext)
    assert version.state == State.ACTIVE and version.number == 1
    assert version.last_four == issued.plaintext.rstrip("=")[-4:]
    assert version.fingerprint == crypto.secret_fingerprint(issued.plaintext)
    stored = [str(getattr(version, f.attname)) for f in CredentialVersion._meta.fields]
    assert not any(issued.plaintext in value for value in stored)
    assert issued.plaintext not in repr(issued) and issued.plaintext not in str(version)


def test_issued_service_account_key_stores_the_public_key_and_its_fingerprint(issue):
    issued = issue(Kind.SERVICE_ACCOUNT_KEY)
    version = issued.version
    assert issued.plaintext is None
    assert version.key_algorithm == "Ed25519"
    assert version.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert (
        version.fingerprint.startswith("SHA256:") and version.last_four == version.fingerprint[-4:]
    )


def test_endpoint_secret_decrypts_only_on_its_own_row(issue, settings):
    first, second = (
        issue(Kind.ENDPOINT_SECRET),
        issue(Kind.ENDPOINT_SECRET, url="https://b.example/"),
    )
    keyring = settings.PORTAL_ENCRYPTION_KEYS
    own = crypto.decrypt(
        first.version.ciphertext, keyring=keyring, associated_data=first.version.associated_data
    )
    assert own.decode() == first.plaintext
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(
            first.version.ciphertext,
            keyring=keyring,
            associated_data=second.version.associated_data,
        )


def test_expiry_is_capped_by_the_organisation_maximum(issue, settings):
    settings.PORTAL_MAX_LIFETIME_DAYS = 30
    version = issue(Kind.API_KEY).version
    assert (version.expires_at - version.activated_at).days == 30
    with pytest.raises(lifecycle.InvalidRequest, match="between 1 and 30"):
        issue(Kind.API_KEY, lifetime_days=31)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": ""}, "Enter a name"),
        ({"name": "x" * 121}, "under 120"),
        ({"scopes": ["orders:read", "root"]}, "Unknown scope: root"),
        ({"lifetime_days": 0}, "between 1"),
        ({"overlap_seconds": -5}, "overlap"),
        ({"public_key_pem": "-----BEGIN PUBLIC KEY-----"}, "Only service-account"),
    ],
    ids=[
        "blank-name",
        "long-name",
        "unknown-scope",
        "zero-lifetime",
        "negative-overlap",
        "stray-key",
    ],
)
def test_issue_with_bad_input_creates_nothing(issue, options, message):
    with pytest.raises(lifecycle.InvalidRequest, match=message):
        issue(Kind.API_KEY, **options)
    assert not Credential.objects.exists()
    assert not AuditEvent.objects.filter(action="credential.issued").exists()


def test_unknown_kind_is_refused(app):
    with pytest.raises(lifecycle.InvalidRequest, match="Unknown credential kind"):
        lifecycle.credential_issue(actor=ACTOR, app=app, kind="password", name="x")


def test_endpoint_secret_cannot_be_issued_without_its_endpoint(app):
    with pytest.raises(lifecycle.InvalidRequest, match="with their endpoint"):
        lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.ENDPOINT_SECRET, name="x")


def test_an_endpoint_gets_exactly_one_signing_secret(issue, app):
    endpoint = issue(Kind.ENDPOINT_SECRET).credential.endpoint
    with pytest.raises(lifecycle.TransitionRefused, match="already has its signing secret"):
        lifecycle.credential_issue(
            actor=ACTOR, app=app, kind=Kind.ENDPOINT_SECRET, name="second", endpoint=endpoint
        )
    assert Credential.objects.filter(endpoint=endpoint).count() == 1


@pytest.mark.parametrize(
    "url", ["ftp://files.example/", "not a url", "javascript:alert(1)", "https://" + "a" * 2050]
)
def test_endpoint_with_a_bad_url_is_refused_and_nothing_is_created(app, url):
    with pytest.raises(lifecycle.InvalidRequest):
        lifecycle.endpoint_create(actor=ACTOR, app=app, url=url)
    assert not Endpoint.objects.exists() and not Credential.objects.exists()


def test_database_refuses_a_second_secret_for_the_same_endpoint(issue, app):
    endpoint = issue(Kind.ENDPOINT_SECRET).credential.endpoint
    with pytest.raises(IntegrityError), transaction.atomic():
        Credential.objects.create(app=app, kind=Kind.ENDPOINT_SECRET, name="dup", endpoint=endpoint)


@pytest.mark.parametrize(
    ("kind", "with_endpoint"), [(Kind.API_KEY, True), (Kind.ENDPOINT_SECRET, False)]
)
def test_database_ties_endpoints_to_endpoint_secrets_only(issue, app, kind, with_endpoint):
    endpoint = Endpoint.objects.create(app=app, url="https://x.example/") if with_endpoint else None
    with pytest.raises(IntegrityError), transaction.atomic():
        Credential.objects.create(app=app, kind=kind, name="x", endpoint=endpoint)


@pytest.mark.parametrize(
    "change",
    [
        {"state": State.ACTIVE},  # a second active version
        {"state": State.RETIRING},  # a second retiring version
        {"number": 1},  # a duplicate version number
        {"digest": "same"},  # a duplicate digest
    ],
    ids=["two-active", "two-retiring", "duplicate-number", "duplicate-digest"],
)
def test_database_constraints_hold_even_when_code_is_bypassed(issue, change):
    version = issue(Kind.API_KEY).version
    version.credential.versions.update(
        state=State.RETIRING if change.get("state") == State.RETIRING else State.ACTIVE,
        retire_at=version.activated_at,
        digest="same" if "digest" in change else version.digest,
    )
    other = issue(Kind.API_KEY).version
    clone = CredentialVersion(
        credential=version.credential if "digest" not in change else other.credential,
        number=1 if "number" in change else 7,
        state=change.get("state", State.EXPIRED),
        created_by="tests",
        retire_at=version.activated_at,
        last_four="abcd",
        fingerprint="SHA256:x",
        digest=change.get("digest"),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()
