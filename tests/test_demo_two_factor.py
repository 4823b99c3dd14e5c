"""The demo's way in past the second factor: backup codes that `demo_logins` prints."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken

from tests.signin import password_login, submit_code

pytestmark = pytest.mark.django_db
DEMO_PASSWORD = "demo-password-for-tests"


@pytest.fixture
def demo(monkeypatch, settings):
    settings.PORTAL_2FA_REQUIRED = True  # as in `make run`, where DEBUG is off
    monkeypatch.setenv("DEMO_PASSWORD", DEMO_PASSWORD)
    call_command("seed_demo", stdout=io.StringIO())


def printed_codes() -> dict[str, list[str]]:
    out = io.StringIO()
    call_command("demo_logins", stdout=out)
    lines = out.getvalue().split("Unused backup codes:")[1].splitlines()
    found = (re.match(r"\s+(\w+)\s+(.*)", line) for line in lines)
    return {m.group(1): re.findall(r"[a-z2-7]{5}-[a-z2-7]{5}", m.group(2)) for m in found if m}


@pytest.mark.parametrize("username", ["security", "auditor", "admin"])
def test_a_printed_backup_code_gets_each_demo_login_in_once(client, demo, username):
    codes = printed_codes()[username]
    assert len(codes) == 3

    password_login(client, username, DEMO_PASSWORD)
    assert client.get(reverse("admin:index"))["Location"].startswith(
        reverse("admin:two_factor_verify")
    )
    submit_code(client, codes[0])

    assert client.get(reverse("admin:index")).status_code == 200
    assert codes[0] not in printed_codes()[username]  # used up, so no longer offered


def test_seeding_again_leaves_the_demo_codes_as_they_are(demo):
    before = set(StaticToken.objects.values_list("token", flat=True))
    call_command("seed_demo", stdout=io.StringIO())
    assert set(StaticToken.objects.values_list("token", flat=True)) == before
    assert len(before) == 30


def test_the_demo_codes_are_stored_as_digests_only(demo):
    codes = [c.replace("-", "") for cs in printed_codes().values() for c in cs]
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert codes and not stored & set(codes)
