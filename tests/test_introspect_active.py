"""A token that verifies is described with RFC 7662's fields and Keyturn's two, nothing more."""

import pytest

from credentials import lifecycle
from credentials.models import Kind
from tests.introspection import introspect
from tests.states import ACTOR

pytestmark = pytest.mark.django_db

FIELDS = {
    "active",
    "scope",
    "client_id",
    "token_type",
    "exp",
    "iat",
    "sub",
    "jti",
    "keyturn_version",
    "keyturn_state",
}


@pytest.mark.parametrize("kind", [Kind.API_KEY, Kind.CLIENT_SECRET])
def test_an_active_token_is_described_with_exactly_the_documented_fields(
    client, caller_key, issue, kind
):
    issued = issue(kind, scopes=["orders:read", "orders:write"])
    version = issued.version
    response = introspect(client, issued.plaintext, caller_key)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "active": True,
        "scope": "orders:read orders:write",
        "client_id": version.credential.app.client_id,
        "token_type": kind,
        "exp": int(version.expires_at.timestamp()),
        "iat": int(version.activated_at.timestamp()),
        "sub": f"credential:{version.credential_id}",
        "jti": str(version.public_id),
        "keyturn_version": 1,
        "keyturn_state": "active",
    }
    assert set(response.json()) == FIELDS


def test_a_rotated_token_keeps_its_subject_and_gets_a_new_jti(client, caller_key, issue):
    old = issue(Kind.API_KEY)
    new = lifecycle.credential_rotate(
        actor=ACTOR, credential=old.version.credential, overlap_seconds=600
    )
    before = introspect(client, old.plaintext, caller_key).json()
    after = introspect(client, new.plaintext, caller_key).json()
    assert before["sub"] == after["sub"]
    assert before["jti"] != after["jti"]
    assert (before["keyturn_version"], after["keyturn_version"]) == (1, 2)
    assert (before["keyturn_state"], after["keyturn_state"]) == ("retiring", "active")


def test_the_caller_may_introspect_its_own_key(client, caller_key):
    answer = introspect(client, caller_key, caller_key).json()
    assert answer["active"] is True
    assert answer["scope"] == "introspect"


def test_the_token_type_hint_is_accepted_and_does_not_change_the_answer(client, caller_key, issue):
    issued = issue(Kind.CLIENT_SECRET)
    plain = introspect(client, issued.plaintext, caller_key).json()
    for hint in ("access_token", "refresh_token", "api_key", "nonsense"):
        response = client.post(
            "/api/v1/introspect",
            f"token={issued.plaintext}&token_type_hint={hint}",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Bearer {caller_key}",
        )
        assert response.json() == plain


def test_an_introspection_looks_up_the_caller_and_the_token_in_one_query(client, caller_key, issue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = issue(Kind.API_KEY).plaintext
    with CaptureQueriesContext(connection) as queries:
        assert introspect(client, token, caller_key).json()["active"] is True
    assert len(queries) == 1
