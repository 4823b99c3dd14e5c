"""Atomic counters in Django's cache, in one round trip when the cache is Redis.

Last-use tracking and the introspection rate limit add to counters on every request. Django's
cache API gives atomic ``incr`` but costs two round trips per call on Redis (an EXISTS, then
the INCR) and cannot batch; on the hot path that was most of the request's time. With Django's
own ``RedisCache`` these functions send every command of a call in one pipeline; with any other
cache they fall back to the portable ``incr``/``add`` dance. Either way the keys are Django's
(``cache.make_key``) and the values plain integers, so ``cache.get``, ``cache.decr`` and the
rest of the cache API read and change the same counters.
"""

from __future__ import annotations

import weakref

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

# One client per cache backend instance (Django makes one per thread). Django builds a new
# redis.Redis around its pool on every call, which costs about a round trip by itself.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis():
    """The Redis client behind Django's cache, or None when the cache is not Redis."""
    backend = caches["default"]
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
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for key, delta in deltas.items():
            pipe.incrby(cache.make_key(key), delta)
        for key, value in values.items():
            pipe.set(cache.make_key(key), int(value))
        pipe.execute()
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
    client = _redis()
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


def claim(key: str, value: int, timeout: int) -> tuple[bool, int | None]:
    """Set ``key`` to ``value`` for ``timeout`` seconds unless it is set: (won, value held).

    Atomic (SET NX on Redis, ``add`` elsewhere): of two processes claiming at once, one wins.
    The loser learns the value the winner stored. One round trip on Redis.
    """
    client = _redis()
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
    client = _redis()
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
    client = _redis()
    if client is not None:
        held = client.get(cache.make_key(key))
        return int(held) if held is not None else None
    return cache.get(key)
