"""On Redis an introspection costs one round trip to the cache, and a flush one more.

The caller's rate-limit count and the use counters of both keys go in one Lua script; a flush
takes its lease, the count and the time of use in another. These tests count the commands
redis-py sends (a pipeline or a script is one send) and check that the scripts are atomic
and that what they leave behind expires. They need Redis (``redis_cache``).
"""

import threading
import time

import pytest
import redis
from django.core.cache import cache
from django.db import connection

from credentials import counters, usage
from credentials.models import Kind
from tests.introspection import introspect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sends(monkeypatch):
    """The number of times redis-py sends anything to a server, from now on."""
    sent = []
    real_send = redis.connection.Connection.send_packed_command

    def counting_send(self, command, check_health=True):
        sent.append(1)
        return real_send(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting_send)
    return sent


@pytest.fixture
def service(issue):
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    token = issue(Kind.API_KEY, name="Presented")
    return caller, token


def run_together(count, target):
    start = threading.Barrier(count)
    errors = []

    def body(n):
        try:
            start.wait()
            target(n)
        except Exception as error:  # surfaced below, so a failing thread fails the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_an_introspection_makes_one_round_trip_to_redis(redis_cache, client, sends, service):
    caller, token = service
    introspect(client, token.plaintext, caller.plaintext)  # connects and loads the script
    sends.clear()
    for _ in range(5):
        assert introspect(client, token.plaintext, caller.plaintext).json()["active"] is True
    assert len(sends) == 5
    assert usage.pending_uses(token.version.pk) == 6
    assert usage.pending_uses(caller.version.pk) == 6


def test_a_flush_makes_one_round_trip_to_redis(redis_cache, settings, sends, service):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 30
    _, token = service
    counters.add(usage._count_key(token.version.pk), 4)
    sends.clear()
    assert usage.flush_version(token.version.pk) is True
    assert len(sends) == 1
    token.version.refresh_from_db()
    assert token.version.use_count == 4
    assert token.version.last_used_at is not None


def test_a_caller_over_its_limit_counts_its_own_use_but_not_the_tokens(
    redis_cache, client, settings, service
):
    settings.PORTAL_INTROSPECT_RATE = 2
    caller, token = service
    codes = [introspect(client, token.plaintext, caller.plaintext).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    assert usage.pending_uses(caller.version.pk) == 4
    assert usage.pending_uses(token.version.pk) == 2


def test_requests_at_once_from_many_processes_never_pass_the_limit(redis_cache):
    """Threads stand in for processes: each call is one script, atomic on the server."""
    admitted = []

    def hammer(n):
        for _ in range(50):
            count = counters.count_in_window_then_add(
                "rate:shared",
                60,
                100,
                counters.Changes({"always": 1}, {}),
                counters.Changes({"within": 1}, {"last": n}),
            )
            if count <= 100:
                admitted.append(count)

    run_together(8, hammer)
    assert sorted(admitted) == list(range(1, 101))  # each place in the window given once
    assert cache.get("rate:shared") == 400
    assert cache.get("always") == 400
    assert cache.get("within") == 100
    assert cache.get("last") in range(8)


def test_the_window_expires_and_the_count_starts_again(redis_cache):
    changes = counters.Changes({"uses": 1}, {})
    assert counters.count_in_window_then_add("rate:short", 1, 5, changes) == 1
    assert counters.count_in_window_then_add("rate:short", 1, 5, changes) == 2
    assert 0 < redis_cache.pttl(cache.make_key("rate:short")) <= 1000
    time.sleep(1.1)
    assert counters.count_in_window_then_add("rate:short", 1, 5, changes) == 1
    assert cache.get("uses") == 3  # use counters never expire
    assert redis_cache.ttl(cache.make_key("uses")) == -1


def test_a_window_found_without_an_expiry_is_given_one(redis_cache):
    redis_cache.set(cache.make_key("rate:stuck"), 10)  # as a crash between two commands could
    assert counters.count_in_window_then_add("rate:stuck", 60, 5) == 11
    assert 0 < redis_cache.ttl(cache.make_key("rate:stuck")) <= 60


def test_of_two_flushers_at_once_one_takes_everything_and_the_other_learns_its_lease(
    redis_cache,
):
    counters.add("count", 9)
    cache.set("at", 1234, timeout=None)
    claims = []
    run_together(
        2,
        lambda n: claims.append(counters.claim_and_take("lease", 1000 + n, 30, "count", "at")),
    )
    winner, loser = sorted(claims, key=lambda claimed: not claimed.won)
    assert winner.won and (winner.taken, winner.value) == (9, 1234)
    assert not loser.won and loser.taken == 0
    assert loser.held == winner.held
    assert cache.get("count") == 0
    assert 0 < redis_cache.ttl(cache.make_key("lease")) <= 30


def test_uses_counted_while_flushers_take_are_each_taken_once(redis_cache):
    taken = []

    def hammer(n):
        for i in range(200):
            if n < 2:  # takers, each with a lease of its own so that every take runs
                taken.append(counters.claim_and_take(f"lease:{n}:{i}", 1, 30, "count", "at").taken)
            else:
                counters.count_in_window_then_add(
                    "rate:busy", 60, 10_000, counters.Changes({"count": 1}, {"at": i})
                )

    run_together(4, hammer)
    assert sum(taken) + cache.get("count") == 2 * 200
