"""On PostgreSQL, introspection sends its lookup before the rest of the middleware runs
(``start_lookup_early``, ``verification.prefetch_bearers``) and the view reads that answer.

Outside a transaction only (as requests run), so these tests commit for real. Each checks
that the answer read is the right one, that the connection is left free, and that whatever
gets in between (another query, other secrets, a lost connection, a forgotten statement, a
cookie) falls back to the lookup as it was.
"""

import logging
import time

import pytest
from django.db import connection, transaction
from psycopg import pq

from credentials import verification
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


def test_a_revoke_counts_from_the_next_request_on(client, issue, caller_key, answers_read):
    issued = issue(Kind.API_KEY)
    assert introspect(client, issued.plaintext, caller_key).json()["active"] is True
    expire_from_elsewhere(issued.version)
    assert introspect(client, issued.plaintext, caller_key).json() == {"active": False}
    assert len(answers_read) == 2


def test_the_answer_is_the_database_as_the_request_arrived(issue, caller_key, answers_read):
    issued = issue(Kind.API_KEY)
    prefetch_bearers([caller_key, issued.plaintext])
    time.sleep(0.2)  # the server has answered by now
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


def test_the_secrets_sent_ahead_are_in_no_log(client, issue, caller_key, caplog, monkeypatch):
    issued = issue(Kind.API_KEY)

    def failing(*args, **kwargs):
        raise RuntimeError("something broke after the lookup")

    caplog.set_level(logging.DEBUG)
    assert introspect(client, issued.plaintext, caller_key).json()["active"] is True
    monkeypatch.setattr(verification, "_verified", failing)
    client.raise_request_exception = False
    assert introspect(client, issued.plaintext, caller_key).status_code == 500
    assert "something broke" in caplog.text  # the error was logged, with its request
    assert connection_is_free()
    for secret in (issued.plaintext, caller_key):
        assert secret not in caplog.text
        assert secret not in repr(connection.__dict__)
