"""Each sign-in is in the audit trail once, when the session gets in: from where, and with
which second factor. A password that still owes a code, a wrong password and a wrong code
record no sign-in."""

import pytest
from django.conf import settings
from django.urls import reverse

from credentials.audit import Actor, verify_chain
from credentials.lifecycle import two_factor
from credentials.models import AuditEvent
from tests.signin import (
    PASSWORD,
    enrol_authenticator,
    password_login,
    secret_on,
    submit_code,
    totp,
)

pytestmark = pytest.mark.django_db


def sign_ins():
    return list(AuditEvent.objects.filter(action="user.signed_in").order_by("seq"))


@pytest.fixture
def required(settings):
    settings.PORTAL_2FA_REQUIRED = True


def test_a_password_alone_is_recorded_where_no_second_factor_is_owed(client, security_user):
    response = password_login(client, security_user.username, ip="192.0.2.7")
    assert response.status_code == 302
    (event,) = sign_ins()
    assert (event.target_type, event.target_id) == ("user", str(security_user.pk))
    assert (event.actor_type, event.actor_id) == ("user", str(security_user.pk))
    assert event.ip == "192.0.2.7"
    assert event.details == {"second_factor": None}
    assert verify_chain().ok


def test_a_wrong_password_records_no_sign_in(client, security_user):
    response = password_login(client, security_user.username, password="not the password")
    assert response.status_code == 200
    assert sign_ins() == []


def wrong_code(device) -> str:
    return "000000" if totp(device.bin_key) != "000000" else "111111"


def test_a_code_sign_in_is_recorded_once_the_code_is_accepted(client, required, security_user):
    device = enrol_authenticator(security_user)
    password_login(client, security_user.username)
    assert sign_ins() == []  # the password alone is not in yet
    submit_code(client, wrong_code(device))
    assert sign_ins() == []
    submit_code(client, totp(device.bin_key))
    (event,) = sign_ins()
    assert event.details == {"second_factor": "authenticator app"}
    client.get(reverse("admin:index"))
    assert len(sign_ins()) == 1  # using the session is not signing in again


def test_a_backup_code_sign_in_says_so(client, required, security_user):
    enrol_authenticator(security_user)
    code = two_factor.backup_codes_generate(actor=Actor.system("tests"), user=security_user)[0]
    password_login(client, security_user.username)
    submit_code(client, code)
    (event,) = sign_ins()
    assert event.details == {"second_factor": "backup code"}
    events = AuditEvent.objects.all()
    trail = " ".join(f"{e.details} {e.target_label} {e.actor_label}" for e in events)
    assert code not in trail and PASSWORD not in trail


def test_enrolling_at_a_required_first_sign_in_records_it(client, required, security_user):
    password_login(client, security_user.username)
    page = client.get(reverse("admin:two_factor_enrol"))
    key = secret_on(page)
    assert sign_ins() == []
    client.post(reverse("admin:two_factor_enrol"), {"code": totp(key)})
    (event,) = sign_ins()
    assert event.details == {"second_factor": "authenticator app"}


def test_enrolling_of_ones_own_accord_once_in_is_not_a_second_sign_in(client, security_user):
    password_login(client, security_user.username)
    page = client.get(reverse("admin:two_factor_enrol"))
    key = secret_on(page)
    client.post(reverse("admin:two_factor_enrol"), {"code": totp(key)})
    assert AuditEvent.objects.filter(action="user.two_factor_enrolled").count() == 1
    (event,) = sign_ins()
    assert event.details == {"second_factor": None}


def test_signing_in_after_signing_out_is_recorded_but_retyping_the_password_is_not(
    client, required, security_user
):
    device = enrol_authenticator(security_user)
    password_login(client, security_user.username)
    submit_code(client, totp(device.bin_key))
    password_login(client, security_user.username)  # again, in a session already in
    assert client.get(reverse("admin:index")).status_code == 200
    assert len(sign_ins()) == 1
    client.post(reverse("admin:logout"))
    password_login(client, security_user.username)
    assert len(sign_ins()) == 1
    submit_code(client, totp(device.bin_key, steps_ahead=1))  # the current one is used up
    assert [e.details["second_factor"] for e in sign_ins()] == ["authenticator app"] * 2


def test_enrolling_again_after_a_reset_mid_session_is_not_a_second_sign_in(
    client, required, security_user
):
    device = enrol_authenticator(security_user)
    password_login(client, security_user.username)
    submit_code(client, totp(device.bin_key))
    two_factor.two_factor_reset(actor=Actor.system("tests"), user=security_user)
    page = client.get(reverse("admin:two_factor_enrol"))  # where the session is sent now
    key = secret_on(page)
    client.post(reverse("admin:two_factor_enrol"), {"code": totp(key)})
    assert client.get(reverse("admin:index")).status_code == 200  # in again, with the new app
    assert len(sign_ins()) == 1


def test_a_sign_in_locked_out_at_the_code_is_not_recorded(client, required, security_user):
    device = enrol_authenticator(security_user)
    password_login(client, security_user.username)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        submit_code(client, wrong_code(device))
    assert AuditEvent.objects.filter(action="user.locked_out").count() == 1
    submit_code(client, totp(device.bin_key))
    assert sign_ins() == []
