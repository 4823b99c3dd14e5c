"""The confirm-identity page: who may pass, where it sends them, and what it never keeps."""

import logging
import time

import pytest
from django.contrib.auth.signals import user_logged_out, user_login_failed
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials import sudo
from credentials.audit import Actor
from credentials.lifecycle import two_factor
from credentials.models import AuditEvent
from credentials.views.confirm_identity import confirm_identity_view
from tests.signin import enrol_authenticator

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
CONFIRM = "admin:confirm_identity"
HOME = "/admin/"
SAFE_NEXT = "/admin/credentials/credentialversion/?state=active"


@pytest.fixture
def staff(client, security_user):
    client.force_login(security_user)
    session = client.session
    del session[sudo.SESSION_KEY]
    session.save()
    return client


@pytest.fixture
def failures():
    """Every user_login_failed sent while the test runs: (credentials, request)."""
    seen = []

    def record(sender, credentials, request=None, **kwargs):
        seen.append((credentials, request))

    user_login_failed.connect(record)
    yield seen
    user_login_failed.disconnect(record)


def _post(client, password=PASSWORD, next_url=SAFE_NEXT, **extra):
    return client.post(reverse(CONFIRM), {"password": password, "next": next_url, **extra})


def _fresh(client) -> bool:
    started = client.session.get(sudo.SESSION_KEY)
    return started is not None and time.time() - started <= 600


def _totp_device(user, client) -> TOTPDevice:
    """A confirmed authenticator, and ``client``'s session verified with it at sign-in (the
    window itself stays closed, as the ``staff`` fixture left it)."""
    device = enrol_authenticator(user, name="phone")
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return device


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_the_right_password_opens_the_window_and_goes_back_to_next(staff, security_user):
    response = _post(staff)
    assert (response.status_code, response["Location"]) == (302, SAFE_NEXT)
    assert _fresh(staff)
    event = AuditEvent.objects.get(action="user.reauthenticated")
    assert event.target_id == str(security_user.pk) and event.details == {"second_factor": False}


def test_the_page_looks_like_the_admin_and_asks_only_for_the_password(staff):
    page = staff.get(reverse(CONFIRM), {"next": SAFE_NEXT})
    body = page.content.decode()
    assert page.status_code == 200 and 'id="site-name"' in body and "Log out" in body
    assert 'name="password"' in body and 'name="otp_token"' not in body
    assert f'name="next" value="{SAFE_NEXT.replace("&", "&amp;")}"' in body
    assert "no-store" in page["Cache-Control"]


@pytest.mark.parametrize("password", ["wrong horse battery staple", "CORRECT HORSE BATTERY STAPLE"])
def test_a_wrong_password_opens_nothing_and_counts_as_a_failed_sign_in(
    staff, security_user, failures, password
):
    response = _post(staff, password=password)
    assert response.status_code == 400
    assert "not right" in response.content.decode()
    assert password not in response.content.decode()
    assert not _fresh(staff)
    assert len(failures) == 1
    credentials, request = failures[0]
    assert credentials["username"] == security_user.username and request is not None
    assert password not in str(credentials)  # Django masks it before the signal goes out
    assert not AuditEvent.objects.filter(action="user.reauthenticated").exists()


def test_an_empty_password_is_a_form_error_not_a_guess(staff, failures):
    response = _post(staff, password="")
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not _fresh(staff) and failures == []


def test_an_inactive_person_cannot_confirm(staff, security_user, failures):
    # Deactivated after signing in: the session may linger until the next request, not the window.
    type(security_user).objects.filter(pk=security_user.pk).update(is_active=False)
    response = _post(staff)
    assert response.status_code in (302, 400)
    assert not _fresh(staff)


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse(CONFIRM), {"next": SAFE_NEXT})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


# --------------------------------------------------------------------------- second factor


def test_with_a_confirmed_device_the_code_is_asked_for_and_required(staff, security_user, failures):
    _totp_device(security_user, staff)
    assert 'name="otp_token"' in staff.get(reverse(CONFIRM)).content.decode()
    response = _post(staff)  # the password alone
    assert response.status_code == 400 and not _fresh(staff)


def test_a_wrong_code_is_refused_and_counts_as_a_failed_sign_in(staff, security_user, failures):
    device = _totp_device(security_user, staff)
    wrong = f"{(int(_code(device)) + 1) % 1_000_000:06d}"
    response = _post(staff, otp_token=wrong)
    assert response.status_code == 400 and not _fresh(staff)
    assert [c["username"] for c, _ in failures] == [security_user.username]
    assert wrong not in response.content.decode()


def test_the_right_code_with_a_wrong_password_is_refused(staff, security_user, failures):
    device = _totp_device(security_user, staff)
    response = _post(staff, password="nope", otp_token=_code(device))
    assert response.status_code == 400 and not _fresh(staff) and len(failures) == 1


def test_the_right_password_and_code_open_the_window_and_the_code_cannot_be_replayed(
    staff, security_user, failures
):
    device = _totp_device(security_user, staff)
    code = _code(device)
    assert _post(staff, otp_token=code)["Location"] == SAFE_NEXT
    assert _fresh(staff)
    assert AuditEvent.objects.get(action="user.reauthenticated").details == {"second_factor": True}
    session = staff.session
    del session[sudo.SESSION_KEY]
    session.save()
    assert _post(staff, otp_token=code).status_code == 400  # the same code a second time
    assert not _fresh(staff)


def test_an_unconfirmed_device_is_not_a_second_factor(staff, security_user):
    TOTPDevice.objects.create(user=security_user, name="half set up", confirmed=False)
    assert _post(staff)["Location"] == SAFE_NEXT


def test_a_backup_code_works_once(staff, security_user):
    _totp_device(security_user, staff)
    code = two_factor.backup_codes_generate(actor=Actor.system("tests"), user=security_user)[0]
    assert _post(staff, otp_token=code)["Location"] == SAFE_NEXT
    session = staff.session
    del session[sudo.SESSION_KEY]
    session.save()
    assert _post(staff, otp_token=code).status_code == 400


# --------------------------------------------------------------------------- where it goes


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/\\evil.example/admin/",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        " https://evil.example",
        "https://testserver.evil.example/",
        "ftp://testserver/admin/",
        "",
        "/admin/confirm-identity/?next=https://evil.example/",
    ],
)
def test_next_may_only_be_a_page_of_this_site(staff, next_url):
    page = staff.get(reverse(CONFIRM), {"next": next_url}).content.decode()
    assert "evil.example" not in page and "javascript:" not in page
    response = _post(staff, next_url=next_url)
    assert (response.status_code, response["Location"]) == (302, HOME)


def test_next_on_this_site_keeps_its_query(staff):
    assert _post(staff, next_url=SAFE_NEXT)["Location"] == SAFE_NEXT


# --------------------------------------------------------------------------- what it keeps


def test_the_password_and_code_never_reach_the_session_messages_or_logs(
    staff, security_user, caplog
):
    device = _totp_device(security_user, staff)
    secret_password = "correct horse battery staple"
    wrong_password = "a very particular wrong passphrase"
    code = _code(device)
    caplog.set_level(logging.DEBUG)
    _post(staff, password=wrong_password, otp_token=code)
    _post(staff, password=secret_password, otp_token="000000")
    # wait out the throttle the two failures set before the right code is accepted
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0,
                                                    throttling_failure_timestamp=None)  # fmt: skip
    assert _post(staff, password=secret_password, otp_token=code).status_code == 302
    kept = " ".join(
        [
            str(dict(staff.session.items())),
            " ".join(str(m) for m in get_messages(_request_with(staff))),
            caplog.text,
            " ".join(str(e.details) + e.target_label for e in AuditEvent.objects.all()),
        ]
    )
    for typed in (secret_password, wrong_password, code):
        assert typed not in kept
    assert set(staff.session.keys()) & {"password", "otp_token"} == set()


def _request_with(client):
    """A request carrying the client's session, to read the messages waiting in it."""
    request = RequestFactory().get("/")
    request.session = client.session
    request._messages = FallbackStorage(request)
    return request


def test_the_confirm_view_hides_what_was_typed_from_error_reports(rf, security_user):
    request = rf.post("/", {"password": PASSWORD, "otp_token": "123456", "next": "/admin/"})
    request.user = security_user
    request.sensitive_post_parameters = None
    request.session = {}
    request._messages = FallbackStorage(request)
    confirm_identity_view(request)
    cleaned = SafeExceptionReporterFilter().get_post_parameters(request)
    assert cleaned["password"] != PASSWORD and cleaned["otp_token"] != "123456"


# --------------------------------------------------------------------------- sign-in and out


def test_signing_in_with_the_form_opens_the_window(client, security_user):
    response = client.post(
        reverse("admin:login"), {"username": security_user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert _fresh(client)


def test_signing_in_without_the_code_of_a_confirmed_device_opens_no_window(client, security_user):
    TOTPDevice.objects.create(user=security_user, name="phone", confirmed=True)
    client.force_login(security_user)  # a sign-in that verified no device
    assert sudo.SESSION_KEY not in client.session


def test_signing_out_closes_the_window(client, security_user):
    client.force_login(security_user)
    session = client.session
    session[sudo.PENDING_ACTION_KEY] = {"model": "x", "action": "y", "pks": []}
    session.save()
    assert _fresh(client)
    client.post(reverse("admin:logout"))
    assert sudo.SESSION_KEY not in client.session
    assert sudo.PENDING_ACTION_KEY not in client.session


def test_signing_out_clears_the_window_even_when_the_session_is_kept(rf, security_user):
    request = rf.get("/")
    request.session = {sudo.SESSION_KEY: int(time.time()), sudo.PENDING_ACTION_KEY: {}}
    user_logged_out.send(sender=type(security_user), request=request, user=security_user)
    assert request.session == {}
