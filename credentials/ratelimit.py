"""Fixed-window rate limits in the shared cache, for every caller-facing API.

One window per minute and bucket, counted with ``counters.count_in_window`` (an atomic add
then increment: processes opening a window together never lose a count; one pipelined round
trip on Redis).

A caller that also counts uses of keys (introspection) takes its places in the window in
blocks instead: one Lua script (``counters.reserve``) takes up to ``reservation_size(limit)``
places for this process and carries that request's use counters along, and the process then
spends those places without asking Redis again (the uses of those requests are queued:
``usage.record_uses_later``). Processes never take more than ``limit`` places between
them, so the limit holds across processes; the price is that a caller can be refused while
another process still holds places it reserved: at most ``reservation_size(limit) - 1`` per
other process and window (a limit under 400 a minute reserves one place at a time, exactly as
before). With any cache but Redis every request takes its one place.

If the cache is down the request is let through and logged (fail open): a service checking
keys, or a scanner reporting a leak, matters more than the limit, and every key is still
verified against the database. The uses that request made are lost, and logged.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from . import counters, usage

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_RESERVE_DIVISOR = 200  # a block is at most 1/200 of a window's places...
_RESERVE_MOST = 50  # ...and never more than this many

_lock = threading.Lock()
# Per bucket, the window this process holds places in and how many of them are left.
_reserved: dict[str, tuple[int, int]] = {}


def reservation_size(limit: int) -> int:
    """How many places of a window a process takes at a time for a limit of ``limit``."""
    return max(1, min(_RESERVE_MOST, limit // _RESERVE_DIVISOR))


def seconds_to_wait(
    bucket: str,
    limit: int,
    *,
    uses: list[int] | None = None,
    uses_if_allowed: list[int] | None = None,
) -> int:
    """Count one request against ``bucket``; the seconds to wait if it is over ``limit`` requests
    this minute, else 0. ``limit`` 0 means no limit. ``bucket`` names the caller (a credential
    id, a source address): never a secret.

    Given ``uses`` and ``uses_if_allowed`` (version ids), it also counts a use of each version
    in ``uses``, and of each in ``uses_if_allowed`` if the request is let through, as
    ``usage.record_uses`` would; the request then takes a place reserved by this process if it
    holds one (no round trip; its uses are queued), else reserves a block with its own uses
    riding along (one).
    """
    uses, uses_if_allowed = uses or [], uses_if_allowed or []
    if not limit:
        if uses or uses_if_allowed:
            usage.record_uses_later([*uses, *uses_if_allowed])
        return 0
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    try:
        if uses or uses_if_allowed:
            if _take_reserved(bucket, window):  # the common case: no round trip at all
                usage.record_uses_later([*uses, *uses_if_allowed])
                return 0
            taken = usage.reserve_and_record_uses(
                _window_key(bucket, window),
                WINDOW_SECONDS * 2,
                limit,
                reservation_size(limit),
                uses,
                uses_if_allowed,
            )
            if taken:
                with _lock:
                    _reserved[bucket] = (window, taken - 1)
            allowed = taken > 0
        else:
            allowed = counters.count_in_window(_window_key(bucket, window), WINDOW_SECONDS * 2)
            allowed = allowed <= limit
    except Exception:
        lost = [*uses, *uses_if_allowed]
        uncounted = f"; uses of versions {lost} not counted" if lost else ""
        logger.exception("Rate limit unavailable for %s; request let through%s", bucket, uncounted)
        return 0
    if allowed:
        return 0
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


def _window_key(bucket: str, window: int) -> str:
    return f"keyturn:rate:v1:{bucket}:{window}"


def _take_reserved(bucket: str, window: int) -> bool:
    """Spend one of the places this process reserved in ``window``, if it has one left."""
    with _lock:
        held_window, left = _reserved.get(bucket, (window, 0))
        if held_window != window or left <= 0:
            return False
        _reserved[bucket] = (window, left - 1)
        return True


def forget_reservations() -> None:
    """Drop this process's reserved places (tests start each case from nothing)."""
    with _lock:
        _reserved.clear()
