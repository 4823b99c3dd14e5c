"""Signing in with a second factor: a password alone reaches no admin page when it is required."""

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from credentials.models import AuditEvent, Credential, Kind
from tests.signin import enrol_authenticator, password_login, submit_code, totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def required(settings):
    settings.PORTAL_2FA_REQUIRED = True


def admin_pages(credential):
    """One of each kind of admin page, a show-once page among them."""
    return [
        reverse("admin:index"),
        reverse("admin:credentials_credential_changelist"),
        reverse("admin:credentials_credential_change", args=[credential.pk]),
        reverse("admin:credentials_credential_issue"),
        reverse("admin:credentials_credential_rotate", args=[credential.pk]),
        reverse("admin:credentials_auditevent_changelist"),
        reverse("admin:auth_user_changelist"),
        reverse("admin:password_change"),
        reverse("admin:axes_accessattempt_changelist"),
        "/admin/credentials/no-such-page/",
    ]


@pytest.mark.parametrize("enrolled", [True, False], ids=["enrolled", "not-enrolled"])
def test_a_password_alone_reaches_no_admin_page_when_two_factor_is_required(
    client, required, admin_user, issue, enrolled
):
    if enrolled:
        enrol_authenticator(admin_user)
    credential = issue(Kind.API_KEY).credential
    response = password_login(client, admin_user.username)
    assert response.status_code == 302
    step = reverse("admin:two_factor_verify" if enrolled else "admin:two_factor_enrol")
    for url in admin_pages(credential):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(step), url
    assert client.get(step).status_code == 200


def test_a_reveal_post_with_a_password_alone_mints_nothing(client, required, admin_user, app):
    enrol_authenticator(admin_user)
    password_login(client, admin_user.username)
    before = Credential.objects.count()
    response = client.post(
        reverse("admin:credentials_credential_issue"),
        {"app": app.pk, "kind": "api_key", "name": "sneaky", "overlap_hours": "1"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:two_factor_verify")  # no next for a POST
    assert Credential.objects.count() == before
    assert not AuditEvent.objects.filter(action="credential.issued", target_label="sneaky")


def test_a_current_code_opens_the_page_first_asked_for(client, required, security_user, issue):
    device = enrol_authenticator(security_user)
    credential = issue(Kind.API_KEY).credential
    wanted = reverse("admin:credentials_credential_change", args=[credential.pk])
    password_login(client, security_user.username)
    asked = client.get(wanted)
    assert asked["Location"] == reverse("admin:two_factor_verify") + "?next=" + wanted.replace(
        "/", "%2F"
    )

    response = submit_code(client, totp(device.bin_key), next_url=wanted)

    assert response.status_code == 302 and response["Location"] == wanted
    assert client.get(wanted).status_code == 200


def test_a_code_is_accepted_once_a_replay_in_the_same_step_fails(client, required, security_user):
    device = enrol_authenticator(security_user)
    code = totp(device.bin_key)
    password_login(client, security_user.username)
    assert submit_code(client, code).status_code == 302
    client.post(reverse("admin:logout"))

    password_login(client, security_user.username)
    response = submit_code(client, code)

    assert response.status_code == 200
    assert "not valid" in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("", id="empty"),
        pytest.param("12345", id="five-digits"),
        pytest.param("1234567", id="seven-digits"),
        pytest.param("abcdef", id="letters"),
        pytest.param("١٢٣٤٥٦", id="arabic-indic-digits"),
        pytest.param("1" * 500, id="very-long"),
        pytest.param("' OR 1=1 --", id="sql-ish"),
    ],
)
def test_malformed_codes_are_refused_and_the_session_stays_unverified(
    client, required, security_user, code
):
    enrol_authenticator(security_user)
    password_login(client, security_user.username)

    response = submit_code(client, code)

    assert response.status_code == 200
    assert client.get(reverse("admin:index"))["Location"].startswith(
        reverse("admin:two_factor_verify")
    )


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/admin/", "javascript:alert(1)"]
)
def test_a_next_leading_off_the_site_is_ignored(client, required, security_user, next_url):
    device = enrol_authenticator(security_user)
    password_login(client, security_user.username)

    response = submit_code(client, totp(device.bin_key), next_url=next_url)

    assert response["Location"] == reverse("admin:index")


def test_whoever_enrolled_is_asked_for_a_code_even_when_not_required(client, security_user):
    enrol_authenticator(security_user)  # PORTAL_2FA_REQUIRED is off (tests/conftest.py)
    password_login(client, security_user.username)

    assert client.get(reverse("admin:index"))["Location"].startswith(
        reverse("admin:two_factor_verify")
    )


def test_without_the_requirement_a_person_not_enrolled_signs_in_with_a_password(
    client, security_user
):
    password_login(client, security_user.username)

    assert client.get(reverse("admin:index")).status_code == 200


def test_the_api_is_not_behind_the_second_factor_gate(
    client, required, security_user, caller_key, issue
):
    # The API takes keys, never sessions: a half-signed-in browser changes nothing there.
    enrol_authenticator(security_user)
    password_login(client, security_user.username)
    token = issue(Kind.API_KEY).plaintext
    response = client.post(
        "/api/v1/introspect",
        urlencode({"token": token}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {caller_key}",
    )
    assert response.status_code == 200 and response.json()["active"] is True
