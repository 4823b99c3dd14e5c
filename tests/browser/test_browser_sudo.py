"""Sudo mode in a real browser: a stale window detours through the confirm page and back."""

import time
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.urls import reverse
from playwright.sync_api import expect

from credentials import sudo
from credentials.models import Kind, State
from tests.browser.conftest import ROLE_PASSWORD


def _age_the_window(page):
    """Move the signed-in session's window start back past PORTAL_SUDO_SECONDS."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=cookie["value"])
    session[sudo.SESSION_KEY] = int(time.time()) - settings.PORTAL_SUDO_SECONDS - 1
    session.save()


def test_a_stale_revoke_asks_for_the_password_then_comes_back_to_the_revoke_page(
    login, live_server, security_user, issue
):
    version = issue(Kind.API_KEY).version
    page = login(security_user.username)
    _age_the_window(page)
    revoke = reverse("admin:credentials_credentialversion_revoke", args=[version.pk])
    page.goto(live_server.url + revoke)
    assert urlparse(page.url).path == reverse("admin:confirm_identity")
    expect(page.locator("h1")).to_have_text("Confirm it is you")
    page.fill("#id_password", "not my password")
    page.click("#content-main [type=submit]")
    expect(page.locator(".errornote")).to_contain_text("not right")
    page.fill("#id_password", ROLE_PASSWORD)
    page.click("#content-main [type=submit]")
    page.wait_for_url(live_server.url + revoke)
    page.select_option("#id_reason", "routine")
    page.click("#content-main [type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Revoked")
    version.refresh_from_db()
    assert version.state == State.REVOKED
