"""The hot path skips the health check's extra round trip, yet survives a dropped connection."""

import psycopg
import pytest
from django.db import connection

from credentials.models import Kind
from credentials.verification import verify_bearer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def kill_this_connection():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    return pid


def test_a_connection_closed_by_the_server_is_replaced_and_the_key_still_verifies(issue):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext) is not None
    old_pid = kill_this_connection()

    found = verify_bearer(issued.plaintext)

    assert found is not None and found.version_id == issued.version.pk
    assert connection.connection.info.backend_pid != old_pid
