"""Show once: a new secret appears in exactly one HTTP response, and a re-sent form never
mints a second one."""

import logging
import re
import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse

from credentials import once
from credentials.models import AuditEvent, Credential, CredentialVersion, Kind, State
from credentials.verification import verify_bearer
from tests.conftest import new_public_key_pem

pytestmark = pytest.mark.django_db

SECRET_INPUT = re.compile(r'id="kt-secret" class="kt-secret" type="text" value="([^"]+)"')


def _token(response) -> str:
    return re.search(r'name="once" value="([^"]+)"', response.content.decode()).group(1)


def _secret(response) -> str:
    return SECRET_INPUT.search(response.content.decode()).group(1)


def _rotate_url(credential):
    return reverse("admin:credentials_credential_rotate", args=[credential.pk])


ISSUE_URL = "admin:credentials_credential_issue"


@pytest.fixture
def staff(client, security_user):
    client.force_login(security_user)
    return client


@pytest.mark.parametrize(
    ("kind", "prefix"), [(Kind.API_KEY, "ktak_"), (Kind.CLIENT_SECRET, "ktcs_")]
)
def test_issuing_shows_the_secret_in_the_post_response_with_no_store(staff, app, kind, prefix):
    page = staff.get(reverse(ISSUE_URL))
    response = staff.post(
        reverse(ISSUE_URL),
        {"once": _token(page), "app": app.pk, "kind": kind, "name": "Deploy bot",
         "scopes": ["orders:read"], "overlap_hours": "24"},
    )  # fmt: skip
    assert response.status_code == 200
    secret = _secret(response)
    assert secret.startswith(prefix)
    assert "no-store" in response["Cache-Control"]
    assert verify_bearer(secret).scopes == ("orders:read",)
    reveal = AuditEvent.objects.get(action="credential.revealed")
    assert reveal.details["channel"] == "portal" and reveal.actor_label == "sec"


def test_resending_the_issue_form_shows_already_displayed_and_mints_nothing(staff, app):
    page = staff.get(reverse(ISSUE_URL))
    form = {"once": _token(page), "app": app.pk, "kind": Kind.API_KEY, "name": "x",
            "overlap_hours": "1"}  # fmt: skip
    secret = _secret(staff.post(reverse(ISSUE_URL), form))
    again = staff.post(reverse(ISSUE_URL), form)
    assert again.status_code == 409
    body = again.content.decode()
    assert "already displayed" in body and f"••••{secret[-4:]}" in body
    assert secret not in body
    assert Credential.objects.count() == 1 and CredentialVersion.objects.count() == 1


def test_rotate_now_shows_the_new_secret_once_and_a_reload_only_its_last_four(staff, issue):
    old = issue(Kind.API_KEY)
    url = _rotate_url(old.credential)
    form = {"once": _token(staff.get(url)), "overlap_hours": "2"}
    first = staff.post(url, form)
    secret = _secret(first)
    assert verify_bearer(secret).state == State.ACTIVE
    assert verify_bearer(old.plaintext).state == State.RETIRING
    reload = staff.post(url, form)
    assert reload.status_code == 409 and secret not in reload.content.decode()
    assert f"••••{secret[-4:]}" in reload.content.decode()
    assert old.credential.versions.count() == 2


def test_a_second_tab_on_the_rotate_page_warns_about_the_rotation_just_made(staff, issue):
    old = issue(Kind.API_KEY)
    url = _rotate_url(old.credential)
    secret = _secret(staff.post(url, {"once": _token(staff.get(url)), "overlap_hours": "1"}))
    second_tab = staff.get(url).content.decode()
    assert secret not in second_tab
    assert f"Version 2 (<code>••••{secret[-4:]}</code>) was made" in second_tab


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "from-another-user", "for-another-credential"],
)
def test_a_stale_or_foreign_token_changes_nothing_and_explains(staff, issue, admin_user, token):
    credential = issue(Kind.API_KEY).credential
    if token == "from-another-user":
        token = once.new_token(
            user=admin_user, purpose="rotate", target=f"credential:{credential.pk}"
        )
    elif token == "for-another-credential":
        other = issue(Kind.API_KEY).credential
        token = _token(staff.get(_rotate_url(other)))
    response = staff.post(_rotate_url(credential), {"once": token, "overlap_hours": "1"})
    assert credential.versions.count() == 1
    body = response.content.decode()
    assert "This form is out of date" in body and not SECRET_INPUT.search(body)


def test_a_refused_rotation_keeps_the_form_usable_and_mints_nothing(staff, issue):
    credential = issue(Kind.SERVICE_ACCOUNT_KEY).credential
    url = _rotate_url(credential)
    private_pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBbq\n-----END PRIVATE KEY-----"
    response = staff.post(url, {"once": _token(staff.get(url)), "overlap_hours": "1",
                                "public_key": private_pem})  # fmt: skip
    body = response.content.decode()
    assert "This is a private key" in body
    assert "MC4CAQAwBQYDK2VwBCIEIBbq" not in body  # the pasted private key is not echoed back
    assert credential.versions.count() == 1
    retry = staff.post(url, {"once": _token(response), "overlap_hours": "1",
                             "public_key": new_public_key_pem()})  # fmt: skip
    assert retry.status_code == 200 and "The public key is registered as version 2" in (
        retry.content.decode()
    )


def test_adding_an_endpoint_shows_its_signing_secret_once(staff, app):
    url = reverse("admin:credentials_endpoint_add")
    form = {"once": _token(staff.get(url)), "app": app.pk, "url": "https://hooks.example.com/k",
            "event_types": ["credential.rotated"]}  # fmt: skip
    secret = _secret(staff.post(url, form))
    assert secret.startswith("whsec_")
    assert staff.post(url, form).status_code == 409
    assert Credential.objects.filter(kind=Kind.ENDPOINT_SECRET).count() == 1


def test_the_secret_is_in_exactly_one_response_and_no_log_message_or_session(
    staff, issue, caplog, auditor_user
):
    caplog.set_level(logging.DEBUG)
    old = issue(Kind.API_KEY)
    credential = old.credential
    url = _rotate_url(credential)
    form = {"once": _token(staff.get(url)), "overlap_hours": "1"}
    responses = [staff.post(url, form)]
    secret = _secret(responses[0])
    version = credential.versions.get(number=2)
    for page in [
        reverse("admin:index"),
        reverse("admin:credentials_credential_changelist") + f"?q={secret[-4:]}",
        reverse("admin:credentials_credential_change", args=[credential.pk]),
        reverse("admin:credentials_credential_timeline", args=[credential.pk]),
        reverse("admin:credentials_credentialversion_changelist"),
        reverse("admin:credentials_credentialversion_revoke", args=[version.pk]),
        reverse("admin:credentials_auditevent_changelist"),
        url,
    ]:
        responses.append(staff.get(page))
    auditor = Client()
    auditor.force_login(auditor_user)
    export = auditor.post(reverse("admin:credentials_auditevent_export"))
    assert secret not in b"".join(export.streaming_content).decode()  # nor the audit trail
    responses.append(staff.post(url, form))  # the reload
    responses.append(
        staff.post(
            reverse("admin:credentials_credentialversion_revoke", args=[version.pk]),
            {"reason": "routine"},
            follow=True,
        )
    )
    showing = [r for r in responses if secret in r.content.decode()]
    assert showing == [responses[0]]
    assert secret not in caplog.text
    assert all(secret not in str(m) for r in responses for m in get_messages(r.wsgi_request))
    session = staff.session
    assert secret not in str(dict(session.items()))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submissions_of_one_form_mint_one_secret(client, security_user, app):
    from credentials import lifecycle
    from credentials.audit import Actor

    credential = lifecycle.credential_issue(
        actor=Actor.system("tests"), app=app, kind=Kind.API_KEY, name="raced"
    ).credential
    client.force_login(security_user)
    url = _rotate_url(credential)
    form = {"once": _token(client.get(url)), "overlap_hours": "1"}
    statuses, barrier = [], threading.Barrier(4)

    def submit():
        from django.test import Client

        browser = Client()
        browser.force_login(security_user)
        barrier.wait()
        statuses.append(browser.post(url, form).status_code)
        connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 409, 409, 409]
    assert credential.versions.count() == 2
