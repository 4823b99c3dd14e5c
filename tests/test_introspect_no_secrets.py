"""Introspection never lets a secret or digest out: not in logs, the cache, answers or reports."""

import logging
import pickle
import sys

import pytest
from django.core.cache import caches
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from credentials import crypto
from credentials.lifecycle import version_revoke
from credentials.models import Kind, RevokeReason
from tests.introspection import FORM, URL, introspect
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


def fragments(issued) -> list[str]:
    secret = issued.plaintext
    return [secret, secret.split("_", 1)[1][4:28], issued.version.digest]


def cache_contents() -> str:
    """Every key and value in the in-process cache, unpickled, as text."""
    backend = caches["default"]
    return "\n".join(
        f"{key!r} {pickle.loads(value)!r}"  # noqa: S301 (our own cache, in this process)
        for key, value in backend._cache.items()
    )


def test_no_secret_or_digest_reaches_logs_cache_or_answers(client, settings, issue, caplog):
    caplog.set_level(logging.DEBUG)
    settings.PORTAL_INTROSPECT_RATE = 6
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    unscoped = issue(Kind.API_KEY, name="Unscoped")
    token = issue(Kind.CLIENT_SECRET, name="Presented")
    revoked = issue(Kind.API_KEY, name="Revoked")
    version_revoke(actor=ACTOR, version=revoked.version, reason=RevokeReason.ROUTINE)
    caplog.clear()

    bodies = [
        introspect(client, token.plaintext, caller.plaintext),  # active
        introspect(client, revoked.plaintext, caller.plaintext),  # inactive
        introspect(client, token.plaintext, unscoped.plaintext),  # refused: no scope
        introspect(client, token.plaintext, revoked.plaintext),  # refused: revoked caller
        client.post(
            URL,
            f"token={token.plaintext}&token=x",
            content_type=FORM,
            HTTP_AUTHORIZATION=f"Bearer {caller.plaintext}",
        ),  # 400: the token twice
        client.get(URL, {"token": token.plaintext}),  # 405
    ]
    bodies += [introspect(client, token.plaintext, caller.plaintext) for _ in range(6)]  # 429
    assert {response.status_code for response in bodies} == {200, 400, 401, 405, 429}

    answers = "\n".join(
        response.content.decode() + repr(sorted(response.headers.items())) for response in bodies
    )
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    cached = cache_contents()
    assert cached  # the rate limit and the use counters are there
    for issued in (caller, unscoped, token, revoked):
        for fragment in fragments(issued):
            assert fragment not in answers
            assert fragment not in logged
            assert fragment not in cached


def test_an_error_report_hides_the_bearer_key_and_the_posted_token(settings):
    caller, token = crypto.generate_token("api_key"), crypto.generate_token("client_secret")
    request = RequestFactory().post(
        URL, f"token={token}", content_type=FORM, HTTP_AUTHORIZATION=f"Bearer {caller}"
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        report = reporter.get_traceback_html() + reporter.get_traceback_text()
    assert "boom" in report
    assert caller not in report
    assert token not in report
