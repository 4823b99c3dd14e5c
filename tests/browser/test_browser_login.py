"""Signing in to the admin in a real browser: each role lands on the Keyturn index."""

import re
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import expect

SCREENSHOT = settings.BASE_DIR / "var" / "screenshots" / "admin-index.png"
KEYTURN_CSS = re.compile(r"/static/css/keyturn(\.[0-9a-f]+)?\.css$")
# `--primary` as keyturn.css declares it on :root, and as the document computes it.
PRIMARY_COLOUR = """() => {
    const sheet = [...document.styleSheets].find(s => /\\/css\\/keyturn[^/]*\\.css$/.test(s.href));
    const root = sheet && [...sheet.cssRules].find(rule => rule.selectorText === ":root");
    const computed = getComputedStyle(document.documentElement).getPropertyValue("--primary");
    return [root ? root.style.getPropertyValue("--primary").trim() : null, computed.trim()];
}"""

# Which admin index rows each role sees: everyone with a role sees the credential models,
# only administrators see the user list.
ROLE_INDEX_ROWS = [
    pytest.param("security_user", {"model-credential": 1, "model-user": 0}, id="security"),
    pytest.param("auditor_user", {"model-credential": 1, "model-user": 0}, id="auditor"),
    pytest.param("admin_user", {"model-credential": 1, "model-user": 1}, id="administrator"),
]


@pytest.mark.parametrize(("role_user", "rows"), ROLE_INDEX_ROWS)
def test_each_role_signs_in_through_the_form_and_sees_the_keyturn_index(
    request, login, console_errors, role_user, rows
):
    user = request.getfixturevalue(role_user)

    page = login(user.username)

    assert urlparse(page.url).path == reverse("admin:index")
    expect(page.locator("#site-name")).to_contain_text("Keyturn")
    expect(page).to_have_title(re.compile(r"\| Keyturn$"))
    expect(page.locator("#user-tools")).to_contain_text(user.username)
    for row, count in rows.items():
        expect(page.locator(f"#content-main tr.{row}")).to_have_count(count)
    assert console_errors == []


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("sec", "correct horse battery stapler", id="wrong-password"),
        pytest.param("sec", "CORRECT HORSE BATTERY STAPLE", id="password-in-capitals"),
        pytest.param("SEC", "correct horse battery staple", id="username-in-capitals"),
        pytest.param("nobody", "correct horse battery staple", id="unknown-user"),
    ],
)
def test_a_wrong_login_shows_the_admin_error_and_stays_on_the_login_page(
    page, live_server, security_user, username, password
):
    login_path = reverse("admin:login")
    page.goto(live_server.url + login_path)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")

    expect(page.locator(".errornote")).to_contain_text("correct username and password")
    assert urlparse(page.url).path == login_path
    expect(page.locator("#user-tools")).to_have_count(0)
    # Still signed out: the index sends the browser back to the login form.
    page.goto(live_server.url + reverse("admin:index"))
    assert urlparse(page.url).path == login_path


def test_a_staff_user_without_a_role_sees_the_admin_but_no_credential_models(
    login, live_server, outsider_user
):
    page = login(outsider_user.username)

    expect(page.locator("#site-name")).to_contain_text("Keyturn")
    expect(page.locator("#content-main")).to_contain_text("permission to view or edit anything")
    expect(page.locator("#content-main a[href*='/credentials/']")).to_have_count(0)
    response = page.goto(live_server.url + reverse("admin:credentials_credential_changelist"))
    assert response.status == 403


def test_the_keyturn_stylesheet_is_served_and_styles_the_signed_in_index(
    page, login, console_errors, admin_user
):
    with page.expect_response(KEYTURN_CSS) as stylesheet:
        login(admin_user.username)

    assert stylesheet.value.status == 200
    # The brand colour keyturn.css declares is the one the page computes, over the admin's own.
    declared, computed = page.evaluate(PRIMARY_COLOUR)
    assert declared
    assert computed == declared
    assert console_errors == []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)
