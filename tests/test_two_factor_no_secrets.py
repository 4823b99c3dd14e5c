"""TOTP seeds and backup codes never reach the audit trail, logs, sessions, messages, lockout
records or admin pages: only the enrolment page (the seed) and the one page that shows new
codes ever carry them."""

import base64
import logging
import re

import pytest
from axes.models import AccessAttempt
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials.models import AuditEvent, KeyturnTOTPDevice
from tests.signin import key_from_base32, password_login, submit_code, totp

pytestmark = pytest.mark.django_db
SECRET = re.compile(r'<code id="kt-totp-secret" class="kt-code">([A-Z2-7 ]+)</code>')
CODE = re.compile(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>")


def test_seeds_and_backup_codes_stay_out_of_every_record(
    client, settings, caplog, security_user, admin_user
):
    settings.PORTAL_2FA_REQUIRED = True
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    connection.force_debug_cursor = True  # log every SQL statement with its values
    try:
        password_login(client, "sec")
        enrol_page = client.get(reverse("admin:two_factor_enrol")).content.decode()
        grouped = SECRET.search(enrol_page).group(1)
        key = key_from_base32(grouped)
        client.post(reverse("admin:two_factor_enrol"), {"code": totp(key, steps_ahead=-9)})
        shown = client.post(reverse("admin:two_factor_enrol"), {"code": totp(key)})
        first_codes = CODE.findall(shown.content.decode())
        again = client.post(reverse("admin:two_factor_backup_codes")).content.decode()
        codes = CODE.findall(again)
        client.post(reverse("admin:logout"))
        password_login(client, "sec")
        submit_code(client, first_codes[0])  # replaced: a wrong code now, counted by axes
        submit_code(client, codes[0].upper())  # right
        client.post(reverse("admin:logout"))
        client.force_login(admin_user)
        pages = [
            client.get(reverse("admin:auth_user_changelist")).content.decode(),
            client.get(reverse("admin:auth_user_change", args=[security_user.pk])).content.decode(),
            client.get(reverse("admin:axes_accessattempt_changelist")).content.decode(),
            client.get(reverse("admin:credentials_auditevent_changelist")).content.decode(),
        ]
    finally:
        connection.force_debug_cursor = False

    assert len(first_codes) == len(codes) == 10
    assert KeyturnTOTPDevice.objects.get(user=security_user).bin_key == key
    assert "otp_" in caplog.text or "second-factor statement" in caplog.text  # SQL was logged
    secrets = [
        key.hex(),
        base64.b32encode(key).decode().rstrip("="),
        grouped,
        *first_codes,
        *codes,
        *(code.replace("-", "") for code in first_codes + codes),
    ]
    haystacks = {
        "audit trail": "\n".join(repr(row) for row in AuditEvent.objects.values_list()),
        "logs": caplog.text,
        "sessions": "\n".join(str(s.get_decoded()) for s in Session.objects.all()),
        "session cookie and messages": str(client.cookies),
        "lockout records": "\n".join(repr(row) for row in AccessAttempt.objects.values_list()),
        "admin pages": "\n".join(pages),
        "device names": "\n".join(str(d) for d in TOTPDevice.objects.all()),
    }
    assert AuditEvent.objects.filter(action__startswith="user.").count() >= 4
    for secret in secrets:
        for where, text in haystacks.items():
            assert secret.lower() not in text.lower(), f"a second-factor secret leaked into {where}"
