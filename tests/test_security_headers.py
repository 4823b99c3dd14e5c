"""Every kind of page and API answer carries the whole set of security headers, with the
transport settings a deployment has (read from a production-configured process).

To cover a new page, add one line to PAGES: who is signed in, how the page is asked for.
"""

import re
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials import lifecycle
from credentials.models import Kind
from tests.deployment import PRODUCTION, fresh_keys, settings_of
from tests.introspection import FORM
from tests.management_api import management_key
from tests.signin import mark_verified
from tests.states import ACTOR, Clock

pytestmark = pytest.mark.django_db

DEPLOYED = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
]


@pytest.fixture(scope="module")
def deployed_transport():
    return settings_of(DEPLOYED, **PRODUCTION, **fresh_keys())


@pytest.fixture(autouse=True)
def _deployed(settings, deployed_transport):
    for name, value in deployed_transport.items():
        setattr(settings, name, value)


@pytest.fixture
def world(app, request):
    """One of everything the pages below show, and a key for each kind of API caller."""
    issued = lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.API_KEY, name="Orders")
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=issued.credential)
    return {
        "app": app,
        "credential": issued.credential,
        "rotation": rotation,
        "token": issued.plaintext,
        "caller": management_key("introspect").plaintext,
        "reader": management_key("credentials:read").plaintext,
        "security_user": request.getfixturevalue("security_user"),
    }


def _admin(name, *keys, method="get"):
    def ask(client, w):
        url = reverse(f"admin:{name}", args=[w[key].pk for key in keys])
        return getattr(client, method)(url, secure=True)

    return ask


def _issue_and_reveal(client, w):
    url = reverse("admin:credentials_credential_issue")
    form = client.get(url, secure=True).content.decode()
    once = re.search(r'name="once" value="([^"]+)"', form).group(1)
    data = {"once": once, "app": w["app"].pk, "kind": Kind.API_KEY, "name": "Revealed",
            "overlap_hours": "1"}  # fmt: skip
    return client.post(url, data, secure=True)


def _api(method, path, key=None, **fields):
    def call(client, w):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {w[key]}"} if key else {}
        if method == "post":
            body = urlencode({name: w[value] for name, value in fields.items()})
            return client.post(path, body, content_type=FORM, secure=True, **headers)
        return client.get(path, secure=True, **headers)

    return call


def _path(path):
    return lambda client, w: client.get(path, secure=True)


def _refused_form(client, w):
    # A form without its CSRF token, as a page opened before the last sign-in sends it.
    return Client(enforce_csrf_checks=True).post(reverse("admin:login"), {}, secure=True)


def _verify_step(client, w):
    # Signed in with the password, a second factor enrolled and not yet given.
    TOTPDevice.objects.create(user=w["security_user"], name="phone", confirmed=True)
    return client.get(reverse("admin:two_factor_verify"), secure=True)


def _new_backup_codes(client, w):
    device = TOTPDevice.objects.create(user=w["security_user"], name="phone", confirmed=True)
    mark_verified(client, device)
    return client.post(reverse("admin:two_factor_backup_codes"), secure=True)


def _locked_out(client, w):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        answer = client.post(reverse("admin:login"), {"username": "sec", "password": "x"},
                             secure=True)  # fmt: skip
    return answer


# page type: (role signed in, or None; how the page is asked for; the status it answers with)
PAGES = {
    "sign-in page": (None, _admin("login"), 200),
    "admin index": ("security", _admin("index"), 200),
    "admin changelist": ("security", _admin("credentials_credential_changelist"), 200),
    "admin change form": ("security", _admin("credentials_credential_change", "credential"), 200),
    "show-once page": ("security", _issue_and_reveal, 200),
    "timeline": ("auditor", _admin("credentials_credential_timeline", "credential"), 200),
    "rotation step page": ("security", _admin("credentials_rotation", "rotation"), 200),
    "audit CSV export": ("auditor", _admin("credentials_auditevent_export", method="post"), 200),
    "API introspection": (None, _api("post", "/api/v1/introspect", "caller", token="token"), 200),
    "API read": (None, _api("get", "/api/v1/credentials", "reader"), 200),
    "API error": (None, _api("get", "/api/v1/credentials"), 401),
    "API unknown path": (None, _api("get", "/api/v1/no-such-thing", "reader"), 404),
    "API docs page": (None, _path("/api/v1/docs"), 200),
    "404 page": ("security", _path("/no-such-page"), 404),
    "CSRF failure page": (None, _refused_form, 403),
    "two-factor enrolment (QR code)": ("security", _admin("two_factor_enrol"), 200),
    "two-factor verify step": ("security", _verify_step, 200),
    "new backup codes (shown once)": ("security", _new_backup_codes, 200),
    "lockout page": (None, _locked_out, 429),
    "re-authentication page": ("security", _admin("confirm_identity"), 200),
    "locked accounts list": ("admin", _admin("axes_accessattempt_changelist"), 200),
}


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


@pytest.mark.parametrize("page_type", PAGES)
def test_every_page_type_carries_the_security_headers(client, request, world, page_type):
    who, ask, status = PAGES[page_type]
    if who:
        client.force_login(request.getfixturevalue(f"{who}_user"))
    response = ask(client, world)
    assert response.status_code == status

    policy = _directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no nonce
    assert policy["style-src"] == ["'self'"]
    assert "Content-Security-Policy-Report-Only" not in response

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions
    assert "no-store" in response["Cache-Control"]
    for cookie in response.cookies.values():
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax", cookie


def test_signing_in_sets_secure_httponly_samesite_session_and_csrf_cookies(client, security_user):
    form = client.get(reverse("admin:login"), secure=True)
    response = client.post(
        reverse("admin:login"),
        {"username": "sec", "password": "correct horse battery staple"},
        secure=True,
    )
    assert response.status_code == 302
    cookies = {**form.cookies, **response.cookies}
    assert {"sessionid", "csrftoken"} <= set(cookies)
    for name in ("sessionid", "csrftoken"):
        cookie = cookies[name]
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax", name


def test_only_the_api_docs_page_allows_data_images():
    # Swagger UI draws its icons as data: images; nowhere else may a page load one.
    client = Client()
    docs = _directives(client.get("/api/v1/docs", secure=True)["Content-Security-Policy"])
    login = _directives(client.get(reverse("admin:login"), secure=True)["Content-Security-Policy"])
    assert docs["img-src"] == ["'self'", "data:"]
    assert login["img-src"] == ["'self'"]


def test_the_csrf_failure_page_is_ours_with_nothing_inline(client):
    response = _refused_form(client, {})
    body = response.content.decode()
    assert "Form refused" in body and "nothing was changed" in body
    assert "<style" not in body and "style=" not in body and "<script" not in body


def test_the_sign_out_message_travels_in_a_secure_httponly_samesite_cookie(
    client, security_user, monkeypatch
):
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    client.force_login(security_user)
    assert client.get(reverse("admin:index"), secure=True).status_code == 200
    clock.advance(minutes=31)
    response = client.get(reverse("admin:index"), secure=True)
    assert response.status_code == 302
    cookie = response.cookies["messages"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert response.cookies["sessionid"].value == ""  # the session cookie is deleted


def test_the_permissions_policy_leaves_only_clipboard_writing_to_the_portal(client):
    policy = client.get(reverse("admin:login"), secure=True)["Permissions-Policy"]
    features = dict(part.split("=", 1) for part in policy.split(", "))
    assert features.pop("clipboard-write") == "(self)"  # the show-once page's Copy button
    assert features and set(features.values()) == {"()"}


def test_a_plain_http_request_is_sent_to_https_before_anything_else(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 301
    assert response["Location"] == "https://testserver" + reverse("admin:login")


def test_static_files_stay_cacheable(client):
    # WhiteNoise answers above the headers middleware, from the files `make test` collected:
    # assets hold no secret, so they keep WhiteNoise's caching and get no no-store.
    response = client.get("/static/js/keyturn.js", secure=True)
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    assert "Permissions-Policy" not in response
