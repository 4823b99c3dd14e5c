"""The expiry sweep records what verification already enforces, once, with an audit event."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from credentials import lifecycle
from credentials.models import AuditEvent, Kind, State
from tests.states import make_version

pytestmark = pytest.mark.django_db


def test_an_active_version_past_its_lifetime_is_expired_by_the_sweep(issue):
    version = issue(Kind.API_KEY, lifetime_days=3).version
    assert lifecycle.versions_expire(now=version.expires_at - timedelta(seconds=1)) == 0
    assert lifecycle.versions_expire(now=version.expires_at) == 1
    version.refresh_from_db()
    assert version.state == State.EXPIRED
    event = AuditEvent.objects.get(action="credential.expired")
    assert event.details["why"] == "lifetime ended"
    assert event.actor_label == "expiry sweep"


def test_a_retiring_version_expires_when_its_overlap_ends(issue):
    old = make_version(issue, "retiring")
    assert lifecycle.versions_expire(now=old.retire_at) == 1
    old.refresh_from_db()
    assert old.state == State.EXPIRED
    assert old.credential.versions.get(number=2).state == State.ACTIVE
    event = AuditEvent.objects.get(action="credential.expired")
    assert event.details["why"] == "overlap ended"


def test_the_sweep_is_idempotent_and_leaves_revoked_versions_alone(issue):
    revoked = make_version(issue, "revoked")
    due = issue(Kind.API_KEY).version
    far_future = due.expires_at + timedelta(days=400)
    assert lifecycle.versions_expire(now=far_future) == 1
    assert lifecycle.versions_expire(now=far_future) == 0
    revoked.refresh_from_db()
    assert revoked.state == State.REVOKED
    assert AuditEvent.objects.filter(action="credential.expired").count() == 1


def test_expire_versions_command_reports_its_count(issue, capsys):
    issue(Kind.API_KEY)
    call_command("expire_versions")
    assert "Expired 0 version(s)." in capsys.readouterr().out
