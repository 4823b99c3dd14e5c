"""Uses are counted in the cache and written in batches: one write per version per interval."""

import time
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credentials import crypto, usage
from credentials.models import CredentialVersion, Kind
from tests.introspection import introspect

pytestmark = pytest.mark.django_db


def version_updates(queries) -> list[str]:
    table = CredentialVersion._meta.db_table
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and table in q["sql"]]


def version_writes(queries) -> int:
    """Version rows written: one UPDATE writes a batch, named in its closing ``id IN (...)``
    (an UPDATE of one row by ``id = ...`` counts one)."""
    return sum(
        sql.rsplit(" IN (", 1)[1].count(",") + 1 if " IN (" in sql else 1
        for sql in version_updates(queries)
    )


def stored(version) -> tuple[int, object]:
    version.refresh_from_db()
    return version.use_count, version.last_used_at


@pytest.fixture
def service(issue):
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    token = issue(Kind.API_KEY, name="Presented")
    return caller, token


def test_many_introspections_within_the_interval_write_nothing(client, service):
    caller, token = service
    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            assert introspect(client, token.plaintext, caller.plaintext).status_code == 200
    assert version_writes(queries) == 0
    assert stored(token.version) == (0, None)
    assert usage.pending_uses(token.version.pk) == 50
    assert usage.pending_uses(caller.version.pk) == 50


def test_after_the_interval_one_request_writes_each_version_once_with_the_exact_count(
    client, settings, service
):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 1
    caller, token = service
    for _ in range(20):
        introspect(client, token.plaintext, caller.plaintext)
    time.sleep(1.1)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            introspect(client, token.plaintext, caller.plaintext)
    assert version_writes(queries) == 2  # one per version, however many requests follow
    for version in (token.version, caller.version):
        written = stored(version)[0]
        assert written >= 20  # everything counted before the interval ended...
        assert written + usage.pending_uses(version.pk) == 40  # ...and nothing lost or doubled


def test_counts_are_exact_once_the_interval_has_passed_and_a_flush_ran(client, settings, service):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 1
    caller, token = service
    for _ in range(30):
        introspect(client, token.plaintext, caller.plaintext)
    time.sleep(1.1)
    with CaptureQueriesContext(connection) as queries:
        assert usage.flush_pending() == 2
    assert version_writes(queries) == 2
    assert stored(token.version)[0] == 30
    assert stored(caller.version)[0] == 30
    assert usage.pending_uses(token.version.pk) == 0
    last_used = stored(token.version)[1]
    assert last_used is not None


def test_the_next_request_after_the_interval_writes_what_this_process_counted(
    client, settings, issue, service
):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 1
    caller, token = service
    quiet = issue(Kind.API_KEY, name="Used, then quiet")
    for _ in range(5):
        introspect(client, quiet.plaintext, caller.plaintext)
    time.sleep(1.1)
    introspect(client, token.plaintext, caller.plaintext)  # a request about another key
    assert stored(quiet.version)[0] == 5
    assert stored(quiet.version)[1] is not None


def test_a_version_that_is_not_used_is_never_written(client, service, issue):
    caller, token = service
    idle = issue(Kind.API_KEY, name="Idle")
    introspect(client, token.plaintext, caller.plaintext)
    assert stored(idle.version) == (0, None)


def test_an_inactive_token_counts_no_use_of_anything_but_the_caller(client, service):
    caller, token = service
    introspect(client, crypto.generate_token("api_key"), caller.plaintext)
    assert usage.pending_uses(caller.version.pk) == 1
    assert usage.pending_uses(token.version.pk) == 0


def test_a_failing_database_write_does_not_fail_the_introspection_and_loses_nothing(
    client, settings, service
):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 1
    caller, token = service
    table = CredentialVersion._meta.db_table

    def disk_full(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and table in sql and "use_count" in sql:
            raise DatabaseError("disk full")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(disk_full):
        for _ in range(3):
            introspect(client, token.plaintext, caller.plaintext)
        time.sleep(1.1)
        response = introspect(client, token.plaintext, caller.plaintext)  # its write fails
    assert response.json()["active"] is True
    assert stored(token.version)[0] == 0
    assert usage.pending_uses(token.version.pk) == 4  # the failed batch was given back

    time.sleep(1.1)
    usage.flush_pending()
    assert stored(token.version)[0] == 4
    assert stored(caller.version)[0] == 4


def test_a_failing_cache_does_not_fail_the_introspection(client, settings, service):
    caller, token = service
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing answers
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    response = introspect(client, token.plaintext, caller.plaintext)
    assert response.status_code == 200
    assert response.json()["active"] is True


def test_a_flush_gives_each_version_its_own_count_and_time_in_few_statements(issue, monkeypatch):
    monkeypatch.setattr(usage, "_WRITE_CHUNK", 2)
    versions = [issue(Kind.API_KEY, name=f"Key {n}").version for n in range(5)]
    base = timezone.now().replace(microsecond=0)
    taken = {
        version.pk: (n + 1, int((base + timedelta(seconds=n)).timestamp() * 1000))
        for n, version in enumerate(versions)
    }
    with CaptureQueriesContext(connection) as queries:
        usage._write(taken)
    assert len(version_updates(queries)) == 3  # 2 + 2 + 1 versions, in one transaction
    assert version_writes(queries) == 5
    for n, version in enumerate(versions):
        assert stored(version) == (n + 1, base + timedelta(seconds=n))


def test_a_flush_of_older_uses_adds_their_count_but_never_moves_the_last_use_back(issue):
    version = issue(Kind.API_KEY).version
    newer = timezone.now().replace(microsecond=0)
    usage._write({version.pk: (3, int(newer.timestamp() * 1000))})
    older = newer - timedelta(hours=1)
    usage._write({version.pk: (2, int(older.timestamp() * 1000))})
    assert stored(version) == (5, newer)
