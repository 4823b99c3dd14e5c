"""On Redis most introspections make no round trip to the cache; a flush makes one.

A process reserves places in its caller's rate-limit window in blocks, with the use counters
riding along in the same Lua script; the uses of requests on reserved places are queued and
sent within a second. A flush takes its lease, the count and the time of use in another
script. These tests count what redis-py sends (a pipeline or a script call is one send) and
check that the scripts are atomic and that what they leave behind expires. They need Redis.
"""

import threading
import time
import types

import pytest
import redis
from django.core.cache import cache

from credentials import batched, counters, ratelimit, usage
from credentials.models import Kind
from tests.introspection import introspect
from tests.races import together

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sends(monkeypatch):
    """The number of times redis-py sends anything to a server from this thread, from now on
    (the background sender of queued uses, ``batched``, may send what an earlier test queued
    at any moment: that is not this test's round trip)."""
    sent = []
    real_send = redis.connection.Connection.send_packed_command
    test_thread = threading.get_ident()

    def counting_send(self, command, check_health=True):
        if threading.get_ident() == test_thread:
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
    together(target, count, timeout=60)


def test_introspections_on_places_reserved_earlier_make_no_round_trip(
    redis_cache, client, sends, service
):
    assert ratelimit.reservation_size(6000) == 30
    caller, token = service
    introspect(client, token.plaintext, caller.plaintext)  # reserves a block (loads the script)
    sends.clear()
    for _ in range(5):
        assert introspect(client, token.plaintext, caller.plaintext).json()["active"] is True
    assert len(sends) == 0
    assert usage.pending_uses(token.version.pk) == 6  # sends what was queued first
    assert usage.pending_uses(caller.version.pk) == 6


def test_a_reservation_carries_its_own_uses_and_leaves_the_queued_ones_to_the_sender(
    redis_cache, client, monkeypatch, service
):
    """The script that reserves a block stays small: the uses of the requests served on
    reserved places wait for the sender thread (held back here), not for the next block."""
    caller, token = service
    monkeypatch.setattr(batched, "send_now", lambda: None)  # the sender thread sends nothing
    block = ratelimit.reservation_size(6000)
    for _ in range(block + 1):  # the first and the last request reserve a block each
        assert introspect(client, token.plaintext, caller.plaintext).json()["active"] is True
    sent = redis_cache.get(cache.make_key(usage._count_key(token.version.pk)))
    assert int(sent) == 2
    monkeypatch.undo()
    assert usage.pending_uses(token.version.pk) == block + 1
    assert usage.pending_uses(caller.version.pk) == block + 1


def test_a_small_limit_is_reserved_one_place_at_a_time(redis_cache, client, settings, service):
    settings.PORTAL_INTROSPECT_RATE = 3
    caller, token = service
    introspect(client, token.plaintext, caller.plaintext)
    codes = []
    for _ in range(3):
        codes.append(introspect(client, token.plaintext, caller.plaintext).status_code)
    assert codes == [200, 200, 429]
    assert usage.pending_uses(token.version.pk) == 3


def test_queued_uses_reach_redis_within_a_second_without_another_request(
    redis_cache, client, service
):
    caller, token = service
    for _ in range(3):
        introspect(client, token.plaintext, caller.plaintext)
    time.sleep(batched.SEND_SECONDS + 0.5)
    raw = redis_cache.get(cache.make_key(usage._count_key(token.version.pk)))
    assert int(raw) == 3


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


def test_processes_reserving_at_once_never_take_more_than_the_limit(redis_cache):
    """Threads stand in for processes: each reservation is one script, atomic on the server."""
    taken = []

    def hammer(n):
        for _ in range(50):
            taken.append(
                counters.reserve(
                    "rate:shared",
                    60,
                    100,
                    7,
                    counters.Changes({"always": 1}, {}),
                    counters.Changes({"within": 1}, {"last": n}),
                )
            )

    run_together(8, hammer)
    assert sum(taken) == 100
    assert all(0 <= places <= 7 for places in taken)
    assert cache.get("rate:shared") == 100
    assert cache.get("always") == 400
    assert cache.get("within") == sum(1 for places in taken if places)
    assert cache.get("last") in range(8)


def test_a_full_window_takes_no_place_and_applies_only_what_always_applies(redis_cache):
    always, within = counters.Changes({"a": 1}, {}), counters.Changes({"w": 1}, {"t": 5})
    assert counters.reserve("rate:full", 60, 3, 2, always, within) == 2
    assert counters.reserve("rate:full", 60, 3, 2, always, within) == 1
    assert counters.reserve("rate:full", 60, 3, 2, always, within) == 0
    assert (cache.get("a"), cache.get("w"), cache.get("t")) == (3, 2, 5)


def test_the_window_expires_and_its_places_come_back(redis_cache):
    changes = counters.Changes({"uses": 1}, {})
    assert counters.reserve("rate:short", 1, 5, 5, changes) == 5
    assert counters.reserve("rate:short", 1, 5, 5, changes) == 0
    assert 0 < redis_cache.pttl(cache.make_key("rate:short")) <= 1000
    time.sleep(1.1)
    assert counters.reserve("rate:short", 1, 5, 5, changes) == 5
    assert cache.get("uses") == 3  # use counters never expire
    assert redis_cache.ttl(cache.make_key("uses")) == -1


def test_a_window_found_without_an_expiry_is_given_one(redis_cache):
    redis_cache.set(cache.make_key("rate:stuck"), 10)  # full, and left without an expiry
    assert counters.reserve("rate:stuck", 60, 5, 1) == 0
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
                counters.reserve(
                    "rate:busy", 60, 10_000, 1, counters.Changes({"count": 1}, {"at": i})
                )

    run_together(4, hammer)
    assert sum(taken) + cache.get("count") == 2 * 200


def test_a_flush_of_several_versions_makes_one_round_trip_and_writes_each_once(
    redis_cache, settings, sends, issue
):
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 30
    versions = [issue(Kind.API_KEY, name=f"Key {n}").version for n in range(5)]
    for n, version in enumerate(versions):
        counters.add(usage._count_key(version.pk), n + 1)
    ids = [version.pk for version in versions]
    sends.clear()
    assert usage.flush_versions(ids) == set(ids)
    assert len(sends) == 1
    for n, version in enumerate(versions):
        version.refresh_from_db()
        assert version.use_count == n + 1
    assert usage.flush_versions(ids) == set()  # every lease is held for the interval


def test_two_processes_sharing_a_limit_admit_it_less_at_most_one_reserved_block(
    redis_cache, client, settings, monkeypatch, service
):
    """Two processes, each with its own reserved places, take turns: together they never admit
    more than the limit, and never refuse more than the places the other one still holds."""
    settings.PORTAL_INTROSPECT_RATE = 400
    block = ratelimit.reservation_size(400)
    assert block == 2
    caller, token = service
    frozen = time.time()  # one window throughout, however long the requests take
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: frozen))
    processes = [{}, {}]  # each process's reserved places
    admitted = 0
    for n in range(420):
        monkeypatch.setattr(ratelimit, "_reserved", processes[n % 2])
        status = introspect(client, token.plaintext, caller.plaintext).status_code
        assert status in (200, 429)
        admitted += status == 200
    assert 400 - (block - 1) <= admitted <= 400
    assert usage.pending_uses(token.version.pk) == admitted
