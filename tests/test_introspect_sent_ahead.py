"""On PostgreSQL, introspection sends its lookup before the rest of the middleware runs
(``introspection_fast_path``, ``verification.prefetch_bearers``) and the view reads that answer.

Outside a transaction only (as requests run), so these tests commit for real. Each checks
that the answer read is the right one, that the connection is left free, and that whatever
gets in between (another query, other secrets, a lost connection, a forgotten statement, a
cookie) falls back to the lookup as it was.
"""

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from django.core.signals import got_request_exception
from django.db import connection, transaction
from django.views.debug import ExceptionReporter
from psycopg import pq

from credentials import crypto, verification
from credentials.models import Kind
from credentials.verification import discard_prefetch, prefetch_bearers, verify_bearers
from tests.introspection import introspect
from tests.postgres import another_connection, kill_this_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def answers_read(monkeypatch):
    """How many answers to a lookup sent ahead the view has read."""
    read = []
    original = verification._answer_to_sent

    def counting(pg):
        read.append(pg)
        return original(pg)

    monkeypatch.setattr(verification, "_answer_to_sent", counting)
    return read


def connection_is_free():
    pg = connection.connection
    return pg.pgconn.transaction_status == pq.TransactionStatus.IDLE and not hasattr(
        connection, "_keyturn_sent"
    )


def expire_from_elsewhere(version):
    """Make ``version`` stop verifying, committed on another connection than Django's."""
    with another_connection(autocommit=True) as other:
        other.execute(
            "UPDATE credentials_credentialversion SET expires_at = now() - interval '1 minute' "
            "WHERE id = %s",
            [version.pk],
        )


def test_an_introspection_reads_the_answer_sent_ahead(client, issue, caller_key, answers_read):
    issued = issue(Kind.API_KEY)
    answer = introspect(client, issued.plaintext, caller_key)
    assert answer.status_code == 200
    assert answer.json()["jti"] == str(issued.version.public_id)
    assert len(answers_read) == 1
    assert connection_is_free()


def test_with_two_hash_keys_both_secrets_are_still_looked_up_ahead(
    client, issue, caller_key, answers_read, settings
):
    # Two digests per secret: the statement sent ahead is the one for four digests.
    issued = issue(Kind.API_KEY)
    newer = ("k-newer", bytes(range(32)))
    settings.PORTAL_TOKEN_HASH_KEYS = crypto.Keyring((newer, *settings.PORTAL_TOKEN_HASH_KEYS.keys))
    opened = connection.connection
    answer = introspect(client, issued.plaintext, caller_key)
    assert answer.json()["jti"] == str(issued.version.public_id)
    assert len(answers_read) == 1
    assert connection.connection is opened  # read as sent: no error, so no second try
    assert connection_is_free()


def test_a_revoke_counts_from_the_next_request_on(client, issue, caller_key, answers_read):
    issued = issue(Kind.API_KEY)
    assert introspect(client, issued.plaintext, caller_key).json()["active"] is True
    expire_from_elsewhere(issued.version)
    assert introspect(client, issued.plaintext, caller_key).json() == {"active": False}
    assert len(answers_read) == 2


def test_the_answer_is_the_database_as_the_request_arrived(issue, caller_key, answers_read):
    issued = issue(Kind.API_KEY)
    prefetch_bearers([caller_key, issued.plaintext])
    verification._wait_for_answer(connection.connection.pgconn)  # the server has answered
    expire_from_elsewhere(issued.version)
    _caller, found = verify_bearers([caller_key, issued.plaintext])
    assert found is not None  # the answer sent ahead, read before the change
    assert len(answers_read) == 1
    assert verify_bearers([caller_key, issued.plaintext])[1] is None  # the next lookup sees it


def test_an_answer_for_other_secrets_is_dropped(issue, caller_key, answers_read):
    first, second = issue(Kind.API_KEY, name="first"), issue(Kind.API_KEY, name="second")
    prefetch_bearers([caller_key, first.plaintext])
    _caller, found = verify_bearers([caller_key, second.plaintext])
    assert found.version_id == second.version.pk
    assert answers_read == []
    assert connection_is_free()


def test_another_query_first_reads_and_drops_the_answer(issue, caller_key, answers_read):
    issued = issue(Kind.API_KEY)
    prefetch_bearers([caller_key, issued.plaintext])
    with connection.cursor() as cursor:  # libpq takes one command at a time
        cursor.execute("SELECT 41 + 1")
        assert cursor.fetchone() == (42,)
    assert connection_is_free()
    assert verification._read_sent_first not in connection.execute_wrappers
    assert verify_bearers([caller_key, issued.plaintext])[1].version_id == issued.version.pk
    assert answers_read == []


def test_an_answer_nobody_reads_is_dropped_at_the_end(issue, caller_key):
    issued = issue(Kind.API_KEY)
    prefetch_bearers([caller_key, issued.plaintext])
    assert not connection_is_free()
    discard_prefetch()
    assert connection_is_free()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_a_connection_lost_before_the_answer_is_replaced(issue, caller_key):
    issued = issue(Kind.API_KEY)
    verify_bearers([caller_key, issued.plaintext])  # a connection with the statement prepared
    with another_connection() as other:
        # Hold the lookup up on the server, so that the connection dies before it answers.
        other.execute('LOCK TABLE "credentials_credentialversion" IN ACCESS EXCLUSIVE MODE')
        prefetch_bearers([caller_key, issued.plaintext])
        pid = kill_this_connection()
    _caller, found = verify_bearers([caller_key, issued.plaintext])
    assert found.version_id == issued.version.pk  # asked again, on a new connection
    assert connection.connection.info.backend_pid != pid
    assert connection_is_free()


def test_a_statement_the_server_forgot_is_prepared_again(issue, caller_key, answers_read):
    issued = issue(Kind.API_KEY)
    verify_bearers([caller_key, issued.plaintext])
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler's DISCARD ALL would
    prefetch_bearers([caller_key, issued.plaintext])  # sent for a statement that is gone
    assert verify_bearers([caller_key, issued.plaintext])[1].version_id == issued.version.pk
    assert len(answers_read) == 1  # its error was read, then the lookup ran again
    assert connection_is_free()


def test_unprepared_when_prepared_statements_are_off(issue, caller_key, answers_read, settings):
    issued = issue(Kind.API_KEY)
    connection.close()
    connection.ensure_connection()  # a fresh connection, with nothing prepared on it
    settings.PORTAL_DB_PREPARED_STATEMENTS = False
    prefetch_bearers([caller_key, issued.plaintext])
    assert verify_bearers([caller_key, issued.plaintext])[1].version_id == issued.version.pk
    assert len(answers_read) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone() == (0,)


def test_nothing_is_sent_ahead_inside_a_transaction(issue, caller_key):
    issued = issue(Kind.API_KEY)
    with transaction.atomic():
        prefetch_bearers([caller_key, issued.plaintext])
        assert not hasattr(connection, "_keyturn_sent")


def test_nothing_is_sent_ahead_before_a_connection_is_open(issue, caller_key, answers_read):
    # Opening one is left to the view: if the database is down, it tries once and says so.
    issued = issue(Kind.API_KEY)
    connection.close()
    prefetch_bearers([caller_key, issued.plaintext])
    assert connection.connection is None
    assert verify_bearers([caller_key, issued.plaintext])[1].version_id == issued.version.pk
    assert answers_read == []


def test_nothing_is_sent_ahead_for_garbage(caller_key):
    prefetch_bearers(["not a key", ""])
    assert not hasattr(connection, "_keyturn_sent")


def test_a_request_with_a_cookie_is_not_sent_ahead(client, issue, caller_key, answers_read):
    # A browser's request: the session and sign-in middleware may read the database for it.
    issued = issue(Kind.API_KEY)
    client.cookies["sessionid"] = "whatever"
    assert introspect(client, issued.plaintext, caller_key).json()["active"] is True
    assert answers_read == []


def test_a_bad_form_is_answered_by_the_view(client, caller_key, answers_read):
    answer = client.post(
        "/api/v1/introspect",
        "token=a&token=b",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {caller_key}",
    )
    assert answer.status_code == 400
    assert "more than once" in answer.json()["error_description"]
    assert answers_read == []
    assert connection_is_free()


def test_the_secrets_sent_ahead_are_in_no_error_report(client, issue, caller_key, monkeypatch):
    # What Django's error e-mails and pages show of a failing request: every frame's locals.
    issued = issue(Kind.API_KEY)
    reports = []

    def report(sender, request, **kwargs):
        reports.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())

    def failing(*args, **kwargs):
        raise RuntimeError("something broke after the lookup")

    monkeypatch.setattr(verification, "_verified", failing)
    got_request_exception.connect(report)
    try:
        client.raise_request_exception = False
        assert introspect(client, issued.plaintext, caller_key).status_code == 500
    finally:
        got_request_exception.disconnect(report)
    assert "something broke" in reports[0]
    for secret in (issued.plaintext, caller_key):
        assert secret not in reports[0]
        assert secret not in repr(connection.__dict__)
    assert connection_is_free()


def test_a_transaction_per_request_turns_it_off(client, issue, caller_key, answers_read):
    # ATOMIC_REQUESTS begins the view's transaction after the middleware: psycopg would
    # refuse to, with an answer on its way.
    issued = issue(Kind.API_KEY)
    old = connection.settings_dict.get("ATOMIC_REQUESTS", False)
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        assert introspect(client, issued.plaintext, caller_key).json()["active"] is True
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = old
    assert answers_read == []
    assert connection_is_free()


def test_a_host_the_portal_does_not_serve_gets_no_database_work(
    client, issue, caller_key, monkeypatch
):
    issued = issue(Kind.API_KEY)
    sent = []
    monkeypatch.setattr(verification, "prefetch_bearers", lambda *args, **kw: sent.append(args))
    answer = introspect(client, issued.plaintext, caller_key, HTTP_HOST="evil.example")
    assert answer.status_code == 400
    assert sent == []


def test_an_answer_the_view_never_reads_is_dropped_with_the_request(
    client, issue, caller_key, monkeypatch
):
    from credentials.api import introspection

    issued = issue(Kind.API_KEY)

    def failing(*args, **kwargs):
        raise RuntimeError("the view failed before reading its answer")

    monkeypatch.setattr(introspection, "verify_bearers", failing)
    client.raise_request_exception = False
    assert introspect(client, issued.plaintext, caller_key).status_code == 500
    assert connection_is_free()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def hold_the_table_from_another_process(seconds):
    """A psql process that locks the versions' table for ``seconds``: from outside this
    process, so that its end does not need this process's GIL. Returns once it holds it."""
    db = connection.settings_dict
    locking = (
        "BEGIN; LOCK TABLE credentials_credentialversion IN ACCESS EXCLUSIVE MODE; "
        f"SELECT pg_sleep({seconds}); COMMIT;"
    )
    host, user = db["HOST"] or "127.0.0.1", db["USER"] or "postgres"
    holder = subprocess.Popen(
        ["psql", "-h", host, "-U", user, "-d", db["NAME"], "-c", locking],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PGPORT": str(db["PORT"] or 5432)},
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
def test_other_threads_run_while_the_answer_is_awaited(issue, caller_key):
    issued = issue(Kind.API_KEY)
    verify_bearers([caller_key, issued.plaintext])  # prepared, so that only the read waits
    ticks = []
    stop = threading.Event()

    def ticking():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.002)

    holder = hold_the_table_from_another_process(0.5)
    prefetch_bearers([caller_key, issued.plaintext])  # held up on the server
    ticker = threading.Thread(target=ticking)
    ticker.start()
    try:
        started = len(ticks)
        _caller, found = verify_bearers([caller_key, issued.plaintext])
        waited = len(ticks) - started
    finally:
        stop.set()
        ticker.join()
        holder.wait(timeout=30)
    assert found.version_id == issued.version.pk
    assert waited >= 20  # about 250 in half a second; a held GIL lets through one or two
