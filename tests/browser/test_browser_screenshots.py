"""The README's screenshots, made from a real browser: `KEYTURN_SCREENSHOTS=1` to refresh them.

Off by default, so an ordinary test run (and CI) never rewrites the committed images. The
secret in show-once.png is a throwaway from the test database.
"""

import os
import re

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import expect

from credentials import lifecycle
from credentials.audit import Actor
from credentials.models import Credential, Kind, RevokeReason, State

SCREENSHOTS = settings.BASE_DIR / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}

pytestmark = pytest.mark.skipif(
    os.environ.get("KEYTURN_SCREENSHOTS") != "1",
    reason="rewrites docs/screenshots/: set KEYTURN_SCREENSHOTS=1 to refresh them",
)


def shoot(page, down_to, name):
    """The page's full width, from the top down to just below ``down_to``: no blank tail."""
    box = page.locator(down_to).bounding_box()
    height = min(box["y"] + box["height"] + 24, VIEWPORT["height"])
    page.screenshot(
        path=SCREENSHOTS / name, clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
    )


def test_the_readme_screenshots_show_a_secret_once_and_a_credential_in_every_state(
    login, live_server, admin_user, app
):
    page = login(admin_user.username)
    page.set_viewport_size(VIEWPORT)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(live_server.url + reverse("admin:credentials_credential_issue"))
    # The admin's model list would take a quarter of each picture: fold it (the admin keeps
    # that choice in the browser's local storage, so it stays folded on the next pages).
    page.click("#toggle-nav-sidebar")
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    page.select_option("#id_app", label=app.name)
    page.select_option("#id_kind", label="API key")
    page.fill("#id_name", "Orders sync")
    page.get_by_label("orders:read —").check()
    page.get_by_label("orders:write —").check()
    page.get_by_role("button", name="Issue and show the secret once").click()
    expect(page.locator("#kt-secret")).to_have_value(re.compile(r"^ktak_"))
    page.wait_for_load_state()
    shoot(page, "#content-main", "show-once.png")

    # The credential's later life, told through the lifecycle as the portal would: v1 leaked,
    # v2 replaced it and was revoked after its own overlap began, v3 retires behind v4.
    credential = Credential.objects.get(name="Orders sync")
    actor = Actor.for_user(admin_user)
    first = credential.versions.get(number=1)
    lifecycle.version_report_exposure(
        actor=actor, version=first, note="Pasted into a public issue tracker"
    )
    lifecycle.credential_rotate(actor=actor, credential=credential, overlap_seconds=0)
    lifecycle.credential_rotate(actor=actor, credential=credential, overlap_seconds=24 * 3600)
    lifecycle.version_revoke(
        actor=actor,
        version=credential.versions.get(number=2),
        reason=RevokeReason.OFFBOARDING,
        note="Old deploy pipeline switched off",
    )
    lifecycle.credential_rotate(actor=actor, credential=credential, overlap_seconds=24 * 3600)
    assert dict(credential.versions.values_list("number", "state")) == {
        1: State.REVOKED,
        2: State.REVOKED,
        3: State.RETIRING,
        4: State.ACTIVE,
    }

    page.goto(
        live_server.url + reverse("admin:credentials_credential_change", args=[credential.pk])
    )
    expect(page.locator(".kt-countdown")).to_have_text(re.compile(r"\d+ min \d\d s left"))
    shoot(page, ".kt-versions", "credential.png")


def test_the_readme_screenshots_show_two_steps_of_a_guided_rotation(
    login, live_server, security_user, app
):
    """The deploy step of an API-key rotation (step indicator, instructions, checklist, log)
    and the proof-of-possession step of a service-account rotation (challenge, commands)."""
    from tests.browser.test_browser_rotations import Keypair, start_rotation, walk_current_step

    page = login(security_user.username)
    page.set_viewport_size(VIEWPORT)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    actor = Actor.system("seed")
    key = lifecycle.credential_issue(actor=actor, app=app, kind=Kind.API_KEY,
                                     name="Orders sync", scopes=["orders:read"])  # fmt: skip
    page.goto(live_server.url + reverse("admin:credentials_credential_changelist"))
    page.click("#toggle-nav-sidebar")
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    start_rotation(page, live_server, key.credential)
    walk_current_step(page)  # plan
    walk_current_step(page)  # generate, shown once, then continue
    expect(page.locator(".kt-current-step")).to_contain_text("Deploy the new key")
    shoot(page, ".kt-current-step", "rotation-deploy.png")

    keypair = Keypair()
    account = lifecycle.credential_issue(
        actor=actor, app=app, kind=Kind.SERVICE_ACCOUNT_KEY, name="Billing service account",
        public_key_pem=Keypair().public_pem,
    )  # fmt: skip
    start_rotation(page, live_server, account.credential)
    walk_current_step(page, keypair=keypair)
    walk_current_step(page, keypair=keypair)
    expect(page.locator(".kt-challenge")).to_be_visible()
    shoot(page, ".kt-current-step", "rotation-possession.png")
