"""Two-factor sign-in in a real browser: enrol by reading the secret off the page, then sign in
again with a code computed here (RFC 6238), not by django-otp."""

from urllib.parse import urlparse

from django.conf import settings as django_settings
from django.urls import reverse
from playwright.sync_api import expect

from tests.signin import enrol_authenticator, key_from_base32, totp

SCREENSHOTS = django_settings.BASE_DIR / "var" / "screenshots"


def test_enrolling_an_authenticator_and_signing_in_with_it(
    settings, login, live_server, console_errors, security_user
):
    settings.PORTAL_2FA_REQUIRED = True

    page = login(security_user.username)  # the password alone leads to the enrolment page
    assert urlparse(page.url).path == reverse("admin:two_factor_enrol")
    qr = page.locator(".kt-qr-box svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 150
    expect(page.locator(".kt-qr-box [style], .kt-qr-box script")).to_have_count(0)
    key = key_from_base32(page.locator("#kt-totp-secret").inner_text())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "two-factor-enrol.png", full_page=True)

    page.fill("#id_code", totp(key))
    page.click("#kt-enrol-form [type=submit]")

    expect(page.locator("#kt-backup-codes li")).to_have_count(10)
    page.click("text=I have stored them")
    assert urlparse(page.url).path == reverse("admin:index")
    expect(page.locator("#content-main")).to_contain_text("Nothing needs attention")

    page.click("#logout-form [type=submit]")
    page = login(security_user.username)
    assert urlparse(page.url).path == reverse("admin:two_factor_verify")
    # Elsewhere in the admin is still closed to this half-signed-in session.
    page.goto(live_server.url + reverse("admin:credentials_credential_changelist"))
    assert urlparse(page.url).path == reverse("admin:two_factor_verify")

    # The code used to enrol cannot be used again; the next step's code is accepted.
    page.fill("#id_code", totp(key, steps_ahead=1))
    page.click("#kt-verify-form [type=submit]")

    assert urlparse(page.url).path == reverse("admin:credentials_credential_changelist")
    expect(page.locator("#user-tools")).to_contain_text(security_user.username)
    assert console_errors == []


def test_wrong_codes_in_the_browser_end_on_the_lockout_page(settings, login, page, security_user):
    settings.PORTAL_2FA_REQUIRED = True
    enrol_authenticator(security_user)
    login(security_user.username)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.fill("#id_code", "000000")
        page.click("#kt-verify-form [type=submit]")

    expect(page.locator("#kt-locked-out")).to_contain_text("Try again in 15 minutes")
    expect(page.locator("#site-name")).to_contain_text("Keyturn")
