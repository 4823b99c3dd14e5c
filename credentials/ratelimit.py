"""Fixed-window rate limits in the shared cache, for every caller-facing API.

One window per minute and bucket, counted with ``counters.count_in_window`` (an atomic add
then increment: processes opening a window together never lose a count; one pipelined round
trip on Redis). A caller that also counts uses of keys (introspection) can have them ride
along: on Redis the window's count and the use counters are then one Lua script, one round
trip, atomic, so the limit holds exactly across processes.

If the cache is down the request is let through and logged (fail open): a service checking
keys, or a scanner reporting a leak, matters more than the limit, and every key is still
verified against the database. The uses that request made are lost, and logged.
"""

from __future__ import annotations

import logging
import math
import time

from . import counters, usage

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


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
    ``usage.record_uses`` would, in the same round trip as the request's count.
    """
    uses, uses_if_allowed = uses or [], uses_if_allowed or []
    if not limit:
        if uses or uses_if_allowed:
            usage.record_uses([*uses, *uses_if_allowed])
        return 0
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"keyturn:rate:v1:{bucket}:{window}"
    try:
        if uses or uses_if_allowed:
            count = usage.count_request_and_record_uses(
                key, WINDOW_SECONDS * 2, limit, uses, uses_if_allowed
            )
        else:
            count = counters.count_in_window(key, WINDOW_SECONDS * 2)
    except Exception:
        logger.exception(
            "Rate limit unavailable for %s; request let through, uses of versions %s not counted",
            bucket,
            [*uses, *uses_if_allowed],
        )
        return 0
    if count <= limit:
        return 0
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
