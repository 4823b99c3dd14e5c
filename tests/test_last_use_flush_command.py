"""`manage.py flush_last_use` writes what is left in the cache, and the portal shows it."""

import io
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from credentials import usage
from credentials.models import Kind
from tests.introspection import introspect

pytestmark = pytest.mark.django_db


def test_the_command_writes_leftover_uses_and_the_credential_page_shows_them(
    client, settings, issue, security_user
):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 1
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    token = issue(Kind.API_KEY, name="Presented")
    for _ in range(3):
        introspect(client, token.plaintext, caller.plaintext)
    usage.forget_local_state()  # as if the web process that counted them had stopped
    time.sleep(1.1)

    out = io.StringIO()
    call_command("flush_last_use", stdout=out)
    assert out.getvalue().strip() == "Flushed the last use of 2 version(s)."
    token.version.refresh_from_db()
    assert token.version.use_count == 3

    client.force_login(security_user)
    page = client.get(
        reverse("admin:credentials_credential_change", args=[token.version.credential_id])
    )
    assert page.status_code == 200
    shown = f"{token.version.last_used_at:%Y-%m-%d %H:%M} (3\N{MULTIPLICATION SIGN})"
    assert shown in page.content.decode()


def test_the_command_writes_nothing_when_nothing_is_pending(issue):
    issue(Kind.API_KEY)
    out = io.StringIO()
    call_command("flush_last_use", stdout=out)
    assert out.getvalue().strip() == "Flushed the last use of 0 version(s)."


def test_the_clock_writes_uses_a_stopped_process_left_in_the_cache(issue):
    from credentials.webhooks.clock import sweep

    token = issue(Kind.API_KEY, name="Presented")
    for _ in range(4):
        usage.record_use(token.version.pk)
    usage.forget_local_state()  # the web process that counted them is gone

    report = sweep()

    assert report.last_use_written == 1
    token.version.refresh_from_db()
    assert token.version.use_count == 4
    assert token.version.last_used_at is not None
    assert usage.pending_uses(token.version.pk) == 0
