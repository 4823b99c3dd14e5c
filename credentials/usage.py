"""Last use of each version, counted in the cache and written to the database in batches.

A verification must not cost a database write, so each use only touches the cache: it adds
one to the version's counter and notes the time (``counters``: one round trip on Redis).
The database row (``last_used_at`` and ``use_count``) is brought up to date by a *flush*,
at most once per version every ``PORTAL_LAST_USE_FLUSH_SECONDS`` (the interval). A process
that counted a use writes it one interval later, on its next request after that (it looks
at most once a second), unless another process wrote the version in the meantime; and
``manage.py flush_last_use`` writes whatever a stopped or idle process left behind. So the
row is at most one interval, plus the time to that next request or run, behind the truth.

On Redis, introspection's uses do not even cost that round trip: they wait in the process for
up to a second and leave in one pipeline with everyone else's (``record_uses_later``,
``batched``), or ride along with the rate limit's reservation when the request makes one
(``reserve_and_record_uses``); a flush claims all the versions due at once
(``flush_versions``: one script, one transaction).

Across processes this relies on the cache being shared (Redis, ``CACHE_URL=redis://...``).
Django's in-process cache (the embedded default) keeps a counter per process: counts stay
exact, but each process writes on its own interval and a process that is stopped loses the
uses it had not yet written; ``flush_last_use`` run from another process cannot see them.

Only version ids, counts and times are kept in the cache: never a secret or a digest.
Nothing here raises: a cache or database failure is logged and the count is kept (or given
back) for the next flush, so it never fails the request that used the key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from . import batched, counters
from .models import BEARER_KINDS, VERIFYING_STATES, CredentialVersion

logger = logging.getLogger(__name__)

_PREFIX = "keyturn:use:v1"
# How often a process looks at the versions it has used (a monotonic check, no I/O).
_LOCAL_SWEEP_SECONDS = 1.0

_lock = threading.Lock()
# Versions this process counted and may still have to write, each with the monotonic time at
# which to try: a use costs no lease check, only a look at this dictionary.
_due: dict[int, float] = {}
_time_sent: dict[int, float] = {}  # when this process last sent each version's time of use
_last_local_sweep = 0.0


def _count_key(version_id: int) -> str:
    return f"{_PREFIX}:{version_id}:count"


def _at_key(version_id: int) -> str:
    return f"{_PREFIX}:{version_id}:at"


def _lease_key(version_id: int) -> str:
    return f"{_PREFIX}:{version_id}:lease"


def record_use(version_id: int, *, now: datetime | None = None) -> None:
    """Count one use of a version, now or at ``now``. See ``record_uses``."""
    record_uses([version_id], now=now)


def record_uses(version_ids: list[int], *, now: datetime | None = None) -> None:
    """Count one use of each version: one round trip to the cache (on Redis), no database.

    The first use of a version in this process schedules its write one interval later;
    whichever request of this process comes after that (or ``flush_last_use``) writes it.
    The time of use goes to the cache at most once a second per version and process, so
    ``last_used_at`` is exact to the second.
    """
    try:
        counters.add_and_set(*_changes(version_ids, now))
        _sweep_local()
    except Exception:  # a use must never fail because of its bookkeeping
        logger.exception("Could not record a use of versions %s", version_ids)


def record_uses_later(version_ids: list[int]) -> None:
    """``record_uses``, but sent to the cache within a second (``batched``) instead of now:
    no round trip on Redis. Never raises."""
    try:
        batched.add_later(_changes(version_ids, None))
        _sweep_local()
    except Exception:  # a use must never fail because of its bookkeeping
        logger.exception("Could not record a use of versions %s", version_ids)


def reserve_and_record_uses(
    window_key: str,
    timeout: int,
    limit: int,
    most: int,
    version_ids: list[int],
    version_ids_if_within: list[int],
) -> int:
    """Take up to ``most`` places in a rate-limit window and count uses, in one round trip.

    ``counters.reserve``: each version in ``version_ids`` counts one use (as ``record_uses``);
    so does each in ``version_ids_if_within``, if a place was taken. What this process has
    queued (``record_uses_later``) is left to the sender thread, so the script stays small.
    Returns the places taken. Unlike ``record_uses`` it raises if the cache fails, so that the
    rate limit, which called it, decides what the request does; the uses are then lost (and
    logged there).
    """
    taken = counters.reserve(
        window_key,
        timeout,
        limit,
        most,
        _changes(version_ids, None),
        _changes(version_ids_if_within, None),
    )
    if not taken:
        with _lock:  # their time was not sent: let the next use send it
            for version_id in version_ids_if_within:
                _time_sent.pop(version_id, None)
    try:
        _sweep_local()
    except Exception:
        logger.exception("Could not write the last use of versions due now")
    return taken


def _changes(version_ids: list[int], now: datetime | None) -> counters.Changes:
    """The cache changes that count one use of each version, with this process's bookkeeping
    (which versions to flush when, and whose time of use to send again)."""
    at_ms = int((now.timestamp() if now is not None else time.time()) * 1000)
    tick = time.monotonic()
    due = tick + settings.PORTAL_LAST_USE_FLUSH_SECONDS
    counts, times = {}, {}
    # Plain loops, the keys of _count_key and _at_key spelled out: this runs on every
    # introspection, where each function call shows.
    with _lock:
        for version_id in version_ids:
            counts[f"{_PREFIX}:{version_id}:count"] = 1
            _due.setdefault(version_id, due)
            if now is not None or tick - _time_sent.get(version_id, -1.0) >= 1.0:
                _time_sent[version_id] = tick
                times[f"{_PREFIX}:{version_id}:at"] = at_ms
    return counters.Changes(counts, times)


def flush_version(version_id: int) -> bool:
    """Write a version's counted uses to its row, unless it was written within the interval.

    The lease (an atomic claim with the interval as its timeout) lets one process per
    interval write; the count is taken atomically with it, so uses counted while it writes
    stay for the next flush. One round trip to the cache on Redis (a script), then the
    UPDATE. Returns True if this call took the lease.
    """
    return version_id in flush_versions([version_id])


def flush_versions(version_ids: list[int]) -> set[int]:
    """``flush_version`` for several versions at once: one round trip to the cache for all
    their leases and counts, and one transaction for all their rows. Returns the versions
    whose lease this call took. Never raises: a failure is logged, and the uses taken are
    given back for the next flush."""
    if not version_ids:
        return set()
    interval = settings.PORTAL_LAST_USE_FLUSH_SECONDS
    try:
        claims = counters.claim_and_take_many(
            [(_lease_key(pk), _count_key(pk), _at_key(pk)) for pk in version_ids],
            int((time.time() + interval) * 1000),
            interval,
        )
    except Exception:
        logger.exception("Could not write the last use of versions %s", version_ids)
        return set()
    won: dict[int, counters.Claimed] = {}
    for version_id, claimed in zip(version_ids, claims, strict=True):
        if claimed.won:
            won[version_id] = claimed
            continue
        # Another process wrote it lately: look again when its lease ends, not before.
        wait = (claimed.held / 1000 - time.time()) if claimed.held else interval
        with _lock:
            if version_id in _due:
                _due[version_id] = time.monotonic() + min(max(wait, 0.0), interval) + 0.05
    with _lock:
        for version_id in won:
            _due.pop(version_id, None)
    try:
        _write({pk: (claimed.taken, claimed.value) for pk, claimed in won.items()})
    except Exception:
        logger.exception("Could not write the last use of versions %s", sorted(won))
    return set(won)


_WRITE_CHUNK = 100  # versions per UPDATE: one statement each, CASE expressions of this size


def _write(taken: dict[int, tuple[int, int | None]]) -> None:
    """Add each version's taken uses to its row, all in one transaction (one commit), one
    UPDATE per hundred versions rather than one per version: a flush of a few hundred
    versions is then a few round trips to the database, not a few hundred."""
    taken = {pk: (count, at_ms) for pk, (count, at_ms) in taken.items() if count > 0}
    if not taken:
        return
    try:
        with transaction.atomic(using=router.db_for_write(CredentialVersion)):
            # Two flushes never write one version at once with Redis (its lease); with the
            # in-process cache, two workers can, and should their row locks cross, the
            # database aborts one, whose uses are given back below for the next flush.
            items = sorted(taken.items())
            for start in range(0, len(items), _WRITE_CHUNK):
                _update_rows(items[start : start + _WRITE_CHUNK])
    except Exception:
        for version_id, (count, _) in taken.items():  # give the uses back for the next flush
            counters.add(_count_key(version_id), count)
        with _lock:
            for version_id in taken:
                _due.setdefault(
                    version_id, time.monotonic() + settings.PORTAL_LAST_USE_FLUSH_SECONDS
                )
        raise


def _update_rows(items: list[tuple[int, tuple[int, int | None]]]) -> None:
    """One UPDATE for these versions: each row's count goes up by its own number and its
    last use moves to its own time, never backwards (a conditional expression, not a
    read-modify-write, so a slower flush of older uses cannot undo a newer one).

    Written by hand: the same statement built with the ORM (``Case`` of a hundred ``When``)
    took about 40 ms of Python to compile per expression, on the request that came due."""
    now = timezone.now()
    connection = connections[router.db_for_write(CredentialVersion)]
    ops = connection.ops
    counts, times, ids = [], [], []
    for version_id, (count, at_ms) in items:
        last_used = datetime.fromtimestamp(at_ms / 1000, tz=UTC) if at_ms else now
        counts += [version_id, count]
        times += [version_id, ops.adapt_datetimefield_value(last_used)]
        ids.append(version_id)
    whens = " ".join(["WHEN %s THEN %s"] * len(items))
    table, pk = ops.quote_name(CredentialVersion._meta.db_table), ops.quote_name("id")
    uses, last = ops.quote_name("use_count"), ops.quote_name("last_used_at")
    greatest = "MAX" if connection.vendor == "sqlite" else "GREATEST"  # SQLite's is max()
    new_time = f"(CASE {pk} {whens} END)"
    sql = (
        f"UPDATE {table} SET {uses} = {uses} + (CASE {pk} {whens} END), "  # noqa: S608
        f"{last} = {greatest}(COALESCE({last}, {new_time}), {new_time}) "
        f"WHERE {pk} IN ({', '.join(['%s'] * len(ids))})"
    )
    # Names come from model metadata; every value is a bound parameter.
    with connection.cursor() as cursor:
        cursor.execute(sql, [*counts, *times, *times, *ids])


def _take(version_id: int) -> int:
    """Move the version's pending count out of the cache (see ``counters.take``)."""
    return counters.take(_count_key(version_id))


def _sweep_local() -> None:
    """Flush the versions this process used whose interval is over (looked at once a second)."""
    global _last_local_sweep
    tick = time.monotonic()
    with _lock:
        if tick - _last_local_sweep < _LOCAL_SWEEP_SECONDS:
            return
        _last_local_sweep = tick
        versions = [version_id for version_id, due in _due.items() if due <= tick]
    flush_versions(versions)


def flush_pending(*, now: datetime | None = None) -> int:
    """Flush every version with uses waiting in the cache; return how many were written.

    For ``manage.py flush_last_use`` (cron, or the clock): it finds the versions that could
    have been used (verifying now, or stopped within a day) and asks the cache for their
    counters in batches, so uses counted by a process that has since stopped are written too.
    """
    now = now or timezone.now()
    batched.send_now()  # this process's queued uses first, so that they are written too
    recent = now - timedelta(days=1)
    candidates = (
        CredentialVersion.objects.filter(credential__kind__in=BEARER_KINDS)
        .filter(
            Q(state__in=VERIFYING_STATES) | Q(revoked_at__gte=recent) | Q(expired_at__gte=recent)
        )
        .values_list("pk", flat=True)
        .iterator(chunk_size=1000)
    )
    written = 0
    for chunk in _chunks(candidates, 1000):
        counts = cache.get_many([_count_key(version_id) for version_id in chunk])
        used = [pk for pk in chunk if (counts.get(_count_key(pk)) or 0) > 0]
        written += len(flush_versions(used))
    return written


def latest_use(version: CredentialVersion) -> datetime | None:
    """The latest use of ``version`` known anywhere: its row, or a use counted in the cache and
    not written yet (the row lags by up to one interval).

    For decisions that must not wait for the next flush, such as a rotation's check that the
    old version has gone quiet. With the in-process cache it sees only this process's uses.
    """
    known = version.last_used_at
    batched.send_now()  # what this process counted and has not sent yet
    try:
        at_ms = counters.get(_at_key(version.pk))
    except Exception:  # a failing cache leaves the row's answer
        logger.exception("Could not read the cached last use of version %s", version.pk)
        return known
    if not at_ms:
        return known
    cached = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return cached if known is None or cached > known else known


def pending_uses(version_id: int) -> int:
    """Uses counted in the cache and not yet written (for tests and diagnostics)."""
    batched.send_now()
    return cache.get(_count_key(version_id)) or 0


def forget_local_state() -> None:
    """Drop this process's list of versions to sweep (tests start each case from nothing)."""
    global _last_local_sweep
    with _lock:
        _due.clear()
        _time_sent.clear()
        _last_local_sweep = 0.0
    batched.forget()


def _chunks(items: Iterable[int], size: int):
    chunk: list[int] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
