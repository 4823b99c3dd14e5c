"""Across processes (through Redis): uses counted concurrently are written exactly once.

These need Redis (``redis_cache`` skips without it, unless KEYTURN_REQUIRE_REDIS=1). Threads
stand in for processes: every counter operation is a Redis command, atomic on the server,
so what threads can interleave here, processes can too.
"""

import time

import pytest
from django.core.cache import cache

from credentials import counters, usage
from credentials.models import Kind
from tests.introspection import introspect
from tests.races import together

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(count, target):
    together(target, count, timeout=60)


@pytest.mark.parametrize("backend", ["redis", "in-process"])
def test_two_takers_at_once_split_the_count_without_double_counting(request, backend, issue):
    """Redis takes with one GETSET; the in-process cache with the decrement-and-hand-back."""
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    version = issue(Kind.API_KEY).version
    key = usage._count_key(version.pk)
    taken = [0, 0]

    def hammer(n):
        # Two flushers taking over and over (no lease), while uses keep arriving.
        for _ in range(300):
            if n < 2:
                taken[n] += usage._take(version.pk)
            else:
                counters.add(key, 1)

    run_together(4, hammer)
    left = cache.get(key)
    assert left >= 0
    assert taken[0] + taken[1] + left == 2 * 300


def test_only_one_of_two_flushers_at_once_writes(redis_cache, settings, issue):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 30
    version = issue(Kind.API_KEY).version
    counters.add(usage._count_key(version.pk), 7)
    won = []
    run_together(2, lambda n: won.append(usage.flush_version(version.pk)))
    assert sorted(won) == [False, True]
    version.refresh_from_db()
    assert version.use_count == 7


# PostgreSQL only: SQLite's in-memory test database (shared cache) locks whole tables between
# threads and answers "database table is locked" at once, whatever the busy timeout; a
# deployment's SQLite file in WAL mode does not. CI runs this on PostgreSQL.
@pytest.mark.postgres
def test_concurrent_requests_and_flushes_end_with_the_exact_count(redis_cache, settings, issue):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 1
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    token = issue(Kind.API_KEY, name="Presented")
    per_thread = 40

    def serve(n):
        from django.test import Client

        client = Client()
        for i in range(per_thread):
            assert introspect(client, token.plaintext, caller.plaintext).status_code == 200
            if i % 10 == 0:
                usage.flush_pending()  # a flush_last_use running beside the web processes
                time.sleep(0.1)

    run_together(4, serve)
    time.sleep(1.1)
    usage.flush_pending()
    for version in (token.version, caller.version):
        version.refresh_from_db()
        assert version.use_count == 4 * per_thread
    assert usage.pending_uses(token.version.pk) == 0


def test_the_rate_limit_is_shared_through_redis(redis_cache, settings, client, caller_key, issue):
    settings.PORTAL_INTROSPECT_RATE = 2
    token = issue(Kind.API_KEY, name="Presented").plaintext
    codes = [introspect(client, token, caller_key).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_redis_holds_only_ids_counts_and_times(redis_cache, client, issue):
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    token = issue(Kind.CLIENT_SECRET, name="Presented")
    for _ in range(3):
        introspect(client, token.plaintext, caller.plaintext)
    prefix = cache.make_key("")
    keys = list(redis_cache.scan_iter(match=f"{prefix}*"))
    assert keys
    for issued in (caller, token):
        secret = issued.plaintext.encode()
        for key in keys:
            value = redis_cache.get(key)
            for found in (key, value):
                assert secret not in found
                assert issued.version.digest.encode() not in found
                assert issued.plaintext[-12:].encode() not in found
