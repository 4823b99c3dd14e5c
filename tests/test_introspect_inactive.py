"""Every token that does not verify gets the same answer, byte for byte: {"active": false}."""

from datetime import timedelta

import pytest
from django.utils import timezone

from credentials import crypto
from credentials.models import Kind
from tests.introspection import introspect
from tests.states import Clock, make_version

pytestmark = pytest.mark.django_db

INACTIVE = b'{"active": false}'


def assert_inactive(response):
    assert response.status_code == 200
    assert response.content == INACTIVE
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "token",
    [
        "ktak_" + "A" * 46,  # the right shape with a wrong checksum
        "ktak_short",
        "not a token at all",
        "Bearer ktak_x",
        "é" * 30,
        "x" * 2000,
        " ",
    ],
    ids=["bad-checksum", "short", "words", "with-scheme", "unicode", "long", "blank"],
)
def test_a_malformed_token_is_inactive(client, caller_key, token):
    assert_inactive(introspect(client, token, caller_key))


@pytest.mark.parametrize("kind", ["api_key", "client_secret"])
def test_a_well_formed_unknown_token_is_inactive(client, caller_key, kind):
    assert_inactive(introspect(client, crypto.generate_token(kind), caller_key))


@pytest.mark.parametrize("state", ["revoked", "revoked_from_retiring", "exposed", "expired"])
@pytest.mark.parametrize("kind", [Kind.API_KEY, Kind.CLIENT_SECRET])
def test_a_token_of_a_dead_version_is_inactive(client, caller_key, issue, state, kind):
    captured = {}

    def keep(kind=kind, **options):
        # A short life, so expiring it does not expire the caller's key too.
        captured["issued"] = issue(kind, lifetime_days=1, **options)
        return captured["issued"]

    make_version(keep, state, kind=kind)
    assert_inactive(introspect(client, captured["issued"].plaintext, caller_key))


def test_a_token_past_its_expiry_is_inactive_before_any_sweep_records_it(
    client, caller_key, issue, monkeypatch
):
    issued = issue(Kind.API_KEY, lifetime_days=1)
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    clock.now = issued.version.expires_at - timedelta(seconds=1)
    assert introspect(client, issued.plaintext, caller_key).json()["active"] is True
    clock.now = issued.version.expires_at
    assert_inactive(introspect(client, issued.plaintext, caller_key))


def test_a_webhook_signing_secret_is_not_a_token_and_is_inactive(client, caller_key, issue):
    issued = issue(Kind.ENDPOINT_SECRET)
    assert issued.plaintext.startswith("whsec_")
    assert_inactive(introspect(client, issued.plaintext, caller_key))


def test_a_public_key_is_not_a_token_and_is_inactive(client, caller_key, issue):
    issued = issue(Kind.SERVICE_ACCOUNT_KEY)
    assert_inactive(introspect(client, issued.version.public_key_pem, caller_key))


def test_a_token_with_another_kinds_prefix_is_inactive(client, caller_key, issue):
    """An API key relabelled as a client secret (checksum recomputed) matches nothing."""
    plaintext = issue(Kind.API_KEY).plaintext
    body = "ktcs_" + plaintext[len("ktak_") : -crypto.CHECKSUM_LENGTH]
    relabelled = body + crypto.token_checksum(body)
    assert crypto.token_is_well_formed(relabelled)
    assert_inactive(introspect(client, relabelled, caller_key))
