"""Fixed-window rate limits in the shared cache, for every caller-facing API.

One window per minute and bucket, counted with ``counters.count_in_window`` (an atomic add
then increment: processes opening a window together never lose a count; one pipelined round
trip on Redis). If the cache is down the request is let through and logged: a service
checking keys, or a scanner reporting a leak, matters more than the limit.
"""

from __future__ import annotations

import logging
import math
import time

from . import counters

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def seconds_to_wait(bucket: str, limit: int) -> int:
    """Count one request against ``bucket``; the seconds to wait if it is over ``limit`` requests
    this minute, else 0. ``limit`` 0 means no limit. ``bucket`` names the caller (a credential
    id, a source address): never a secret."""
    if not limit:
        return 0
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    try:
        count = counters.count_in_window(f"keyturn:rate:v1:{bucket}:{window}", WINDOW_SECONDS * 2)
    except Exception:
        logger.exception("Rate limit unavailable for %s; request let through", bucket)
        return 0
    if count <= limit:
        return 0
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
