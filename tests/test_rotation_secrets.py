"""A guided rotation's new secret reaches one response and nothing else: no table (rotation
log, audit trail, sessions, one-time claims), no log line, no redirect, no cache."""

import logging
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from credentials.models import Kind, Rotation
from tests.receiver import Receiver
from tests.test_no_plaintext_at_rest import _every_row_as_text, _fragments
from tests.test_portal_rotations import start, step_post

pytestmark = pytest.mark.django_db
SECRET_BOX = re.compile(r'id="kt-secret"[^>]*value="([^"]+)"')


@pytest.mark.parametrize("kind", [Kind.API_KEY, Kind.CLIENT_SECRET, Kind.ENDPOINT_SECRET])
def test_a_guided_rotation_leaves_its_new_secret_nowhere_but_the_one_page(
    client, security_user, issue, settings, caplog, kind
):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    client.force_login(security_user)
    responses = []
    with Receiver() as receiver:
        options = {"url": receiver.url} if kind == Kind.ENDPOINT_SECRET else {}
        rotation = start(client, issue(kind, **options).credential)
        connection.force_debug_cursor = True  # every SQL statement, with its parameters
        try:
            while rotation.in_progress:
                response, sent = step_post(client, rotation)
                responses.append(response)
                responses.append(client.post(reverse("admin:credentials_rotation",
                                                     args=[rotation.pk]), sent))  # fmt: skip
                rotation.refresh_from_db()
        finally:
            connection.force_debug_cursor = False
    (plaintext,) = [m.group(1) for r in responses if (m := SECRET_BOX.search(r.content.decode()))]
    assert rotation.state == Rotation.Status.COMPLETED
    assert "SELECT" in caplog.text
    others = [r for r in responses if not SECRET_BOX.search(r.content.decode())]
    haystacks = {
        "tables": _every_row_as_text(),
        "logs": caplog.text,
        "other responses": "\n".join(r.content.decode() + str(r.headers) for r in others),
        "cache": repr([cache.get(key) for key in getattr(cache, "_cache", {})]),
        "rotation": str(rotation) + str(rotation.log),
    }
    for fragment in _fragments(plaintext):
        for where, text in haystacks.items():
            assert fragment not in text, f"a secret fragment leaked into {where}"
