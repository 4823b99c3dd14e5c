"""An idle session ends in the browser too: a rotation page left open (it refreshes itself)
lands on the sign-in page with the reason, instead of staying signed in forever."""

from importlib import import_module

from django.conf import settings
from django.urls import reverse
from playwright.sync_api import expect

from credentials import lifecycle
from credentials.models import Kind
from portal import session_limits
from tests.browser.conftest import TIMEOUT_MS
from tests.states import ACTOR


def _age_the_session(page, *, minutes):
    """Move the browser's session's last-seen time back, as if nobody had used it for so long."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=cookie["value"])
    store[session_limits.SEEN_AT] -= minutes * 60
    store.save()


def test_an_open_rotation_page_left_idle_lands_on_the_sign_in_page_with_the_reason(
    login, live_server, security_user, app, console_errors
):
    issued = lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.API_KEY, name="Orders")
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=issued.credential)
    lifecycle.rotation_confirm(
        actor=ACTOR, rotation=rotation, step=0, ticked=[0, 1], overlap_seconds=3600
    )
    lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
    lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=2, ticked=[0, 1, 2])
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
