"""Every portal page renders in a real browser for the roles that may open it, without a
console error, and with its countdowns running."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from credentials import lifecycle
from credentials.models import Kind, RevokeReason
from tests.states import ACTOR


@pytest.fixture
def estate(app):
    api = lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.API_KEY, name="Orders key")
    lifecycle.credential_rotate(actor=ACTOR, credential=api.credential, overlap_seconds=3600)
    rotated = api.credential.versions.get(number=2)
    lifecycle.version_revoke(actor=ACTOR, version=rotated, reason=RevokeReason.ROUTINE)
    hook = lifecycle.endpoint_create(actor=ACTOR, app=app, url="https://hooks.example.com/k")
    guided = lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.API_KEY, name="Guided")
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=guided.credential)
    return {"app": app, "credential": api.credential, "version": rotated, "hook": hook,
            "rotation": rotation}  # fmt: skip


def _pages(estate, role):
    credential, version = estate["credential"], estate["version"]
    every = [
        ("admin:index", []),
        ("admin:credentials_app_changelist", []),
        ("admin:credentials_app_change", [estate["app"].pk]),
        ("admin:credentials_endpoint_changelist", []),
        ("admin:credentials_endpoint_change", [estate["hook"].credential.endpoint_id]),
        ("admin:credentials_credential_changelist", []),
        ("admin:credentials_credential_change", [credential.pk]),
        ("admin:credentials_credential_timeline", [credential.pk]),
        ("admin:credentials_credentialversion_changelist", []),
        ("admin:credentials_auditevent_changelist", []),
        ("admin:credentials_rotation", [estate["rotation"].pk]),
    ]
    staff = [
        ("admin:credentials_app_add", []),
        ("admin:credentials_endpoint_add", []),
        ("admin:credentials_credential_issue", []),
        ("admin:credentials_credential_rotate", [credential.pk]),
        ("admin:credentials_credentialversion_revoke", [credential.versions.get(number=1).pk]),
        ("admin:credentials_credentialversion_reactivate", [version.pk]),
        ("admin:credentials_credential_rotation_start", [credential.pk]),
        ("admin:credentials_rotation_abandon", [estate["rotation"].pk]),
    ]
    administrators = [
        ("admin:credentials_credentialversion_expose", [version.pk]),
        ("admin:auth_user_changelist", []),
    ]
    return every + {"auditor": [], "security": staff, "admin": staff + administrators}[role]


@pytest.mark.parametrize("role", ["auditor", "security", "admin"])
def test_every_page_a_role_may_open_renders_cleanly(
    request, login, live_server, console_errors, estate, role
):
    user = request.getfixturevalue(f"{role}_user")
    page = login(user.username)
    for name, args in _pages(estate, role):
        response = page.goto(live_server.url + reverse(name, args=args))
        assert response.status == 200, name
        expect(page).to_have_title(re.compile(r"\| Keyturn$"))
        expect(page.locator("#content-main")).to_be_visible()
        assert console_errors == [], (name, console_errors)


def test_the_reactivation_countdown_ticks_in_the_page(login, live_server, admin_user, estate):
    page = login(admin_user.username)
    page.goto(
        live_server.url
        + reverse("admin:credentials_credentialversion_reactivate", args=[estate["version"].pk])
    )
    countdown = page.locator(".kt-countdown")
    expect(countdown).to_contain_text(" s left")
    first = countdown.inner_text()
    page.wait_for_timeout(1200)
    assert countdown.inner_text() != first
