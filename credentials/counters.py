"""Atomic counters in Django's cache, in one round trip when the cache is Redis.

Last-use tracking and the introspection rate limit add to counters on every request. Django's
cache API gives atomic ``incr`` but costs two round trips per call on Redis (an EXISTS, then
the INCR) and cannot batch; on the hot path that was most of the request's time. With Django's
own ``RedisCache`` every function here is one round trip: a pipeline, or a Lua script where
what it writes depends on what it reads (``reserve``: places in a rate-limit window, with the
use counters that ride along; ``claim_and_take``: a flush's lease and the counts it takes).
With any other cache they fall back to the portable ``incr``/``add`` dance. Either way the
keys are Django's (``cache.make_key``) and the values plain integers, so ``cache.get``,
``cache.decr`` and the rest of the cache API read and change the same counters.

The scripts touch several keys in one call, so the keys must live on one Redis server (as
with Django's ``RedisCache``, which writes to the first server it is given), not a cluster.
"""

from __future__ import annotations

import threading
import weakref
from typing import NamedTuple

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver

# One client per cache backend instance (Django makes one per thread). Django builds a new
# redis.Redis around its pool on every call, which costs about a round trip by itself.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# What redis_client() answered in this thread, with the settings generation it answered for:
# looking the backend up in ``caches`` costs more than the rest of a queued use.
_answered = threading.local()
_generation = [0]  # bumped whenever CACHES changes (tests), which makes every thread ask again


@receiver(setting_changed)
def _caches_changed(*, setting, **kwargs) -> None:
    if setting == "CACHES":
        _generation[0] += 1


class Changes(NamedTuple):
    """Counters to add to and integers to set, as ``add_and_set`` takes them."""

    deltas: dict[str, int]
    values: dict[str, int]


NO_CHANGES = Changes({}, {})

# Run atomically by Redis: nothing else runs between its commands. KEYS[1] is the window's
# counter (the places taken in it); ARGV[1] is its lifetime in seconds, ARGV[2] the limit,
# ARGV[3] the most places to take. Then one "op, number" pair per key after the first: op
# "add" or "set" always, "add_within" or "set_within" only if at least one place was taken.
# Returns the number of places taken (0: the window is full).
_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1])) or 0
local taken = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) - used)
if taken > 0 then
  redis.call('INCRBY', KEYS[1], taken)
else
  taken = 0
end
if redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
for i = 2, #KEYS do
  local op, number = ARGV[2 * i], ARGV[2 * i + 1]
  if op == 'add' or (op == 'add_within' and taken > 0) then
    redis.call('INCRBY', KEYS[i], number)
  elseif op == 'set' or (op == 'set_within' and taken > 0) then
    redis.call('SET', KEYS[i], number)
  end
end
return taken
"""

# KEYS: for each version a lease, a counter and a stored time. ARGV: the leases' value and
# lifetime (s). For each free lease: take it, move the counter's value out (leaving 0) and
# read the time: {1, taken, time or -1}. For each held one: {0, the lease's value or -1, -1}.
_CLAIM_AND_TAKE = """
local out = {}
for i = 1, #KEYS, 3 do
  if redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2], 'NX') then
    local taken = redis.call('GETSET', KEYS[i + 1], 0)
    local at = redis.call('GET', KEYS[i + 2])
    out[#out + 1] = 1
    out[#out + 1] = tonumber(taken) or 0
    out[#out + 1] = tonumber(at) or -1
  else
    out[#out + 1] = 0
    out[#out + 1] = tonumber(redis.call('GET', KEYS[i])) or -1
    out[#out + 1] = -1
  end
end
return out
"""
_scripts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _script(client, text: str):
    """``text`` registered with ``client`` once: later calls send only its SHA (EVALSHA), and
    redis-py loads it again by itself if the server has forgotten it."""
    registered = _scripts.setdefault(client, {})
    script = registered.get(text)
    if script is None:
        script = registered[text] = client.register_script(text)
    return script


def redis_client():
    """The Redis client behind Django's cache, or None when the cache is not Redis."""
    answered = getattr(_answered, "client", None)
    if answered is not None and answered[0] == _generation[0]:
        return answered[1]
    generation = _generation[0]  # before the look-up, so a change during it is not missed
    client = _redis_client_of(caches["default"])
    _answered.client = (generation, client)
    return client


def _redis_client_of(backend):
    if not isinstance(backend, RedisCache):
        return None
    client = _clients.get(backend)
    if client is None:
        # Django's backend keeps its client one attribute down; write=True is the primary
        # server, where Django's own incr and add go too.
        client = _clients[backend] = backend._cache.get_client(None, write=True)
    return client


def add_and_set(deltas: dict[str, int], values: dict[str, int]) -> None:
    """Add each delta to its counter (created at 0 if missing, never expiring) and set each
    integer in ``values``. Atomic per key; one round trip on Redis."""
    client = redis_client()
    if client is not None:
        send(client, Changes(deltas, values))
        return
    for key, delta in deltas.items():
        add(key, delta)
    for key, value in values.items():
        cache.set(key, int(value), timeout=None)


def add(key: str, delta: int) -> None:
    """Atomically add ``delta`` to one counter, creating it if missing (and never expiring)."""
    try:
        cache.incr(key, delta)
    except ValueError:
        if not cache.add(key, delta, timeout=None):
            cache.incr(key, delta)  # another process created it between our two calls


def count_in_window(key: str, timeout: int) -> int:
    """Add one to a counter that expires ``timeout`` seconds after its first count; return it.

    Two processes opening the window at once never lose a count: creation is an atomic
    add (SET NX on Redis) and every count an atomic increment.
    """
    client = redis_client()
    if client is not None:
        full_key = cache.make_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.set(full_key, 0, ex=timeout, nx=True)
        pipe.incr(full_key)
        return pipe.execute()[1]
    try:
        return cache.incr(key)
    except ValueError:
        if cache.add(key, 1, timeout=timeout):
            return 1
        return cache.incr(key)


def reserve(
    window_key: str,
    timeout: int,
    limit: int,
    most: int,
    always: Changes = NO_CHANGES,
    within_limit: Changes = NO_CHANGES,
) -> int:
    """Take up to ``most`` of the ``limit`` places in a window that expires ``timeout`` seconds
    after it opens; apply ``always``, and ``within_limit`` if a place was taken. Returns the
    number of places taken: 0 when the window is full.

    On Redis one Lua script: one round trip, and atomic, so processes taking places at once
    never take more than ``limit`` between them. Elsewhere it counts one request in the
    window (``count_in_window``) and takes at most that one place.
    """
    client = redis_client()
    if client is None:
        taken = 1 if count_in_window(window_key, timeout) <= limit else 0
        add_and_set(*always)
        if taken:
            add_and_set(*within_limit)
        return taken
    keys, args = [cache.make_key(window_key)], [int(timeout), int(limit), int(most)]
    for changes, suffix in ((always, ""), (within_limit, "_within")):
        for key, delta in changes.deltas.items():
            keys.append(cache.make_key(key))
            args += ["add" + suffix, int(delta)]
        for key, value in changes.values.items():
            keys.append(cache.make_key(key))
            args += ["set" + suffix, int(value)]
    return int(_script(client, _RESERVE)(keys=keys, args=args))


def send(client, changes: Changes, make_key=None) -> None:
    """``add_and_set`` on a given Redis client (one pipeline), from any thread. ``make_key``
    is the key function of the cache the changes were made for (this thread's by default)."""
    make_key = make_key or cache.make_key
    pipe = client.pipeline(transaction=False)
    for key, delta in changes.deltas.items():
        pipe.incrby(make_key(key), delta)
    for key, value in changes.values.items():
        pipe.set(make_key(key), int(value))
    pipe.execute()


class Claimed(NamedTuple):
    """What ``claim_and_take`` found: whether it won, and what it took or what holds the key."""

    won: bool
    held: int | None  # the lease's value: ours if won, else the winner's
    taken: int  # the counter's value, moved out (0 if not won)
    value: int | None  # the stored integer read alongside (None if missing or not won)


def claim_and_take(lease_key: str, value: int, timeout: int, count_key: str, value_key: str):
    """``claim(lease_key, value, timeout)``; if won, ``take(count_key)`` and ``get(value_key)``.

    On Redis one Lua script (one round trip): a flush costs one call to the cache, not three.
    """
    return claim_and_take_many([(lease_key, count_key, value_key)], value, timeout)[0]


def claim_and_take_many(
    items: list[tuple[str, str, str]], value: int, timeout: int
) -> list[Claimed]:
    """``claim_and_take`` for each (lease key, count key, value key), all in one round trip
    on Redis (one script, atomic as a whole). The answers come in the order of ``items``."""
    client = redis_client()
    if client is None:
        answers = []
        for lease_key, count_key, value_key in items:
            won, held = claim(lease_key, value, timeout)
            if won:
                answers.append(Claimed(True, held, take(count_key), get(value_key)))
            else:
                answers.append(Claimed(False, held, 0, None))
        return answers
    if not items:
        return []
    keys = [cache.make_key(key) for item in items for key in item]
    flat = _script(client, _CLAIM_AND_TAKE)(keys=keys, args=[int(value), int(timeout)])
    answers = []
    for i in range(0, len(flat), 3):
        won, number, stored = int(flat[i]), int(flat[i + 1]), int(flat[i + 2])
        if won:
            answers.append(
                Claimed(True, int(value), max(number, 0), stored if stored >= 0 else None)
            )
        else:
            answers.append(Claimed(False, number if number >= 0 else None, 0, None))
    return answers


def claim(key: str, value: int, timeout: int) -> tuple[bool, int | None]:
    """Set ``key`` to ``value`` for ``timeout`` seconds unless it is set: (won, value held).

    Atomic (SET NX on Redis, ``add`` elsewhere): of two processes claiming at once, one wins.
    The loser learns the value the winner stored. One round trip on Redis.
    """
    client = redis_client()
    if client is not None:
        full_key = cache.make_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.set(full_key, int(value), ex=timeout, nx=True)
        pipe.get(full_key)
        won, held = pipe.execute()
        return bool(won), int(held) if held is not None else None
    if cache.add(key, int(value), timeout=timeout):
        return True, int(value)
    return False, cache.get(key)


def take(key: str) -> int:
    """Move a counter's value out of the cache, leaving 0: exactly once, whoever else takes.

    On Redis, one GETSET: atomic. Elsewhere, ``decr`` by what was read: if another taker read
    the same value and decremented first, ours goes below zero by what it took; we hand that
    part back and keep the rest, so between the two of them every count is taken once.
    """
    client = redis_client()
    if client is not None:
        held = client.getset(cache.make_key(key), 0)
        return max(int(held), 0) if held is not None else 0
    pending = cache.get(key) or 0
    if pending <= 0:
        return 0
    left = cache.decr(key, pending)
    if left >= 0:
        return pending
    give_back = min(-left, pending)
    cache.incr(key, give_back)
    return pending - give_back


def get(key: str) -> int | None:
    """A counter's or stored integer's value (None if missing). One round trip on Redis."""
    client = redis_client()
    if client is not None:
        held = client.get(cache.make_key(key))
        return int(held) if held is not None else None
    return cache.get(key)
