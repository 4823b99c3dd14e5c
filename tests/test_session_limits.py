"""Signed-in sessions end after 30 idle minutes and 12 hours in all, with a message that says
why on the sign-in page; time is moved by a test clock, never slept through."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse
from django.utils import timezone

from credentials.models import AuditEvent
from portal import session_limits
from tests.states import Clock

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
LOGIN = reverse("admin:login")
IDLE_MESSAGE = "You were signed out after 30 minutes without activity."
LIFETIME_MESSAGE = "You were signed out because your session reached its limit of 12 hours."


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.fixture
def signed_in(client, security_user, clock):
    client.force_login(security_user)
    assert client.get(INDEX).status_code == 200  # the first request starts both clocks
    return client


def _signed_out_to_login(response):
    return response.status_code == 302 and response["Location"].startswith(LOGIN)


def _poll(client):
    return client.get(INDEX, HTTP_KEYTURN_BACKGROUND="poll")


def test_the_limits_default_to_30_idle_minutes_and_12_hours(settings):
    assert settings.PORTAL_SESSION_IDLE_MINUTES == 30
    assert settings.PORTAL_SESSION_MAX_HOURS == 12
    assert settings.SESSION_COOKIE_AGE == 12 * 3600  # the cookie never outlives the session


def test_a_session_idle_for_30_minutes_is_signed_out_with_a_message(signed_in, clock):
    clock.advance(minutes=30)
    response = signed_in.get(INDEX)
    assert _signed_out_to_login(response)
    assert SESSION_KEY not in signed_in.session
    login_page = signed_in.get(response["Location"])
    assert login_page.status_code == 200
    assert IDLE_MESSAGE in login_page.content.decode()
    # The message is shown once; the next visit to the sign-in page is a plain one.
    assert IDLE_MESSAGE not in signed_in.get(LOGIN).content.decode()


def test_a_session_idle_just_under_30_minutes_stays_signed_in(signed_in, clock):
    clock.advance(minutes=29, seconds=59)
    assert signed_in.get(INDEX).status_code == 200
    assert SESSION_KEY in signed_in.session


def test_activity_extends_the_idle_window_but_not_the_absolute_lifetime(signed_in, clock):
    for _ in range(35):  # a request every 20 minutes for 11 h 40 min: never idle
        clock.advance(minutes=20)
        assert signed_in.get(INDEX).status_code == 200
    clock.advance(minutes=19, seconds=59)
    assert signed_in.get(INDEX).status_code == 200  # 11 h 59 min 59 s after signing in
    clock.advance(seconds=1)
    response = signed_in.get(INDEX, follow=True)
    assert response.redirect_chain[0][0].startswith(LOGIN)
    assert LIFETIME_MESSAGE in response.content.decode()
    assert IDLE_MESSAGE not in response.content.decode()


def test_both_limits_follow_their_settings(settings, signed_in, clock, security_user):
    settings.PORTAL_SESSION_IDLE_MINUTES = 5
    clock.advance(minutes=5)
    response = signed_in.get(INDEX, follow=True)
    assert "signed out after 5 minutes without activity" in response.content.decode()

    settings.PORTAL_SESSION_MAX_HOURS = 1
    signed_in.force_login(security_user)
    assert signed_in.get(INDEX).status_code == 200
    for _ in range(14):
        clock.advance(minutes=4)
        assert signed_in.get(INDEX).status_code == 200
    clock.advance(minutes=4)
    response = signed_in.get(INDEX, follow=True)
    assert "reached its limit of 1 hour." in response.content.decode()


def test_requests_a_page_makes_on_its_own_do_not_keep_an_idle_session_alive(signed_in, clock):
    for _ in range(5):
        clock.advance(minutes=5)
        assert _poll(signed_in).status_code == 200  # still signed in: 25 minutes so far
    clock.advance(minutes=5)
    refused = _poll(signed_in)
    assert _signed_out_to_login(refused)
    # The refresh cannot show the message, so it leaves the ending to the next page opened...
    assert SESSION_KEY in signed_in.session
    assert not AuditEvent.objects.filter(action="user.session_expired").exists()
    response = signed_in.get(INDEX, follow=True)
    assert IDLE_MESSAGE in response.content.decode()  # ...which ends it, and says why
    assert SESSION_KEY not in signed_in.session


def test_the_sign_in_form_starts_both_clocks(client, security_user, clock):
    response = client.post(
        LOGIN, {"username": "sec", "password": "correct horse battery staple", "next": INDEX}
    )
    assert response.status_code == 302 and response["Location"] == INDEX
    started = int(clock.now.timestamp())
    assert client.session[session_limits.SIGNED_IN_AT] == started
    assert client.session[session_limits.SEEN_AT] == started
    clock.advance(minutes=30)
    assert _signed_out_to_login(client.get(INDEX))


def test_the_last_seen_time_is_written_at_most_once_a_minute(signed_in, clock):
    first = signed_in.session[session_limits.SEEN_AT]
    clock.advance(seconds=59)
    signed_in.get(INDEX)
    assert signed_in.session[session_limits.SEEN_AT] == first
    clock.advance(seconds=1)
    signed_in.get(INDEX)
    assert signed_in.session[session_limits.SEEN_AT] == first + 60


@pytest.mark.parametrize("value", [None, "1700000000", 1.5, [1]])
def test_a_session_with_unreadable_timestamps_gets_fresh_ones(signed_in, clock, value):
    session = signed_in.session
    session[session_limits.SIGNED_IN_AT] = value
    session.save()
    clock.advance(minutes=10)
    assert signed_in.get(INDEX).status_code == 200
    now = int(clock.now.timestamp())
    assert signed_in.session[session_limits.SIGNED_IN_AT] == now
    clock.advance(minutes=30)
    assert _signed_out_to_login(signed_in.get(INDEX))


@pytest.mark.parametrize(("idle", "reason"), [(True, "idle"), (False, "lifetime")])
def test_the_audit_trail_records_each_sign_out_and_why_and_nothing_of_the_session(
    signed_in, clock, security_user, idle, reason
):
    session_key = signed_in.session.session_key
    if not idle:
        for _ in range(35):  # busy until 11 h 40 min after signing in
            clock.advance(minutes=20)
            assert signed_in.get(INDEX).status_code == 200
    clock.advance(minutes=31 if idle else 20)
    assert _signed_out_to_login(signed_in.get(INDEX, HTTP_USER_AGENT="Firefox"))
    event = AuditEvent.objects.get(action="user.session_expired")
    assert event.details == {"reason": reason}
    assert (event.target_type, event.target_id) == ("user", str(security_user.pk))
    assert (event.actor_id, event.user_agent) == (str(security_user.pk), "Firefox")
    recorded = " ".join(str(value) for value in AuditEvent.objects.values_list())
    assert session_key not in recorded


def test_an_anonymous_visitor_and_an_api_call_are_left_alone(client, clock):
    clock.advance(hours=100)
    assert client.get(LOGIN).status_code == 200
    assert not client.cookies.get("sessionid")
    response = client.get("/api/v1/credentials")
    assert response.status_code == 401
    assert "Cookie" not in response.get("Vary", "")  # no session was loaded for it
