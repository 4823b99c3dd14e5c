"""With the shared cache down, introspection fails open: answered, not rate-limited, logged.

A service checking keys matters more than the limit, and every key is still verified against
the database, so a revoke still counts. The uses those requests made are lost, and the log
says so without naming a secret.
"""

import logging

import pytest

from credentials import lifecycle, usage
from credentials.models import Kind
from tests.introspection import introspect

pytestmark = pytest.mark.django_db

NOTHING_ANSWERS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",  # the discard port
        "OPTIONS": {"socket_connect_timeout": 0.2},
    }
}


@pytest.fixture
def service(issue):
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    token = issue(Kind.API_KEY, name="Presented")
    return caller, token


def test_the_rate_limit_lets_requests_through_while_redis_is_down(client, settings, service):
    settings.CACHES = NOTHING_ANSWERS
    settings.PORTAL_INTROSPECT_RATE = 1
    caller, token = service
    for _ in range(3):
        response = introspect(client, token.plaintext, caller.plaintext)
        assert response.status_code == 200
        assert response.json()["active"] is True


def test_a_revoked_key_is_refused_while_redis_is_down(client, settings, service, system_actor):
    settings.CACHES = NOTHING_ANSWERS
    caller, token = service
    lifecycle.version_revoke(actor=system_actor, version=token.version, reason="routine")
    assert introspect(client, token.plaintext, caller.plaintext).json() == {"active": False}


def test_the_failure_is_logged_once_per_request_without_a_secret(client, settings, service, caplog):
    settings.CACHES = NOTHING_ANSWERS
    caller, token = service
    with caplog.at_level(logging.ERROR):
        introspect(client, token.plaintext, caller.plaintext)
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(failures) == 1
    assert "let through" in failures[0].getMessage()
    logged = caplog.text
    for issued in (caller, token):
        assert issued.plaintext not in logged
        assert issued.plaintext[-12:] not in logged
        assert issued.version.digest not in logged


def test_a_flush_while_redis_is_down_writes_nothing_and_does_not_raise(settings, service):
    settings.CACHES = NOTHING_ANSWERS
    _, token = service
    assert usage.flush_version(token.version.pk) is False
    token.version.refresh_from_db()
    assert token.version.use_count == 0
