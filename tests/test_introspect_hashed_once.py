"""Introspection hashes its two secrets once per request, by the fast path or down the whole
middleware stack alike."""

import pytest

from credentials import usage, verification
from credentials.models import Kind
from tests.introspection import introspect

pytestmark = pytest.mark.django_db


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


def test_down_the_whole_stack_they_are_hashed_once_too(client, issue, caller_key, hashed):
    # A cookie sends the request down the whole middleware stack to the view.
    issued = issue(Kind.API_KEY)
    client.cookies["unrelated"] = "1"
    answer = introspect(client, issued.plaintext, caller_key)
    assert answer.json()["jti"] == str(issued.version.public_id)
    assert hashed == [2]


def test_the_queued_use_keys_are_the_counters_keys():
    # _changes spells the keys out for speed: they must stay those of _count_key and _at_key.
    usage.forget_local_state()  # so that both times of use are sent too
    changes = usage._changes([7, 8], None)
    assert set(changes.deltas) == {usage._count_key(7), usage._count_key(8)}
    assert set(changes.values) == {usage._at_key(7), usage._at_key(8)}
