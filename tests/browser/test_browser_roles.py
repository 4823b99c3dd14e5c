"""Each role in a real browser: what security staff, auditors, administrators and outsiders
see and can do on a credential, and that a secret is shown once and never again."""

import csv
import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from credentials import lifecycle, once
from credentials.models import Credential, CredentialVersion, Kind, RevokeReason, State
from tests.states import ACTOR

COUNTDOWN = re.compile(r"\d+ min \d\d s left")
SELECTED_TEXT = """() => {
    const field = document.getElementById("kt-secret");
    return field.value.substring(field.selectionStart, field.selectionEnd);
}"""
REJECTED_409 = "Failed to load resource: the server responded with a status of 409 (Conflict)"


@pytest.fixture
def api_key(issue):
    """An API key credential with one active version: ``api_key.version``, ``api_key.plaintext``."""
    return issue(Kind.API_KEY, name="Orders export")


@pytest.fixture
def as_security(login, security_user):
    return login(security_user.username)


@pytest.fixture
def as_auditor(login, auditor_user):
    return login(auditor_user.username)


@pytest.fixture
def as_admin(login, admin_user):
    return login(admin_user.username)


def url(live_server, name, *args):
    return live_server.url + reverse(f"admin:{name}", args=args)


def open_credential(page, live_server, credential):
    response = page.goto(url(live_server, "credentials_credential_change", credential.pk))
    assert response.status == 200
    return page


def version_row(page, number):
    return page.locator(f"#kt-version-table tr[data-version='{number}']")


def states_of(credential):
    return dict(credential.versions.values_list("number", "state"))


def assert_never_shown(page, *secrets):
    """Neither the page's markup nor its secret box holds any of these plaintexts."""
    html = page.content()
    for secret in secrets:
        assert secret not in html
    expect(page.locator("#kt-secret")).to_have_count(0)


# Security staff


def test_security_staff_find_a_credential_by_the_last_four_characters_of_its_secret(
    as_security, live_server, api_key, issue
):
    issue(Kind.API_KEY, name="Unrelated key")
    version = api_key.version
    page = as_security
    page.goto(url(live_server, "credentials_credential_changelist"))
    results = page.locator("#result_list tbody tr")
    expect(results).to_have_count(2)

    # As typed, and as copied from a page that shows it masked.
    for term in (version.last_four, version.masked):
        page.fill("#searchbar", term)
        page.press("#searchbar", "Enter")
        expect(results).to_have_count(1)
        expect(results).to_contain_text("Orders export")
        expect(results).to_contain_text(version.masked)

    results.get_by_role("link", name="Orders export").click()
    row = version_row(page, 1)
    expect(row.locator(".kt-badge")).to_have_text("Active")
    expect(row).to_contain_text(version.masked)
    expect(page.get_by_role("link", name="Rotate now")).to_be_visible()
    expect(row.get_by_role("link", name="Revoke")).to_be_visible()
    # Reporting an exposure is for administrators.
    expect(row.get_by_role("link", name="Report exposure")).to_have_count(0)
    assert_never_shown(page, api_key.plaintext)


def test_issuing_shows_the_secret_once_with_a_copy_button_and_a_reload_shows_only_the_last_four(
    as_security, live_server, app, console_errors
):
    page = as_security
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(url(live_server, "credentials_credential_changelist"))
    page.get_by_role("link", name="Issue a credential").click()
    page.select_option("#id_app", label=app.name)
    page.select_option("#id_kind", label="API key")
    page.fill("#id_name", "Nightly invoices")
    page.get_by_label("orders:read —").check()
    page.fill("#id_lifetime_days", "90")
    page.get_by_role("button", name="Issue and show the secret once").click()

    expect(page.locator(".kt-once")).to_contain_text("shown this once and never again")
    secret = page.input_value("#kt-secret")
    assert secret.startswith("ktak_")
    credential = Credential.objects.get(name="Nightly invoices")
    version = credential.versions.get()
    assert secret.endswith(version.last_four)
    page.wait_for_load_state()  # keyturn.js (deferred) has wired the Copy button
    page.get_by_role("button", name="Copy").click()
    copied = page.locator(".kt-copied")
    expect(copied).to_have_text(re.compile(r"^(Copied\.|Press Ctrl\+C \(⌘C\) to copy\.)$"))
    if copied.inner_text() == "Copied.":
        assert page.evaluate("navigator.clipboard.readText()") == secret
    else:
        # Headless Chromium may refuse the clipboard to a page without focus: the fallback
        # selects the whole secret for the person to copy.
        assert page.evaluate(SELECTED_TEXT) == secret

    # Headless Chromium re-sends the POST on reload, without asking: the one-time token in it
    # was claimed by the first submission.
    with page.expect_response(lambda response: response.request.method == "POST") as resent:
        page.reload()

    assert resent.value.status == 409
    expect(page.locator(".errornote")).to_contain_text("already displayed")
    expect(page.locator("#content-main")).to_contain_text(f"••••{version.last_four}")
    assert_never_shown(page, secret)
    assert credential.versions.count() == 1
    assert credential.scopes == ["orders:read"]
    assert Credential.objects.filter(name="Nightly invoices").count() == 1
    assert console_errors == [REJECTED_409]


def test_a_double_click_on_issue_still_shows_the_new_secret(
    as_security, live_server, app, monkeypatch
):
    # A server a few hundred milliseconds away: the second click of a double click lands
    # while the first request is still being answered.
    check = once.check

    def slow_check(*args, **kwargs):
        time.sleep(0.5)
        return check(*args, **kwargs)

    monkeypatch.setattr(once, "check", slow_check)
    page = as_security
    page.goto(url(live_server, "credentials_credential_issue"))
    page.select_option("#id_app", label=app.name)
    page.fill("#id_name", "Nightly invoices")
    submit = page.get_by_role("button", name="Issue and show the secret once").bounding_box()
    x, y = submit["x"] + submit["width"] / 2, submit["y"] + submit["height"] / 2

    page.mouse.click(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)

    page.locator(".kt-reveal, .errornote").first.wait_for()
    assert Credential.objects.get(name="Nightly invoices").versions.count() == 1
    assert page.locator("#kt-secret").count() == 1, page.locator("#content-main").inner_text()


def test_rotating_now_shows_the_new_secret_once_and_back_and_forward_never_show_it_again(
    as_security, live_server, api_key
):
    credential = api_key.version.credential
    page = open_credential(as_security, live_server, credential)
    page.get_by_role("link", name="Rotate now").click()
    page.fill("#id_overlap_hours", "2")
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Rotate now and show the new secret once").click()

    assert "no-store" in posted.value.headers["cache-control"]
    secret = page.input_value("#kt-secret")
    new_version = credential.versions.get(number=2)
    assert secret.endswith(new_version.last_four)
    assert secret != api_key.plaintext
    page.get_by_role("link", name=re.compile("I have stored it")).click()
    expect(version_row(page, 2).locator(".kt-badge")).to_have_text("Active")
    expect(version_row(page, 1).locator(".kt-badge")).to_have_text("Retiring (overlap)")
    assert_never_shown(page, secret, api_key.plaintext)

    # Back to the reveal: the page may not be kept (no-store, so no back/forward cache), so
    # headless Chromium sends its form again, and the token in it was claimed already.
    with page.expect_response(lambda response: response.request.method == "POST") as resent:
        page.go_back()

    assert resent.value.status == 409
    expect(page.locator(".errornote")).to_contain_text("already displayed")
    expect(page.locator("#content-main")).to_contain_text(new_version.masked)
    assert_never_shown(page, secret, api_key.plaintext)
    page.go_forward()
    expect(version_row(page, 2).locator(".kt-badge")).to_have_text("Active")
    assert_never_shown(page, secret, api_key.plaintext)
    assert states_of(credential) == {1: State.RETIRING, 2: State.ACTIVE}


def test_a_revoked_version_can_be_reactivated_while_its_countdown_runs(
    as_security, live_server, api_key
):
    version = api_key.version
    page = open_credential(as_security, live_server, version.credential)
    version_row(page, 1).get_by_role("link", name="Revoke").click()
    expect(page.locator("#content-main")).to_contain_text("stops it working at once")
    submit = page.get_by_role("button", name=f"Revoke {version.masked} now")
    page.select_option("#id_reason", label="Other (see note)")
    submit.click()
    expect(page.locator(".errornote")).to_contain_text("Say why in the note")
    assert states_of(version.credential) == {1: State.ACTIVE}

    page.select_option("#id_reason", label="Routine clean-up")
    submit.click()

    expect(page.locator(".messagelist .success")).to_contain_text(
        f"Revoked version 1 ({version.masked})"
    )
    row = version_row(page, 1)
    expect(row.locator(".kt-badge")).to_have_text("Revoked")
    expect(row).to_contain_text("Routine clean-up")
    expect(row.locator(".kt-countdown")).to_have_text(COUNTDOWN)
    version.refresh_from_db()
    assert version.state == State.REVOKED

    row.get_by_role("link", name="Reactivate").click()
    expect(page.locator(".kt-countdown")).to_have_text(COUNTDOWN)
    page.get_by_role("button", name=f"Reactivate {version.masked}").click()

    expect(page.locator(".messagelist .success")).to_contain_text("it is active again")
    row = version_row(page, 1)
    expect(row.locator(".kt-badge")).to_have_text("Active")
    expect(row.get_by_role("link", name="Reactivate")).to_have_count(0)
    expect(row.get_by_role("link", name="Revoke")).to_be_visible()
    assert states_of(version.credential) == {1: State.ACTIVE}


def test_reactivating_from_a_page_opened_before_the_window_closed_is_refused(
    as_security, live_server, api_key
):
    version = lifecycle.version_revoke(
        actor=ACTOR, version=api_key.version, reason=RevokeReason.ROUTINE
    )
    page = open_credential(as_security, live_server, version.credential)
    version_row(page, 1).get_by_role("link", name="Reactivate").click()
    expect(page.locator(".kt-countdown")).to_have_text(COUNTDOWN)

    # The clock moves on while the page stays open: the window closed a minute ago.
    CredentialVersion.objects.filter(pk=version.pk).update(
        reactivation_deadline=timezone.now() - timedelta(minutes=1)
    )
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name=f"Reactivate {version.masked}").click()

    assert posted.value.status == 409
    refusal = page.locator(".errornote")
    expect(refusal).to_contain_text(re.compile(r"reactivation window for version 1 closed"))
    expect(page.get_by_role("button", name=re.compile("^Reactivate"))).to_have_count(0)
    version.refresh_from_db()
    assert version.state == State.REVOKED
    open_credential(page, live_server, version.credential)
    expect(version_row(page, 1).locator(".kt-badge")).to_have_text("Revoked")
    expect(version_row(page, 1).get_by_role("link", name="Reactivate")).to_have_count(0)


# Auditors


def test_an_auditor_sees_the_versions_but_no_button_that_changes_them(
    as_auditor, live_server, api_key
):
    credential = api_key.version.credential
    page = open_credential(as_auditor, live_server, credential)

    expect(version_row(page, 1).locator(".kt-badge")).to_have_text("Active")
    expect(version_row(page, 1)).to_contain_text(api_key.version.masked)
    for name in ("Rotate now", "Revoke", "Reactivate", "Report exposure"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    expect(page.locator(".kt-actions a")).to_have_count(0)
    expect(page.locator("input[type=submit]")).to_have_count(0)
    assert_never_shown(page, api_key.plaintext)


# What an auditor may not open, and which object each page is about.
AUDITOR_REFUSED = [
    ("credentials_credential_issue", None),
    ("credentials_credential_rotate", "credential"),
    ("credentials_credentialversion_revoke", "version"),
    ("credentials_credentialversion_reactivate", "version"),
    ("credentials_credentialversion_expose", "version"),
]


def test_an_auditor_opening_a_page_that_changes_a_credential_by_its_url_gets_403(
    as_auditor, live_server, api_key
):
    version = api_key.version
    objects = {None: [], "credential": [version.credential.pk], "version": [version.pk]}

    statuses = {
        view: as_auditor.goto(url(live_server, view, *objects[about])).status
        for view, about in AUDITOR_REFUSED
    }

    assert statuses == {view: 403 for view, _ in AUDITOR_REFUSED}
    assert states_of(version.credential) == {1: State.ACTIVE}
    assert Credential.objects.count() == 1


def test_an_auditor_exports_the_credential_audit_log_as_csv_and_verifies_the_chain(
    as_auditor, live_server, api_key, tmp_path
):
    credential = api_key.version.credential
    page = open_credential(as_auditor, live_server, credential)
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#result_list")).to_contain_text("credential.issued")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export these events as CSV").click()

    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert re.fullmatch(r"keyturn-audit-\d{8}-\d{6}\.csv", path.name)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert "credential.issued" in {row["action"] for row in rows}
    assert {row["credential_id"] for row in rows} == {str(credential.pk)}
    assert api_key.plaintext not in path.read_text(encoding="utf-8")

    page.get_by_role("button", name="Verify now").click()
    expect(page.locator(".kt-chain .kt-badge")).to_have_text("Chain verified")
    expect(page.locator(".messagelist")).to_contain_text("Audit chain intact")


# Administrators


def test_reporting_an_exposure_needs_the_confirmation_box_and_then_revokes_for_good(
    as_admin, live_server, api_key
):
    version = api_key.version
    page = open_credential(as_admin, live_server, version.credential)
    version_row(page, 1).get_by_role("link", name="Report exposure").click()
    expect(page.locator("#content-main")).to_contain_text("for good")
    expect(page.locator("#content-main")).to_contain_text("can never be reactivated")
    page.fill("#id_note", "Pasted into a public gist")
    submit = page.get_by_role("button", name=f"Report {version.masked} exposed and revoke it")

    submit.click()

    expect(page.locator(".field-confirm .errorlist")).to_contain_text("required")
    assert states_of(version.credential) == {1: State.ACTIVE}

    page.check("#id_confirm")
    submit.click()

    expect(page.locator(".messagelist .warning")).to_contain_text("can never be reactivated")
    # Reporting starts the exposure rotation, whose first step (the revoke) is done already.
    expect(page.locator(".kt-exposure-banner")).to_be_visible()
    expect(page.locator(".kt-step-done")).to_contain_text("Revoke the exposed version")
    page = open_credential(page, live_server, version.credential)
    expect(page.locator(".kt-exposure-banner")).to_be_visible()
    row = version_row(page, 1)
    expect(row.locator(".kt-badge")).to_have_text("Revoked: exposed")
    expect(row).to_contain_text("Exposed")
    expect(row).to_contain_text("never (exposed)")
    expect(row.get_by_role("link", name="Reactivate")).to_have_count(0)
    expect(row.get_by_role("link", name="Report exposure")).to_have_count(0)
    version.refresh_from_db()
    assert (version.state, version.revoke_reason) == (State.REVOKED, RevokeReason.EXPOSED)
    assert version.reactivation_deadline is None


# No role


def test_a_user_without_a_role_sees_no_credential_models_and_cannot_open_a_credential(
    login, live_server, outsider_user, api_key
):
    page = login(outsider_user.username)
    expect(page.locator("a[href*='/admin/credentials/']")).to_have_count(0)
    credential = api_key.version.credential

    change = page.goto(url(live_server, "credentials_credential_change", credential.pk))
    assert change.status == 403
    assert_never_shown(page, api_key.plaintext)
    assert api_key.version.masked not in page.content()
    # Keyturn's own pages do not even say whether the credential exists.
    rotate = page.goto(url(live_server, "credentials_credential_rotate", credential.pk))
    assert rotate.status == 404
    assert states_of(credential) == {1: State.ACTIVE}
