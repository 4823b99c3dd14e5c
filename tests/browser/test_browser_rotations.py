"""Guided rotations in a real browser, as the demo security user would walk them: every
playbook end to end, a reload of the generate step, the back button after a revoke, a second
person joining, abandoning halfway, the revoke warning, a failing then passing test event and
a wrong then right signed challenge."""

import base64
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from credentials.models import AuditEvent, CredentialVersion, Kind, Rotation, State
from tests.browser.conftest import ROLE_PASSWORD, TIMEOUT_MS
from tests.receiver import Receiver

REJECTED_409 = "Failed to load resource: the server responded with a status of 409 (Conflict)"


def url(live_server, name, *args):
    return live_server.url + reverse(f"admin:{name}", args=args)


def start_rotation(page, live_server, credential):
    page.goto(url(live_server, "credentials_credential_change", credential.pk))
    page.get_by_role("link", name="Guided rotation").click()
    page.get_by_role("button", name="Start the guided rotation").click()
    expect(page.locator(".kt-step-current")).to_contain_text("1")
    return Rotation.objects.get(credential=credential, state="in_progress")


def current(page):
    return page.locator(".kt-current-step")


def tick_all(page):
    for box in page.locator(".kt-checklist input[type=checkbox]").all():
        box.check()


def submit(page):
    page.locator(".kt-step-form [type=submit]").click()


class Keypair:
    """The person's new service-account key: made and used on their side, never sent."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public_pem = (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, text):
        from cryptography.hazmat.primitives import hashes

        return base64.b64encode(
            self.private.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
        ).decode()


def walk_current_step(page, *, keypair=None):
    """Do what the current step's page asks, the way a person following it would."""
    kind = current(page).get_attribute("data-step-kind")
    key = current(page).get_attribute("data-step-key")
    if kind == "confirm":
        if page.locator("#id_overlap_hours").count():
            page.fill("#id_overlap_hours", "1")
        tick_all(page)
        submit(page)
    elif kind == "generate":
        if page.locator("#id_public_key").count():
            page.fill("#id_public_key", keypair.public_pem)
        submit(page)
        expect(page.locator(".kt-once")).to_be_visible()
        page.get_by_role("link", name=re.compile("continue", re.I)).click()
    elif key == "possession":
        challenge = page.locator(".kt-challenge").inner_text()
        page.fill("#id_signature", keypair.sign(challenge))
        submit(page)
    elif page.locator("input[name=anyway]").count():
        page.check("input[name=anyway]")
        submit(page)
    else:
        submit(page)
    page.locator(".kt-rotation").wait_for()


def walk_to_end(page, rotation, **kwargs):
    for _ in range(12):
        rotation.refresh_from_db()
        if not rotation.in_progress:
            return
        walk_current_step(page, **kwargs)
    raise AssertionError("the rotation did not finish")


@pytest.fixture
def private_targets(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the test's receiver is on 127.0.0.1


def test_an_api_key_rotation_end_to_end_with_reload_of_the_secret_and_back_after_revoke(
    login, live_server, security_user, issue, console_errors
):
    old = issue(Kind.API_KEY, name="Orders export").version
    page = login(security_user.username)
    rotation = start_rotation(page, live_server, old.credential)
    expect(current(page)).to_contain_text("Plan the rotation")
    expect(page.locator(".kt-step-todo")).to_have_count(4)

    walk_current_step(page)  # the plan: overlap 1 hour
    expect(current(page)).to_contain_text("Make the new key")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        submit(page)
    assert "no-store" in posted.value.headers["cache-control"]
    secret = page.input_value("#kt-secret")
    new = CredentialVersion.objects.get(credential=old.credential, number=2)
    assert secret.startswith("ktak_") and secret.endswith(new.last_four)

    # A reload re-sends the POST (headless Chromium does not ask): it was claimed already.
    with page.expect_response(lambda r: r.request.method == "POST") as resent:
        page.reload()
    assert resent.value.status == 409
    expect(page.locator(".errornote")).to_contain_text("already displayed")
    expect(page.locator("#content-main")).to_contain_text(new.masked)
    assert secret not in page.content()
    assert old.credential.versions.count() == 2

    page.goto(url(live_server, "credentials_rotation", rotation.pk))
    expect(page.locator(".kt-old-fate")).to_contain_text("keeps working until")
    walk_current_step(page)  # deploy
    expect(current(page)).to_contain_text("Check that traffic moved")
    verdict = page.locator(".kt-activity-verdict")
    expect(verdict).to_have_attribute("data-passed", "no")
    # The new key starts being used: the panel notices on its own, without a reload.
    CredentialVersion.objects.filter(pk=new.pk).update(last_used_at=timezone.now(), use_count=5)
    expect(verdict).to_have_attribute("data-passed", "yes", timeout=TIMEOUT_MS)
    expect(page.locator(".kt-activity-new")).to_contain_text(re.compile(r"\(5.\)"))
    submit(page)

    expect(current(page)).to_contain_text("Revoke the old key")
    page.get_by_role("button", name=f"Revoke {old.masked}").click()
    expect(page.locator(".kt-finished")).to_contain_text("completed")
    expect(page.locator(".kt-step-done")).to_have_count(5)
    old.refresh_from_db()
    assert old.state == State.REVOKED

    # Back after the revoke: the earlier page comes back as it is now, with nothing to resend.
    page.go_back()
    expect(page.locator(".kt-finished")).to_contain_text("completed")
    expect(page.locator(".kt-step-form")).to_have_count(0)
    revokes = AuditEvent.objects.filter(
        action="credential.revoked", credential_id=old.credential_id
    )
    assert revokes.count() == 1
    assert console_errors == [REJECTED_409]


def test_a_client_secret_rotation_walks_every_step(login, live_server, security_user, issue):
    old = issue(Kind.CLIENT_SECRET).version
    page = login(security_user.username)
    rotation = start_rotation(page, live_server, old.credential)
    titles = page.locator(".kt-step").all_inner_texts()
    assert any("Accept webhooks signed with either secret" in t for t in titles)
    walk_to_end(page, rotation)
    old.refresh_from_db()
    assert old.state == State.REVOKED
    expect(page.locator(".kt-finished")).to_contain_text("completed")


def test_an_endpoint_secret_rotation_fails_then_passes_its_test_event(
    login, live_server, security_user, issue, private_targets
):
    page = login(security_user.username)
    with Receiver(script=[500, 200]) as receiver:
        credential = issue(Kind.ENDPOINT_SECRET, url=receiver.url).credential
        rotation = start_rotation(page, live_server, credential)
        walk_current_step(page)  # agree with the receiver, overlap 1 hour
        walk_current_step(page)  # rotate: the secret is shown once
        expect(current(page)).to_contain_text("Send a test event")
        submit(page)
        expect(page.locator(".kt-receipt-outcome")).to_contain_text("Failed")
        expect(page.locator(".kt-receipt")).to_contain_text("500")
        expect(current(page)).to_contain_text("Send a test event")
        submit(page)
        expect(page.locator(".kt-receipt-outcome")).to_contain_text("Passed")
        expect(page.locator(".kt-receipt")).to_contain_text("1, 2")  # both versions signed
        walk_to_end(page, rotation)
    assert len(receiver.requests) == 2
    rotation.refresh_from_db()
    assert rotation.state == Rotation.Status.COMPLETED
    expect(page.locator("#kt-rotation-log")).to_contain_text("authentication passed")


def test_a_service_account_rotation_refuses_a_wrong_signature_then_accepts_the_right_one(
    login, live_server, security_user, issue
):
    old = issue(Kind.SERVICE_ACCOUNT_KEY).version
    keypair = Keypair()
    page = login(security_user.username)
    rotation = start_rotation(page, live_server, old.credential)
    walk_current_step(page, keypair=keypair)  # plan
    expect(current(page)).to_contain_text("openssl genpkey")
    walk_current_step(page, keypair=keypair)  # register the public key
    expect(current(page)).to_contain_text("Prove you hold the private key")
    challenge = page.locator(".kt-challenge").inner_text()
    expect(page.locator(".kt-sign-commands")).to_contain_text(challenge)
    page.fill("#id_signature", keypair.sign(challenge + "\n"))  # signed what `echo` writes
    submit(page)
    expect(page.locator(".kt-check-failed")).to_contain_text("line break")
    expect(page.locator(".kt-challenge")).to_have_text(challenge)
    page.fill("#id_signature", keypair.sign(challenge))
    submit(page)
    expect(current(page)).to_contain_text("Deploy the new key and check its use")
    walk_to_end(page, rotation, keypair=keypair)
    old.refresh_from_db()
    assert old.state == State.REVOKED


def _second_person(browser, live_server, user):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    other = context.new_page()
    other.goto(live_server.url + reverse("admin:login"))
    other.fill("#id_username", user.username)
    other.fill("#id_password", ROLE_PASSWORD)
    other.click("#login-form [type=submit]")
    other.locator("#user-tools").wait_for()
    return context, other


def test_a_second_person_joins_the_same_rotation_and_their_stale_tab_changes_nothing(
    browser, login, live_server, security_user, admin_user, issue
):
    credential = issue(Kind.API_KEY).credential
    page = login(security_user.username)
    rotation = start_rotation(page, live_server, credential)
    context, other = _second_person(browser, live_server, admin_user)
    try:
        other.goto(url(live_server, "credentials_credential_change", credential.pk))
        other.get_by_role("link", name="Continue the rotation").click()
        assert other.url == url(live_server, "credentials_rotation", rotation.pk)
        expect(other.locator(".kt-step-current")).to_contain_text("Plan the rotation")

        walk_current_step(page)  # the first person finishes the plan meanwhile
        if other.locator("#id_overlap_hours").count():
            other.fill("#id_overlap_hours", "5")
        tick_all(other)
        submit(other)  # the second person's tab still shows the plan
        expect(other.locator(".kt-step-error")).to_contain_text("not the current one")
        expect(other.locator(".kt-step-current")).to_contain_text("Make the new key")
    finally:
        context.close()
    rotation.refresh_from_db()
    assert rotation.overlap_seconds == 3600 and rotation.step == 1
    joined = [entry["by"] for entry in rotation.log if entry["outcome"] == "joined"]
    assert joined == [admin_user.username]
    assert AuditEvent.objects.filter(action="rotation.resumed", actor_label=admin_user.username)


def test_abandoning_halfway_says_what_happens_and_puts_the_old_key_back(
    login, live_server, security_user, issue
):
    old = issue(Kind.API_KEY).version
    page = login(security_user.username)
    rotation = start_rotation(page, live_server, old.credential)
    walk_current_step(page)
    walk_current_step(page)  # the new key is made and shown
    page.get_by_role("link", name="Abandon this rotation…").click()
    consequences = page.locator(".kt-consequences")
    expect(consequences).to_contain_text("is revoked")
    expect(consequences).to_contain_text("becomes active again")
    page.check("input[name=confirm]")
    page.get_by_role("button", name="Abandon the rotation").click()
    expect(page.locator(".kt-finished")).to_contain_text("abandoned")
    old.refresh_from_db()
    rotation.refresh_from_db()
    assert old.state == State.ACTIVE and rotation.new_version.state == State.REVOKED
    page.goto(url(live_server, "credentials_credential_change", old.credential_id))
    expect(page.get_by_role("link", name="Guided rotation")).to_be_visible()


def test_the_revoke_step_warns_while_the_old_key_is_in_use_and_needs_a_second_yes(
    login, live_server, security_user, issue, console_errors
):
    old = issue(Kind.API_KEY).version
    page = login(security_user.username)
    rotation = start_rotation(page, live_server, old.credential)
    for _ in range(4):
        walk_current_step(page)
    expect(current(page)).to_contain_text("Revoke the old key")
    CredentialVersion.objects.filter(pk=old.pk).update(last_used_at=timezone.now())
    page.get_by_role("button", name=f"Revoke {old.masked}").click()
    expect(page.locator(".kt-step-error")).to_contain_text("within the last 15 minutes")
    old.refresh_from_db()
    assert old.state == State.RETIRING
    page.get_by_label(re.compile("Revoke it anyway")).check()
    page.get_by_role("button", name=f"Revoke {old.masked}").click()
    expect(page.locator(".kt-finished")).to_contain_text("completed")
    old.refresh_from_db()
    rotation.refresh_from_db()
    assert old.state == State.REVOKED
    assert "revoked anyway, on purpose" in str(rotation.log)
    assert console_errors == [REJECTED_409]
