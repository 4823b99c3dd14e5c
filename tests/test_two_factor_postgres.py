"""Second factors under real concurrency: a backup code or a TOTP code presented by several
requests at once signs in exactly one of them."""

import pytest

from credentials.audit import Actor, verify_chain
from credentials.lifecycle import two_factor
from credentials.models import AuditEvent
from tests.races import together
from tests.signin import enrol_authenticator, totp

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 6


def race(work):
    return together(lambda index: work(), THREADS, timeout=60)


def test_one_backup_code_presented_at_once_signs_in_once(security_user):
    code = two_factor.backup_codes_generate(actor=Actor.system("tests"), user=security_user)[0]

    results = race(
        lambda: two_factor.second_factor_verify(
            actor=Actor.system("tests"), user=security_user, code=code
        )
    )

    assert sum(device is not None for device in results) == 1
    assert AuditEvent.objects.filter(action="user.backup_code_used").count() == 1
    assert verify_chain().ok


def test_one_totp_code_presented_at_once_signs_in_once(security_user):
    device = enrol_authenticator(security_user)
    code = totp(device.bin_key)

    results = race(
        lambda: two_factor.second_factor_verify(
            actor=Actor.system("tests"), user=security_user, code=code
        )
    )

    assert sum(found is not None for found in results) == 1
