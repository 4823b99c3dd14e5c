"""The hot path skips the health check's extra round trip, yet survives a dropped connection."""

import pytest
from django.db import connection

from credentials.models import Kind
from credentials.verification import verify_bearer
from tests.postgres import kill_this_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_connection_closed_by_the_server_is_replaced_and_the_key_still_verifies(issue):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext) is not None
    old_pid = kill_this_connection()

    found = verify_bearer(issued.plaintext)

    assert found is not None and found.version_id == issued.version.pk
    assert connection.connection.info.backend_pid != old_pid
