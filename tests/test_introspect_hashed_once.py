"""Introspection hashes its two secrets once per request, and keeps nothing of them after it.

``introspection_fast_path`` reads the caller's key and the form and hashes both secrets; the view
takes those digests instead of hashing again. Both drop what the request held of the secrets
when they are done, whichever of them ran.
"""

import pytest

from credentials import usage, verification
from credentials.models import Kind
from tests.introspection import introspect

pytestmark = pytest.mark.django_db

KEPT = ("_keyturn_key", "_keyturn_form", "_keyturn_digests")


@pytest.fixture
def hashed(monkeypatch):
    """Every list of secrets hashed by bearer_digests during the test (as counts of secrets)."""
    calls = []
    original = verification.bearer_digests

    def counting(presented):
        calls.append(len(presented))
        return original(presented)

    monkeypatch.setattr(verification, "bearer_digests", counting)
    return calls


def test_the_two_secrets_are_hashed_once(client, issue, caller_key, hashed):
    issued = issue(Kind.API_KEY)
    answer = introspect(client, issued.plaintext, caller_key)
    assert answer.json()["jti"] == str(issued.version.public_id)
    assert hashed == [2]


def test_the_request_keeps_nothing_of_the_secrets_afterwards(client, issue, caller_key):
    issued = issue(Kind.API_KEY)
    answer = introspect(client, issued.plaintext, caller_key)
    assert answer.json()["active"] is True
    assert not any(name in answer.wsgi_request.__dict__ for name in KEPT)


def test_without_the_middleware_the_view_hashes_and_forgets(client, issue, caller_key, hashed):
    # A cookie makes introspection_fast_path step aside: the view reads and hashes on its own.
    issued = issue(Kind.API_KEY)
    client.cookies["unrelated"] = "1"
    answer = introspect(client, issued.plaintext, caller_key)
    assert answer.json()["jti"] == str(issued.version.public_id)
    assert hashed == [2]
    assert not any(name in answer.wsgi_request.__dict__ for name in KEPT)


def test_a_refused_caller_leaves_nothing_on_the_request(client, issue):
    issued = issue(Kind.API_KEY)
    answer = introspect(client, issued.plaintext, "ktak_not-a-key")
    assert answer.status_code == 401
    assert not any(name in answer.wsgi_request.__dict__ for name in KEPT)


def test_the_queued_use_keys_are_the_counters_keys():
    # _changes spells the keys out for speed: they must stay those of _count_key and _at_key.
    usage.forget_local_state()  # so that both times of use are sent too
    changes = usage._changes([7, 8], None)
    assert set(changes.deltas) == {usage._count_key(7), usage._count_key(8)}
    assert set(changes.values) == {usage._at_key(7), usage._at_key(8)}
