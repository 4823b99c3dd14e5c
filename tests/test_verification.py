"""The verification core: presented bearer secrets resolve to their version, or to nothing."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credentials import crypto, lifecycle, verification
from credentials.models import CredentialVersion, Kind, RevokeReason, State
from credentials.verification import verify_bearer
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", [Kind.API_KEY, Kind.CLIENT_SECRET])
def test_a_valid_secret_resolves_to_its_version_with_one_query(issue, kind):
    issued = issue(kind, scopes=["introspect"])
    with CaptureQueriesContext(connection) as queries:
        found = verify_bearer(issued.plaintext)
    assert len(queries) == 1
    assert found.version_id == issued.version.pk
    assert found.public_id == issued.version.public_id
    assert (found.state, found.kind, found.scopes) == (State.ACTIVE, kind, ("introspect",))
    assert found.client_id == issued.version.credential.app.client_id
    assert found.expires_at == issued.version.expires_at


@pytest.mark.parametrize("state", [State.ACTIVE, State.RETIRING])
def test_the_drivers_own_cursor_answers_exactly_as_djangos_does(issue, state):
    """Verification runs on the bare driver cursor unless queries are being logged (as by
    CaptureQueriesContext); the two must agree on every field, times aware and exact."""
    issued = issue(Kind.API_KEY, scopes=["introspect", "credentials:rotate"])
    if state == State.RETIRING:  # a version in its overlap, with both ends in the row
        CredentialVersion.objects.filter(pk=issued.version.pk).update(
            state=State.RETIRING, retire_at=timezone.now() + timedelta(hours=1, microseconds=7)
        )
    version = CredentialVersion.objects.get(pk=issued.version.pk)
    assert not connection.queries_logged
    fast = verify_bearer(issued.plaintext)
    with CaptureQueriesContext(connection) as queries:
        logged = verify_bearer(issued.plaintext)
    assert len(queries) == 1
    assert fast == logged
    assert (fast.state, fast.scopes) == (state, ("introspect", "credentials:rotate"))
    times = (fast.activated_at, fast.expires_at, fast.retire_at)
    assert times == (version.activated_at, version.expires_at, version.retire_at)
    assert all(moment.tzinfo is not None for moment in times if moment is not None)


def test_parsed_scopes_are_remembered_within_a_bound():
    for n in range(3000):
        assert verification._scopes(f'["introspect", "s{n}"]') == ("introspect", f"s{n}")
    assert 0 < len(verification._scopes_parsed) <= 1024
    assert verification._scopes(["introspect"]) == ("introspect",)


@pytest.mark.parametrize(
    "presented",
    [
        None,
        42,
        b"ktak_bytes",
        "",
        "ktak_",
        "Bearer ktak_x",
        "ktak_" + "A" * 46,  # right shape, wrong checksum
        "x" * 10_000_000,
        "ktak_" + "é" * 46,
        "\x00" * 51,
    ],
    ids=["none", "int", "bytes", "empty", "prefix", "bearer", "checksum", "10MB", "unicode", "nul"],
)
def test_malformed_input_is_rejected_before_any_query(presented):
    with CaptureQueriesContext(connection) as queries:
        assert verify_bearer(presented) is None
    assert len(queries) == 0


def test_a_well_formed_unknown_secret_is_rejected(db):
    assert verify_bearer(crypto.generate_token("api_key")) is None


@pytest.mark.parametrize("state", ["revoked", "exposed", "expired"])
def test_a_secret_of_a_dead_version_is_rejected(issue, state):
    issued = issue(Kind.API_KEY)
    token = issued.plaintext
    version = issued.version
    if state == "revoked":
        lifecycle.version_revoke(actor=ACTOR, version=version, reason=RevokeReason.ROUTINE)
    elif state == "exposed":
        lifecycle.version_report_exposure(actor=ACTOR, version=version)
    else:
        lifecycle.versions_expire(now=version.expires_at)
    assert verify_bearer(token) is None


def test_a_version_past_its_expiry_is_rejected_even_before_the_sweep(issue):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext, now=issued.version.expires_at) is None
    just_before = issued.version.expires_at - timedelta(microseconds=1)
    assert verify_bearer(issued.plaintext, now=just_before) is not None


def test_a_reactivated_version_verifies_again(issue):
    issued = issue(Kind.API_KEY)
    lifecycle.version_revoke(actor=ACTOR, version=issued.version, reason=RevokeReason.ROUTINE)
    assert verify_bearer(issued.plaintext) is None
    lifecycle.version_reactivate(actor=ACTOR, version=issued.version)
    assert verify_bearer(issued.plaintext).state == State.ACTIVE


def test_a_client_secret_with_an_api_key_prefix_is_rejected(issue):
    issued = issue(Kind.CLIENT_SECRET)
    swapped = "ktak_" + issued.plaintext[5:-6]
    swapped += crypto.token_checksum(swapped)
    assert verify_bearer(swapped) is None


def test_secrets_hashed_under_an_older_key_still_verify_after_a_new_key_is_added(issue, settings):
    issued = issue(Kind.API_KEY)
    old_ring = settings.PORTAL_TOKEN_HASH_KEYS
    settings.PORTAL_TOKEN_HASH_KEYS = crypto.parse_keyring(
        "PORTAL_TOKEN_HASH_KEYS", crypto.generate_key_line("newer") + "," + _ring_line(old_ring)
    )
    assert verify_bearer(issued.plaintext).version_id == issued.version.pk
    fresh = issue(Kind.API_KEY)
    assert fresh.version.digest_key_id == "newer"
    assert verify_bearer(fresh.plaintext) is not None
    settings.PORTAL_TOKEN_HASH_KEYS = crypto.parse_keyring(
        "PORTAL_TOKEN_HASH_KEYS", crypto.generate_key_line("unrelated")
    )
    assert verify_bearer(issued.plaintext) is None


def _ring_line(ring):
    import base64

    return ",".join(
        f"{key_id}:{base64.urlsafe_b64encode(key).decode()}" for key_id, key in ring.keys
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.text(max_size=120), st.binary(max_size=120), st.none(), st.integers()))
def test_arbitrary_input_never_raises_and_never_verifies(issue, presented):
    assert verify_bearer(presented) is None


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0, max_value=50), replacement=st.sampled_from(crypto.BASE62))
def test_changing_any_character_of_a_valid_secret_makes_it_fail(issue, position, replacement):
    token = issue(Kind.API_KEY).plaintext
    position = min(position, len(token) - 1)
    mutated = token[:position] + replacement + token[position + 1 :]
    found = verify_bearer(mutated)
    if mutated == token:
        assert found is not None
    else:
        assert found is None


def test_the_driver_fast_path_and_the_logged_path_give_the_same_answer(issue):
    issued = issue(Kind.API_KEY, scopes=["introspect"])
    unlogged = verify_bearer(issued.plaintext)
    connection.force_debug_cursor = True  # what DEBUG or a query-counting test switches on
    try:
        logged = verify_bearer(issued.plaintext)
    finally:
        connection.force_debug_cursor = False
    assert unlogged == logged
    assert unlogged.version_id == issued.version.pk


def test_verifying_several_secrets_at_once_answers_as_one_at_a_time_in_one_query(issue):
    from credentials.verification import verify_bearers

    live = issue(Kind.API_KEY, name="live")
    secret = issue(Kind.CLIENT_SECRET, name="secret")
    revoked = issue(Kind.API_KEY, name="revoked")
    lifecycle.version_revoke(actor=ACTOR, version=revoked.version, reason=RevokeReason.ROUTINE)
    presented = [
        live.plaintext,
        None,
        "ktak_" + "A" * 46,
        revoked.plaintext,
        secret.plaintext,
        live.plaintext,
        crypto.generate_token("api_key"),
    ]
    with CaptureQueriesContext(connection) as queries:
        together = verify_bearers(presented)
    assert len(queries) == 1
    assert together == [verify_bearer(one) for one in presented]
    assert [answer and answer.version_id for answer in together] == [
        live.version.pk, None, None, None, secret.version.pk, live.version.pk, None
    ]  # fmt: skip


def test_verifying_only_malformed_secrets_at_once_makes_no_query(db):
    from credentials.verification import verify_bearers

    with CaptureQueriesContext(connection) as queries:
        assert verify_bearers(["nope", None, ""]) == [None, None, None]
    assert len(queries) == 0
