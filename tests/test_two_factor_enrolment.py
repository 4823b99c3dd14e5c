"""Setting up an authenticator: a QR code drawn on the server, confirmed only by a valid code."""

import re

import pytest
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials.audit import verify_chain
from credentials.models import AuditEvent, KeyturnTOTPDevice
from tests.signin import enrol_authenticator, password_login, secret_on, totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrolling(client, settings, security_user):
    """A security user signed in by password, required to enrol, on the enrolment page."""
    settings.PORTAL_2FA_REQUIRED = True
    password_login(client, security_user.username)
    return client


def test_the_page_shows_an_inline_svg_qr_code_and_the_secret_as_base32(enrolling, security_user):
    page = enrolling.get(reverse("admin:two_factor_enrol"))
    html = page.content.decode()

    device = KeyturnTOTPDevice.objects.get(user=security_user)
    assert not device.confirmed
    assert secret_on(page) == device.bin_key
    assert '<svg width="' in html and 'class="kt-qr"' in html
    assert "<img" not in html.split('id="content-main"')[1]
    # Nothing the coming Content-Security-Policy would block: no inline style or script.
    assert " style=" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert "no-store" in page["Cache-Control"]


def test_a_reload_shows_the_same_secret_until_it_is_confirmed(enrolling):
    first = secret_on(enrolling.get(reverse("admin:two_factor_enrol")))
    again = secret_on(enrolling.get(reverse("admin:two_factor_enrol")))
    assert first == again
    assert TOTPDevice.objects.count() == 1


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("wrong-step", id="code-from-another-time"),
        pytest.param("000000", id="six-zeros"),
        pytest.param("", id="empty"),
        pytest.param("12 34", id="too-short"),
        pytest.param("abcdef", id="letters"),
    ],
)
def test_a_wrong_code_confirms_nothing(enrolling, security_user, code):
    key = secret_on(enrolling.get(reverse("admin:two_factor_enrol")))
    if code == "wrong-step":
        code = totp(key, steps_ahead=-10)

    response = enrolling.post(reverse("admin:two_factor_enrol"), {"code": code})

    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=security_user, confirmed=True).exists()
    assert not StaticToken.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="user.").exists()
    # Still not through: the index sends the session back to the enrolment page.
    assert enrolling.get(reverse("admin:index"))["Location"].startswith(
        reverse("admin:two_factor_enrol")
    )


def test_a_current_code_turns_it_on_shows_backup_codes_once_and_verifies_the_session(
    enrolling, security_user
):
    key = secret_on(enrolling.get(reverse("admin:two_factor_enrol")))

    response = enrolling.post(reverse("admin:two_factor_enrol"), {"code": totp(key)})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    codes = re.findall(
        r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", response.content.decode()
    )
    assert len(codes) == 10
    assert TOTPDevice.objects.get(user=security_user).confirmed
    assert StaticToken.objects.filter(device__user=security_user).count() == 10
    actions = list(
        AuditEvent.objects.filter(target_id=str(security_user.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    # Enrolling was what this required sign-in owed: it is in once the code is accepted.
    assert actions == ["user.two_factor_enrolled", "user.backup_codes_generated", "user.signed_in"]
    assert verify_chain().ok
    assert enrolling.get(reverse("admin:index")).status_code == 200
    # Afterwards the page shows only how many codes are left, never the codes.
    status = enrolling.get(reverse("admin:two_factor_enrol")).content.decode()
    assert 'id="kt-backup-codes-left">10<' in status
    assert not any(code in status for code in codes)


def test_an_enrolled_user_with_a_password_alone_cannot_reach_the_enrolment_page(
    client, settings, security_user
):
    # Otherwise a stolen password could add the thief's own authenticator.
    settings.PORTAL_2FA_REQUIRED = True
    enrol_authenticator(security_user)
    password_login(client, security_user.username)

    response = client.get(reverse("admin:two_factor_enrol"))

    assert response["Location"].startswith(reverse("admin:two_factor_verify"))
    response = client.post(reverse("admin:two_factor_backup_codes"))
    assert response["Location"].startswith(reverse("admin:two_factor_verify"))
    assert TOTPDevice.objects.filter(user=security_user).count() == 1
    assert not StaticToken.objects.exists()


def test_enrolment_is_reachable_from_the_user_menu(client, security_user):
    client.force_login(security_user)
    index = client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("admin:two_factor_enrol")}"' in index.split('id="user-tools"')[1]


def test_someone_signed_out_is_sent_to_the_login_page(client):
    for name in ("two_factor_enrol", "two_factor_verify"):
        response = client.get(reverse(f"admin:{name}"))
        assert response["Location"].startswith(reverse("admin:login"))
