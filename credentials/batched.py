"""Counter changes a process holds for up to a second, then sends to Redis in one go.

Introspection counts two uses per request. Sending them with every request costs a round trip
to Redis, which on a loaded machine is the most expensive part of the request: the process
waits for Redis to be scheduled, then to be scheduled again itself. Instead the changes are
summed here, per key and in place (a request adds to a dictionary, nothing more), and leave
the process

- within ``SEND_SECONDS``, from a background thread, in one pipeline, so a process that goes
  quiet still delivers what it counted: another process's ``usage.latest_use`` is at most
  that far behind;
- or at once, on ``send_now()``: before a flush or a read of the counters in this process,
  and when the process exits.

A process killed outright loses at most its last ``SEND_SECONDS`` of counts; a send that fails
is logged and its changes are lost, as a use is when the cache is down. With any cache but
Redis ``add_later`` is ``counters.add_and_set`` at once: there is no round trip to save.

Only version ids, counts and times pass through here: never a secret or a digest.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from django.core.cache import caches

from . import counters

logger = logging.getLogger(__name__)

SEND_SECONDS = 1.0

_lock = threading.Lock()
# Per Redis client: the key function of the cache the changes are for (a sender thread's own
# cache could be configured otherwise), and what that client has yet to receive, summed.
_queued: dict[object, tuple[object, counters.Changes]] = {}
# Whether this process's sender thread is running: set when it starts, cleared in a forked
# child (which has no threads but the one that forked). A flag rather than a comparison of
# process ids, which would cost a system call on every use.
_sender_running = False


def add_later(changes: counters.Changes) -> None:
    """Apply ``changes`` (as ``counters.add_and_set``) within ``SEND_SECONDS``."""
    client = counters.redis_client()
    if client is None:
        counters.add_and_set(*changes)
        return
    with _lock:
        queued = _queued.get(client)
        if queued is None:
            queued = _queued[client] = (caches["default"].make_key, counters.Changes({}, {}))
        deltas = queued[1].deltas
        for key, delta in changes.deltas.items():
            deltas[key] = deltas.get(key, 0) + delta
        queued[1].values.update(changes.values)
    if not _sender_running:
        _start_sender()


def send_now() -> None:
    """Send everything queued, now, from the calling thread. Never raises."""
    with _lock:
        batches = list(_queued.items())
        _queued.clear()
    for client, (make_key, changes) in batches:
        try:
            counters.send(client, changes, make_key)
        except Exception:
            logger.exception(
                "Could not send %d queued counter changes; they are lost",
                len(changes.deltas) + len(changes.values),
            )


def forget() -> None:
    """Drop what is queued without sending it (tests start each case from nothing)."""
    with _lock:
        _queued.clear()


def _start_sender() -> None:
    global _sender_running
    with _lock:
        if _sender_running:
            return
        _sender_running = True
    # A daemon thread: it never holds up the process's exit (the atexit hook sends the rest).
    threading.Thread(target=_send_forever, name="keyturn-counters", daemon=True).start()


def _send_forever() -> None:
    while True:
        time.sleep(SEND_SECONDS)
        send_now()


def _after_fork_in_child() -> None:
    # A forked worker starts with nothing queued (the parent sends its own) and its own lock
    # (the parent's may have been held by a thread that does not exist in the child).
    global _lock, _queued, _sender_running
    _lock = threading.Lock()
    _queued = {}
    _sender_running = False


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(send_now)
