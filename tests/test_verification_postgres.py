"""On PostgreSQL the lookup goes through libpq itself: prepared once per connection, prepared
again when the server forgets it, optionally unprepared, inside Django's transactions when it
runs in one, with the server's errors reaching the caller as Django's, and without holding
up the process's other threads while it waits."""

import gc
import os
import shutil
import subprocess
import threading
import time
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


def hold_the_table_from_another_process(seconds):
    """A psql process that locks the versions' table for ``seconds``: from outside this
    process, so that its end does not need this process's GIL. Returns once it holds it."""
    db = connection.settings_dict
    locking = (
        "BEGIN; LOCK TABLE credentials_credentialversion IN ACCESS EXCLUSIVE MODE; "
        f"SELECT pg_sleep({seconds}); COMMIT;"
    )
    # Connected as another_connection is: whatever the settings leave out, libpq's defaults.
    given = {"PGHOST": db["HOST"], "PGPORT": db["PORT"], "PGUSER": db["USER"]}
    given["PGPASSWORD"] = db["PASSWORD"]
    env = {**os.environ, **{name: str(value) for name, value in given.items() if value}}
    holder = subprocess.Popen(
        ["psql", "-d", db["NAME"], "-c", locking], stdout=subprocess.DEVNULL, env=env
    )
    with another_connection(autocommit=True) as other:
        for _ in range(500):
            held = other.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'credentials_credentialversion' AND l.mode = "
                "'AccessExclusiveLock' AND l.granted"
            ).fetchone()[0]
            if held:
                return holder
            time.sleep(0.01)
    holder.kill()
    raise AssertionError("psql did not take the lock")


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs the psql client")
def test_other_threads_run_while_the_lookup_waits_for_the_server(issue):
    issued = issue(Kind.API_KEY)
    verify_bearer(issued.plaintext)  # prepared, so that only the lookup itself waits
    ticks = []
    stop = threading.Event()

    def ticking():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.002)

    holder = hold_the_table_from_another_process(0.5)
    ticker = threading.Thread(target=ticking)
    ticker.start()
    try:
        started = len(ticks)
        found = verify_bearer(issued.plaintext)  # held up on the server for about 0.5 s
        waited = len(ticks) - started
    finally:
        stop.set()
        ticker.join()
        holder.wait(timeout=30)
    assert found.version_id == issued.version.pk
    assert waited >= 20  # about 250 in half a second; a held GIL lets through one or two
