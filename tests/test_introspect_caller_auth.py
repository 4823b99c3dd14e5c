"""Only a service holding a live key scoped `introspect` may ask; nobody else learns anything."""

import pytest

from credentials import lifecycle
from credentials.models import Kind, RevokeReason
from tests.introspection import FORM, URL, introspect
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(issue):
    return issue(Kind.API_KEY, name="Presented", scopes=["orders:read"]).plaintext


def assert_refused(response, challenge):
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == challenge
    assert response["Cache-Control"] == "no-store"
    assert b"active" not in response.content


INVALID = (
    'Bearer realm="keyturn", error="invalid_token", '
    'error_description="The key is unknown, malformed, revoked or expired."'
)


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="keyturn"'),
        ("", 'Bearer realm="keyturn"'),
        ("Basic dXNlcjpwYXNz", 'Bearer realm="keyturn"'),
        ("Bearer", INVALID),
        ("Bearer ", INVALID),
        ("Bearer not-a-key", INVALID),
        ("Bearer ktak_" + "A" * 46, INVALID),
        ("Bearer \x00\x01", INVALID),
    ],
    ids=["absent", "empty", "basic", "scheme-only", "scheme-space", "garbage", "checksum", "nul"],
)
def test_a_caller_without_a_valid_bearer_key_is_refused(client, token, authorization, challenge):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.post(URL, f"token={token}", content_type=FORM, **headers)
    assert_refused(response, challenge)


def test_a_caller_whose_key_lacks_the_introspect_scope_is_refused(client, issue, token):
    other = issue(Kind.API_KEY, name="Orders only", scopes=["orders:read"]).plaintext
    response = introspect(client, token, other)
    assert_refused(
        response,
        'Bearer realm="keyturn", error="insufficient_scope", scope="introspect", '
        'error_description="This key does not carry the introspect scope."',
    )
    assert response.json() == {"error": "insufficient_scope"}


def test_a_revoked_caller_key_is_refused_on_the_next_request(client, issue, token):
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    assert introspect(client, token, caller.plaintext).status_code == 200
    lifecycle.version_revoke(actor=ACTOR, version=caller.version, reason=RevokeReason.ROUTINE)
    assert_refused(introspect(client, token, caller.plaintext), INVALID)


def test_a_client_secret_with_the_scope_may_call_too(client, issue, token):
    caller = issue(Kind.CLIENT_SECRET, name="Gateway", scopes=["introspect"]).plaintext
    assert introspect(client, token, caller).json()["active"] is True


def test_a_signed_in_portal_session_is_not_accepted_instead_of_a_key(client, admin_user, token):
    client.force_login(admin_user)
    assert_refused(introspect(client, token), 'Bearer realm="keyturn"')


def test_no_csrf_token_is_needed_because_no_cookie_is_trusted(caller_key, token):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert introspect(strict, token, caller_key).json()["active"] is True
