"""On PostgreSQL the lookup goes through libpq itself: prepared once per connection, prepared
again when the server forgets it, optionally unprepared, inside Django's transactions when it
runs in one, and with the server's errors reaching the caller as Django's."""

import gc
import weakref

import pytest
from django.db import OperationalError, ProgrammingError, connection, transaction
from psycopg import pq

from credentials.models import Kind
from credentials.verification import verify_bearer
from tests.postgres import another_connection, kill_this_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def prepared_names():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


def prepared_at(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT prepare_time FROM pg_prepared_statements WHERE name = %s", [name])
        row = cursor.fetchone()
    return row[0] if row else None


def test_the_lookup_is_prepared_once_per_connection(issue):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext).version_id == issued.version.pk
    first = prepared_at("keyturn_verify_3")  # one digest, two states
    assert first is not None
    for _ in range(3):
        assert verify_bearer(issued.plaintext).version_id == issued.version.pk
    assert prepared_at("keyturn_verify_3") == first  # not prepared again


def test_a_closed_connection_is_not_kept_alive_by_the_lookup(issue):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext) is not None
    old = weakref.ref(connection.connection)
    connection.close()
    assert verify_bearer(issued.plaintext) is not None  # on a new connection
    gc.collect()
    assert old() is None


def test_a_statement_the_server_forgot_is_prepared_again(issue):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext) is not None
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler's DISCARD ALL would
    assert verify_bearer(issued.plaintext).version_id == issued.version.pk
    assert "keyturn_verify_3" in prepared_names()


def test_a_statement_forgotten_inside_a_transaction_fails_that_read_only(issue):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext) is not None
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")

    def read_in_a_transaction():
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # psycopg has begun the transaction
            return verify_bearer(issued.plaintext)

    with pytest.raises(ProgrammingError, match="does not exist"):
        read_in_a_transaction()  # the server's error aborted the transaction: nothing to retry
    assert read_in_a_transaction().version_id == issued.version.pk  # prepared again
    assert read_in_a_transaction() is not None


def test_with_prepared_statements_off_nothing_is_prepared(issue, settings):
    issued = issue(Kind.API_KEY)
    connection.close()  # a fresh connection, with nothing prepared on it yet
    settings.PORTAL_DB_PREPARED_STATEMENTS = False
    assert verify_bearer(issued.plaintext).version_id == issued.version.pk
    assert "keyturn_verify_3" not in prepared_names()


def test_as_the_first_query_of_a_transaction_it_reads_inside_that_transaction(issue):
    issued = issue(Kind.API_KEY)
    with transaction.atomic():
        assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
        assert verify_bearer(issued.plaintext) is not None
        assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.INTRANS


def test_a_server_error_reaches_the_caller_as_djangos_own(issue):
    issued = issue(Kind.API_KEY)
    with another_connection() as other:
        other.execute('LOCK TABLE "credentials_credentialversion" IN ACCESS EXCLUSIVE MODE')
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '100ms'")
            verify_bearer(issued.plaintext)
    assert verify_bearer(issued.plaintext) is not None  # the connection is usable again


def test_a_lost_connection_is_replaced_on_the_libpq_path_too(issue, caplog):
    issued = issue(Kind.API_KEY)
    assert verify_bearer(issued.plaintext) is not None
    old_pid = kill_this_connection()
    caplog.clear()
    assert verify_bearer(issued.plaintext).version_id == issued.version.pk
    assert connection.connection.info.backend_pid != old_pid
    retried = [r for r in caplog.records if r.name == "credentials.verification"]
    assert [r.getMessage() for r in retried] == [
        "Key lookup failed (OperationalError); retrying once on a new connection"
    ]
    assert "keyturn_verify_3" in prepared_names()  # prepared anew on the new connection
