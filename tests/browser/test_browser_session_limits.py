"""An idle session ends in the browser too: a rotation page left open (it refreshes itself)
lands on the sign-in page with the reason, instead of staying signed in forever."""

from importlib import import_module

from django.conf import settings
from django.urls import reverse
from playwright.sync_api import expect

from portal import session_limits
from tests.browser.conftest import TIMEOUT_MS


def _age_the_session(page, *, minutes):
    """Move the browser's session's last-seen time back, as if nobody had used it for so long."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=cookie["value"])
    store[session_limits.SEEN_AT] -= minutes * 60
    store.save()


def test_an_open_rotation_page_left_idle_lands_on_the_sign_in_page_with_the_reason(
    login, live_server, security_user, rotation_at_activity_check, console_errors
):
    rotation = rotation_at_activity_check
    page = login(security_user.username)
    page.goto(live_server.url + reverse("admin:credentials_rotation", args=[rotation.pk]))
    activity = reverse("admin:credentials_rotation_activity", args=[rotation.pk])
    with page.expect_response(lambda r: r.url.endswith(activity), timeout=TIMEOUT_MS):
        pass  # the panel refreshes itself: the session is still good
    expect(page.locator(".kt-rotation")).to_be_visible()

    _age_the_session(page, minutes=settings.PORTAL_SESSION_IDLE_MINUTES)
    # The next refresh is answered as signed out; the page reopens itself and shows why.
    expect(page.locator(".messagelist .warning")).to_contain_text(
        "You were signed out after 30 minutes without activity.", timeout=TIMEOUT_MS
    )
    expect(page.locator("#login-form")).to_be_visible()
    assert console_errors == []
