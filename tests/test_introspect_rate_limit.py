"""Each calling credential has a budget per minute; past it, 429 with Retry-After."""

import pytest

from credentials.models import Kind
from tests.introspection import introspect

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(issue):
    return issue(Kind.API_KEY, name="Presented").plaintext


def test_a_caller_over_its_budget_gets_429_with_retry_after(client, settings, caller_key, token):
    settings.PORTAL_INTROSPECT_RATE = 3
    for _ in range(3):
        assert introspect(client, token, caller_key).status_code == 200
    response = introspect(client, token, caller_key)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["Cache-Control"] == "no-store"
    assert b"active" not in response.content


def test_one_callers_budget_does_not_spend_anothers(client, settings, issue, caller_key, token):
    settings.PORTAL_INTROSPECT_RATE = 2
    other = issue(Kind.API_KEY, name="Second service", scopes=["introspect"]).plaintext
    for _ in range(3):
        introspect(client, token, caller_key)
    assert introspect(client, token, caller_key).status_code == 429
    assert introspect(client, token, other).status_code == 200


def test_an_unauthenticated_request_is_refused_before_it_counts(
    client, settings, caller_key, token
):
    settings.PORTAL_INTROSPECT_RATE = 1
    for _ in range(5):
        assert introspect(client, token, "ktak_" + "A" * 46).status_code == 401
    assert introspect(client, token, caller_key).status_code == 200


def test_a_rate_of_zero_turns_the_limit_off(client, settings, caller_key, token):
    settings.PORTAL_INTROSPECT_RATE = 0
    assert all(introspect(client, token, caller_key).status_code == 200 for _ in range(20))
