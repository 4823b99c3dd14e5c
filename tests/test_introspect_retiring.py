"""A retiring version stays active until its overlap ends, then introspects as inactive."""

from datetime import timedelta

import pytest
from django.utils import timezone

from credentials import lifecycle
from credentials.models import Kind
from tests.introspection import introspect
from tests.states import ACTOR, Clock

pytestmark = pytest.mark.django_db


def test_a_retiring_version_is_active_until_its_retire_time_then_inactive(
    client, caller_key, issue, monkeypatch
):
    old = issue(Kind.API_KEY, scopes=["orders:read"])
    lifecycle.credential_rotate(actor=ACTOR, credential=old.version.credential, overlap_seconds=600)
    old.version.refresh_from_db()
    retire_at = old.version.retire_at
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)

    clock.now = retire_at - timedelta(seconds=1)
    answer = introspect(client, old.plaintext, caller_key).json()
    assert answer["active"] is True
    assert answer["keyturn_state"] == "retiring"
    assert answer["exp"] == int(retire_at.timestamp())  # the overlap ends before the expiry

    clock.now = retire_at
    assert introspect(client, old.plaintext, caller_key).content == b'{"active": false}'
