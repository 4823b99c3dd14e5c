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
