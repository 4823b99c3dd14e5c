"""The Content Security Policy holds in a real browser: every main page type loads and works
under it without one violation (Chromium reports each as a `securitypolicyviolation` event)."""

import json

import pytest
from django.urls import reverse
from playwright.sync_api import expect

# Runs before any of the page's own scripts, on every page the context opens.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("csp-violation " + JSON.stringify({
    directive: event.effectiveDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample
  }));
});
"""


@pytest.fixture
def violations(page):
    """CSP violations the test's pages reported, as dicts, in order."""
    seen = []

    def on_console(message):
        if message.text.startswith("csp-violation "):
            seen.append(json.loads(message.text.removeprefix("csp-violation ")))

    page.context.add_init_script(REPORT_VIOLATIONS)
    page.on("console", on_console)
    return seen


def test_the_violation_listener_reports_a_blocked_inline_script(page, live_server, violations):
    # The detector itself must work, or every other test here would pass for nothing.
    page.goto(live_server.url + reverse("admin:login"))
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = 1'; document.body.appendChild(s); }"
    )
    expect(page.locator("body")).to_be_visible()
    page.wait_for_function("() => true")
    assert page.evaluate("() => window.ran") is None
    assert [v["directive"] for v in violations] == ["script-src-elem"]


def test_the_main_pages_load_under_the_policy_without_a_violation(
    login, live_server, admin_user, app, rotation_at_activity_check, violations, console_errors
):
    page = login(admin_user.username)  # the sign-in page itself is loaded and used here
    credential = rotation_at_activity_check.credential

    def visit(name, *args):
        response = page.goto(live_server.url + reverse(name, args=args))
        assert response.status == 200, name
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        expect(page.locator("#content-main")).to_be_visible()

    visit("admin:index")
    visit("admin:credentials_credential_changelist")
    visit("admin:credentials_app_changelist")
    page.locator("#action-toggle").check()  # the admin's actions.js, under the policy
    expect(page.locator(".action-counter")).to_contain_text(" selected")
    visit("admin:credentials_credential_change", credential.pk)
    visit("admin:credentials_credential_timeline", credential.pk)
    visit("admin:credentials_auditevent_changelist")
    visit("admin:auth_user_change", admin_user.pk)  # SelectFilter2's two-box group picker
    expect(page.locator("#id_groups_from")).to_be_visible()

    activity = reverse("admin:credentials_rotation_activity", args=[rotation_at_activity_check.pk])
    with page.expect_response(lambda r: r.url.endswith(activity)) as polled:
        visit("admin:credentials_rotation", rotation_at_activity_check.pk)
    assert polled.value.status == 200  # rotation.js's fetch is allowed by connect-src

    visit("admin:two_factor_enrol")  # the QR code, drawn inline as SVG
    expect(page.locator("svg.kt-qr")).to_be_visible()
    visit("admin:confirm_identity")
    visit("admin:axes_accessattempt_changelist")

    visit("admin:credentials_credential_issue")
    page.select_option("#id_app", str(app.pk))
    page.fill("#id_name", "Shown once")
    page.locator("#content-main [type=submit]").first.click()
    expect(page.locator("#kt-secret")).to_be_visible()
    page.get_by_role("button", name="Copy").click()  # keyturn.js, under the policy

    response = page.goto(live_server.url + "/api/v1/docs")
    assert response.status == 200
    expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    page.locator(".opblock-summary").first.click()  # Swagger UI renders an operation
    expect(page.locator(".opblock-body").first).to_be_visible()

    assert violations == []
    assert console_errors == []
