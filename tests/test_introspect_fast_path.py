"""A machine's introspection request is answered by ``introspection_fast_path``, high in the
middleware: what is below it (sessions' sign-in, two-factor, messages, lockouts) never runs for
it, and the answer is the one the whole stack would have given, headers and all.

Any request that is not a machine's (one of the portal's own cookies, another method, another
path), and every request while ``ATOMIC_REQUESTS`` is on, still goes down the whole stack. A
cookie the portal does not read (a load balancer's) leaves a machine's request a machine's.
"""

import sys

import pytest
from django.core.signals import got_request_exception
from django.db import connection
from django.test import Client
from django.views.debug import ExceptionReporter

from credentials.api import introspection
from credentials.models import Kind
from tests.introspection import FORM, URL, introspect, noted_below

pytestmark = pytest.mark.django_db


@pytest.fixture
def seen(settings):
    """The requests that reach a middleware at the bottom of the stack."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.introspection.note_below"]
    noted_below.clear()
    yield noted_below
    noted_below.clear()


@pytest.fixture
def token(issue):
    return issue(Kind.API_KEY).plaintext


def test_a_machines_request_skips_the_middleware_below(client, seen, token, caller_key):
    assert introspect(client, token, caller_key).json()["active"] is True
    assert introspect(client, "ktak_garbage", caller_key).json() == {"active": False}
    assert introspect(client, token).status_code == 401  # no key: still the view's answer
    bad_form = client.post(URL, "token=a&token=b", content_type=FORM)
    assert bad_form.status_code == 401
    assert seen == []


def test_everything_else_takes_the_whole_stack(client, seen, token, caller_key):
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {caller_key}").status_code == 405
    client.cookies["sessionid"] = "not-a-session"
    assert introspect(client, token, caller_key).json()["active"] is True
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert seen[:2] == [("GET", URL), ("POST", URL)]
    assert len(seen) == 3


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("sessionid=not-a-session", id="session"),
        pytest.param("csrftoken=abc", id="csrf"),
        pytest.param("messages=abc", id="messages"),
        pytest.param("AWSALB=stick; sessionid =spaced", id="session after another"),
        pytest.param("lb=sessionid", id="a name inside a value"),  # a false match: still right
    ],
)
def test_a_portal_cookie_takes_the_whole_stack(client, seen, token, caller_key, cookie):
    assert introspect(client, token, caller_key, HTTP_COOKIE=cookie).json()["active"] is True
    assert seen == [("POST", URL)]


def test_the_cookie_names_follow_the_settings(client, seen, token, caller_key, settings):
    settings.SESSION_COOKIE_NAME = "keyturn_session"
    settings.CSRF_COOKIE_NAME = "keyturn_csrf"
    introspect(client, token, caller_key, HTTP_COOKIE="keyturn_session=x")
    introspect(client, token, caller_key, HTTP_COOKIE="keyturn_csrf=x")
    assert seen == [("POST", URL), ("POST", URL)]
    introspect(client, token, caller_key, HTTP_COOKIE="sessionid=x; csrftoken=y")  # not ours now
    assert len(seen) == 2


@pytest.mark.parametrize(
    "ask",
    [
        pytest.param(lambda token, caller: (token, caller), id="active"),
        pytest.param(lambda token, caller: ("ktak_nothing_like_a_key", caller), id="inactive"),
        pytest.param(lambda token, caller: (token, None), id="no key"),
        pytest.param(lambda token, caller: (token, "ktak_unknown"), id="unknown key"),
        # Cookies the portal does not read keep a machine's request on the fast path.
        pytest.param(lambda token, caller: (token, caller, "AWSALB=node-2"), id="lb cookie"),
        pytest.param(lambda token, caller: (token, caller, "a=1; _ga=GA1.2; b=x"), id="cookies"),
        pytest.param(lambda token, caller: (token, caller, ""), id="empty cookie header"),
    ],
)
def test_the_answer_is_the_one_the_whole_stack_gives(seen, token, caller_key, ask, monkeypatch):
    presented, caller, *cookie = ask(token, caller_key)
    extra = {"HTTP_COOKIE": cookie[0]} if cookie else {}
    fast = introspect(Client(), presented, caller, **extra)
    assert seen == []
    # The same request down the whole stack: with a transaction per request it goes there.
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    slow = introspect(Client(), presented, caller, **extra)
    assert seen == [("POST", URL)]
    assert "Set-Cookie" not in fast.headers
    if cookie:  # the caller and token are both good in these cases
        assert fast.json()["active"] is True
    assert fast.status_code == slow.status_code
    assert fast.content == slow.content
    assert dict(fast.headers) == dict(slow.headers)
    assert fast["X-Frame-Options"] == "DENY"
    assert "no-store" in fast["Cache-Control"]
    assert "Content-Security-Policy" in fast


def test_with_a_transaction_per_request_the_view_runs_in_it(
    client, seen, token, caller_key, monkeypatch
):
    depth = []  # how many atomic blocks are open when the view looks the keys up
    real = introspection.verify_bearers

    def watching(*args, **kwargs):
        depth.append(len(connection.atomic_blocks))
        return real(*args, **kwargs)

    monkeypatch.setattr(introspection, "verify_bearers", watching)
    outside = len(connection.atomic_blocks)  # the test's own (pytest-django's)
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    assert introspect(client, token, caller_key).json()["active"] is True
    assert seen == [("POST", URL)]
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", False)
    assert introspect(client, token, caller_key).json()["active"] is True
    assert seen == [("POST", URL)]  # the fast path again
    assert depth == [outside + 1, outside]  # the request's own transaction, then none


def test_a_host_the_portal_does_not_serve_is_refused_first(client, seen, token, caller_key):
    assert introspect(client, token, caller_key, HTTP_HOST="evil.example").status_code == 400
    assert seen == []


def test_a_failing_view_is_a_500_with_a_report_that_holds_no_secret(
    client, seen, token, caller_key, monkeypatch
):
    reports = []

    def report(sender, request, **kwargs):
        reports.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())

    def failing(*args, **kwargs):
        raise RuntimeError("the lookup broke")

    monkeypatch.setattr(introspection, "verify_bearers", failing)
    got_request_exception.connect(report)
    try:
        client.raise_request_exception = False
        answer = introspect(client, token, caller_key)
    finally:
        got_request_exception.disconnect(report)
    assert answer.status_code == 500
    assert len(reports) == 1
    assert "the lookup broke" in reports[0]
    assert seen == []  # it failed on the fast path
    for secret in (token, caller_key):
        assert secret not in reports[0]
        assert secret not in answer.content.decode()
