"""Resolve a presented bearer secret to the version it belongs to: the hot path.

Cost per call, in order: a length and format check with the checksum (garbage stops here,
before any hashing or query); one HMAC-SHA256 per configured hash key; one indexed SELECT on
the unique digest column, joined to its credential and app. The SELECT is written by hand
and run on the driver's cursor (SQLite) or through libpq itself (PostgreSQL) because the ORM's
query building, and even Django's cursor wrapper, cost more than the lookup itself on this path
(see docs/benchmarks.md).

On PostgreSQL the lookup can also be sent ahead (``prefetch_bearers``): introspection sends it
as soon as the request's form is read, and the rest of the middleware runs while the server
answers; ``verify_bearers`` then reads that answer instead of asking again.
"""

from __future__ import annotations

import json
import logging
import select
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from psycopg import pq
from psycopg.adapt import Transformer

from . import crypto
from .models import App, Credential, CredentialVersion, State

logger = logging.getLogger(__name__)


class VerifiedKey(NamedTuple):
    """The version a presented secret matched, with what callers need to answer about it.

    A named tuple rather than a frozen dataclass: as immutable, and built several µs faster on
    a path that runs for every presented key.
    """

    version_id: int
    public_id: uuid.UUID
    number: int
    state: str  # "active" or "retiring"
    credential_id: int
    kind: str
    scopes: tuple[str, ...]
    client_id: str
    activated_at: datetime
    expires_at: datetime | None
    retire_at: datetime | None


_V, _C, _A = (model._meta.db_table for model in (CredentialVersion, Credential, App))
_SQL_CACHE: dict[tuple[str, str, int], str] = {}


def _lookup_sql(vendor: str, mark: str, digest_count: int) -> str:
    """The lookup for ``vendor`` with ``mark`` placeholders ("?" for the bare SQLite driver,
    "%s" for Django's cursors, "$" for libpq's numbered ones): built once, never rewritten."""
    sql = _SQL_CACHE.get((vendor, mark, digest_count))
    if sql is None:
        times = "v.activated_at, v.expires_at, v.retire_at"
        scopes = "c.scopes"
        if vendor == "sqlite":
            # As text: Django's converter for SQLite's "datetime" columns is a regular
            # expression per value; ``_aware`` reads the text with datetime.fromisoformat.
            times = ", ".join(f"CAST({column} AS TEXT)" for column in times.split(", "))
        else:
            # As text, which psycopg loads in C, where its jsonb loader is Python; ``_scopes``
            # parses each distinct value once.
            scopes = "CAST(c.scopes AS TEXT)"
        marks = [f"${n}" if mark == "$" else mark for n in range(1, digest_count + 3)]
        # Table names come from model metadata; every value is a bound parameter.
        sql = (
            f"SELECT v.id, v.public_id, v.number, v.state, v.digest, {times}, "  # noqa: S608
            f"c.id, c.kind, {scopes}, a.client_id "
            f"FROM {_V} v JOIN {_C} c ON c.id = v.credential_id JOIN {_A} a ON a.id = c.app_id "
            f"WHERE v.digest IN ({', '.join(marks[:-2])}) AND v.state IN ({', '.join(marks[-2:])})"
        )
        _SQL_CACHE[(vendor, mark, digest_count)] = sql
    return sql


def _lookup_params(digests: list[str]) -> list[str]:
    """The lookup's parameters: the digests, then the two states that verify."""
    return [*digests, State.ACTIVE, State.RETIRING]


def _statement_name(params: list[str]) -> bytes:
    return b"keyturn_verify_%d" % len(params)  # one prepared statement per digest count


def _fetch_rows(digests: list[str]) -> list[tuple]:
    """Run the lookup. The fast path skips Django's cursor wrapper (about half the cost here)
    but not its error translation; while queries are being logged (DEBUG, or a test counting
    them) it goes through Django's cursor so the query is seen like any other."""
    # One look-up of the thread's connection: each attribute read through the
    # ``django.db.connection`` proxy goes through asgiref's Local again, several µs a call.
    conn = connections[DEFAULT_DB_ALIAS]
    params = _lookup_params(digests)
    vendor = conn.vendor
    if conn.queries_logged:
        with conn.cursor() as cursor:  # Django's cursors take "%s" on every backend
            cursor.execute(_lookup_sql(vendor, "%s", len(digests)), params)
            return cursor.fetchall()
    sql = _lookup_sql(vendor, "?" if vendor == "sqlite" else "$", len(digests))
    try:
        return _run_lookup(conn, vendor, sql, params)
    except (InterfaceError, OperationalError) as failed:
        # The health check below is taken as done instead of run: on PostgreSQL it is a
        # `SELECT 1` round trip, as dear as the lookup itself. A connection that died since
        # the last request fails here instead; outside a transaction the read is simply
        # retried once on a fresh connection, which is what the health check would have done.
        if conn.in_atomic_block:
            raise
        # Said, so that a failure that is not a lost connection does not pass unseen behind
        # a retry that works; only the error's class, never its text (it could quote values).
        logger.warning(
            "Key lookup failed (%s); retrying once on a new connection", type(failed).__name__
        )
        conn.close()
        return _run_lookup(conn, vendor, sql, params)


def _run_lookup(conn, vendor: str, sql: str, params: list) -> list[tuple]:
    # What Django's own cursor() does first, but the health check: refuse a connection
    # shared across threads, then connect.
    conn.health_check_done = True
    conn.validate_thread_sharing()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        if vendor == "postgresql":
            prepare = settings.PORTAL_DB_PREPARED_STATEMENTS
            return _postgresql_rows(conn, sql, params, prepare=prepare)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()


# --------------------------------------------------------------------------- PostgreSQL


class _OnConnection(NamedTuple):
    """What the lookup keeps for one psycopg connection, on Django's connection wrapper (so it
    goes with the wrapper's next connection, and the old one can be freed)."""

    pg: object  # the psycopg connection it belongs to
    prepared: set[bytes]  # statement names prepared on it
    loader: Transformer  # one per connection, as a psycopg cursor keeps one: it caches loaders


def _postgresql_rows(conn, sql: str, params: list[str], *, prepare: bool) -> list[tuple]:
    """The lookup's rows, run through libpq itself (``psycopg.pq``): one blocking call that
    sends, waits and reads in C, where psycopg's cursor spends about 50 µs of Python per call
    on this path. ``sql`` has libpq's ``$n`` placeholders. Results come in binary, loaded by
    psycopg's own C loaders with the connection's adapters.

    A named prepared statement, so that PostgreSQL plans the join once per connection; with
    ``PORTAL_DB_PREPARED_STATEMENTS`` off (PgBouncer older than 1.21), an unnamed one each
    time. A statement the server has forgotten (``DISCARD ALL``, a pooler) is prepared again:
    at once outside a transaction; inside one the read has failed and aborted it, and the
    next lookup prepares it. Errors are psycopg's own exceptions, for Django's
    ``wrap_database_errors`` to translate.
    """
    pg = conn.connection
    values = [param.encode() for param in params]
    sent = _take_sent(conn)
    if sent is not None and (sent.pg is not pg or sent.values != values or not pg.autocommit):
        _drain(sent.pg)  # sent for other secrets, or on a connection since replaced
        sent = None
    if not pg.autocommit and pg.pgconn.transaction_status == pq.TransactionStatus.IDLE:
        # Django opened a transaction that psycopg has yet to BEGIN: let psycopg's cursor do
        # it, so that the read belongs to that transaction like any other query in it.
        with psycopg.Cursor(pg) as cursor:
            percent = _lookup_sql(conn.vendor, "%s", len(params) - 2)  # psycopg's placeholders
            cursor.execute(percent, params, binary=True)
            return cursor.fetchall()
    kept = _kept(conn, pg)
    name = _statement_name(params)
    binary = pq.Format.BINARY
    with pg.lock:
        if sent is not None:  # sent ahead by prefetch_bearers: only its answer is left to read
            result = _answer_to_sent(pg)
        elif not prepare:
            result = pg.pgconn.exec_params(sql.encode(), values, result_format=binary)
        else:
            if name not in kept.prepared:
                _prepare(pg, kept, name, sql)
            result = pg.pgconn.exec_prepared(name, values, result_format=binary)
        if (
            prepare
            and result.status != pq.ExecStatus.TUPLES_OK
            and result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000"  # forgotten
        ):
            kept.prepared.discard(name)
            if pg.pgconn.transaction_status == pq.TransactionStatus.IDLE:
                # Outside a transaction nothing was aborted: prepare it again, retry once.
                _prepare(pg, kept, name, sql)
                result = pg.pgconn.exec_prepared(name, values, result_format=binary)
    _check(pg, result, pq.ExecStatus.TUPLES_OK)
    kept.loader.set_pgresult(result)
    return kept.loader.load_rows(0, result.ntuples, tuple)


def _check(pg, result, expected) -> None:
    """Raise what psycopg's cursor would have raised for a result that is not ``expected``."""
    if result.status == expected:
        return
    if pg.pgconn.status == pq.ConnStatus.BAD:  # the connection is gone (Django retries once)
        raise psycopg.OperationalError(
            f"the connection to the server was lost: {pg.pgconn.get_error_message()}"
        )
    raise psycopg.errors.error_from_result(result, encoding=pg.info.encoding)


def _kept(conn, pg) -> _OnConnection:
    kept = getattr(conn, "_keyturn_lookup", None)
    if kept is None or kept.pg is not pg:
        kept = conn._keyturn_lookup = _OnConnection(pg, set(), Transformer(pg))
    return kept


def _prepare(pg, kept: _OnConnection, name: bytes, sql: str) -> None:
    _check(pg, pg.pgconn.prepare(name, sql.encode(), None), pq.ExecStatus.COMMAND_OK)
    kept.prepared.add(name)


# --------------------------------------------------------------------------- sent ahead


class _Sent(NamedTuple):
    """A lookup ``prefetch_bearers`` sent whose answer nobody has read yet."""

    pg: object  # the psycopg connection it was sent on
    values: list[bytes]  # its parameters: digests (never a secret) and the two states


@sensitive_variables("presented")
def prefetch_bearers(presented: Sequence[object], *, digests: list[list[str]] | None = None):
    """Send the lookup that ``verify_bearers(presented)`` is about to make, without waiting.
    ``digests``, if given, must be ``bearer_digests(presented)`` (so they are hashed once).
    Returns the connection it was sent on, for ``discard_prefetch``, or None if not sent.

    For introspection (``introspection.introspection_fast_path``): the query is on its way while
    the rest of the request's middleware runs, and ``verify_bearers`` then only reads the
    answer, so the round trip to the server no longer adds to the request's time. The read
    happens when the request arrives, not later: a revoke committed before that is seen.

    Only on PostgreSQL, on a connection already open, outside any transaction, without
    ``ATOMIC_REQUESTS`` (the view's transaction would begin while the answer is on its way,
    which psycopg refuses) and while nobody counts queries; anything else, or anything going
    wrong here, leaves the lookup to ``verify_bearers`` as usual (which reports errors
    properly). Until the answer is read,
    any other query through Django's cursors reads and drops it first; ``discard_prefetch``
    drops it at the end of the request if nobody read it. Whoever reads it waits for the
    socket in Python, so other threads run meanwhile.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if (
        conn.vendor != "postgresql"
        or conn.queries_logged
        or conn.in_atomic_block
        or conn.settings_dict.get("ATOMIC_REQUESTS")
    ):
        return None
    every = _all_digests(bearer_digests(presented) if digests is None else digests)
    if not every:
        return None
    discard_prefetch(conn)
    try:
        conn.validate_thread_sharing()
        pg = conn.connection
        if pg is None or pg.closed:
            return None  # none open yet: the view opens it (once, and reports it if it fails)
        conn.health_check_done = True  # as _run_lookup does; a dead connection fails there
        if not pg.autocommit or pg.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return None
        params = _lookup_params(every)
        sql = _lookup_sql(conn.vendor, "$", len(every))
        values = [param.encode() for param in params]
        with pg.lock:
            if settings.PORTAL_DB_PREPARED_STATEMENTS:
                name = _statement_name(params)
                kept = _kept(conn, pg)
                if name not in kept.prepared:
                    _prepare(pg, kept, name, sql)
                pg.pgconn.send_query_prepared(name, values, result_format=pq.Format.BINARY)
            else:
                pg.pgconn.send_query_params(sql.encode(), values, result_format=pq.Format.BINARY)
            # Recorded at once, so that whatever happens next drops the answer when it comes.
            conn._keyturn_sent = _Sent(pg, values)
            conn.execute_wrappers.append(_read_sent_first)
            _flush(pg.pgconn)
    except Exception:  # only the head start is lost: verify_bearers asks, and reports errors
        discard_prefetch(conn)
        return None
    return conn


def discard_prefetch(conn=None) -> None:
    """Read and drop the answer to a lookup sent ahead that nobody read (end of request), on
    ``conn`` (what ``prefetch_bearers`` returned) or the thread's default connection."""
    sent = _take_sent(connections[DEFAULT_DB_ALIAS] if conn is None else conn)
    if sent is not None:
        _drain(sent.pg)


def _take_sent(conn) -> _Sent | None:
    sent = conn.__dict__.pop("_keyturn_sent", None)
    if sent is not None and _read_sent_first in conn.execute_wrappers:
        conn.execute_wrappers.remove(_read_sent_first)
    return sent


def _read_sent_first(execute, sql, params, many, context):
    """Django's cursor on a connection with an unread answer: drop the answer first, or
    libpq would refuse the new query (one command at a time)."""
    sent = _take_sent(context["connection"])
    if sent is not None:
        _drain(sent.pg)
    return execute(sql, params, many, context)


def _answer_to_sent(pg):
    """The answer to the query in flight on ``pg``; the connection is then free for the next
    command. Raises psycopg's OperationalError if the connection is lost meanwhile."""
    result = _next_result(pg.pgconn)
    while _next_result(pg.pgconn) is not None:  # up to the end-of-command marker
        pass
    if result is None:
        raise psycopg.OperationalError("the lookup sent ahead got no answer")
    return result


def _drain(pg) -> None:
    """Read and drop whatever answer is on its way on ``pg``. A connection that broke
    meanwhile is left as it is: its next use fails and is replaced as any broken one is."""
    if pg.closed:
        return
    with pg.lock:
        try:
            while _next_result(pg.pgconn) is not None:
                pass
        except psycopg.Error:
            pass


def _next_result(pgconn):
    """``PQgetResult`` once libpq has what it needs: it is busy again after each result until
    the server's next message (the end-of-command marker among them) has come in."""
    _wait_for_answer(pgconn)
    return pgconn.get_result()


def _wait_for_answer(pgconn) -> None:
    """Wait until libpq holds the whole answer, reading it as it comes.

    Waiting here, in ``poll``, lets other threads of the process run; ``PQgetResult`` would
    wait inside libpq holding the GIL (psycopg's binary build calls it without releasing it,
    as psycopg itself only calls it once the answer is in)."""
    if not pgconn.is_busy():
        return
    pgconn.consume_input()  # what has come in already: often the whole answer, and no poll
    poller = None
    while pgconn.is_busy():
        if poller is None:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN)
        poller.poll()
        pgconn.consume_input()


def _flush(pgconn) -> None:
    """Send what libpq has queued: psycopg's connections are non-blocking, so a query may not
    leave in one go. While waiting to write, read what the server sends (libpq asks this)."""
    poller = None
    while pgconn.flush():
        if poller is None:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLOUT)
        if any(events & select.POLLIN for _, events in poller.poll()):
            pgconn.consume_input()


def verify_bearer(presented: object, *, now: datetime | None = None) -> VerifiedKey | None:
    """Return the active or retiring version ``presented`` belongs to, or None.

    None for anything else: non-strings, oversized or malformed input, a bad checksum (all
    without touching the database), an unknown secret, or a version that is revoked, expired,
    past its expiry time or past the end of its overlap. Digests are compared in constant time.
    Revocation is read from the database on every call, never from a cache, so a revoke takes
    effect on the very next verification in every process.
    """
    return verify_bearers([presented], now=now)[0]


def verify_bearers(
    presented: Sequence[object],
    *,
    now: datetime | None = None,
    digests: list[list[str]] | None = None,
) -> list[VerifiedKey | None]:
    """``verify_bearer`` for several secrets at once, in one query: the answer for each, in order.

    For a request that carries two secrets (introspection: the caller's key and the token it
    asks about), this saves a round trip to the database; each answer is exactly what
    ``verify_bearer`` would have given for that secret alone. ``digests``, if given, must be
    ``bearer_digests(presented)``, computed earlier for the same secrets.
    """
    wanted = bearer_digests(presented) if digests is None else digests
    every = _all_digests(wanted)
    if not every:
        return [None] * len(presented)
    rows = {row[4]: row for row in _fetch_rows(every)}  # keyed by the stored digest
    now = now or timezone.now()
    answers = []
    for secret, own in zip(presented, wanted, strict=True):
        row = next((rows[digest] for digest in own if digest in rows), None)
        answers.append(None if row is None else _verified(row, secret, own, now))
    return answers


def bearer_digests(presented: Sequence[object]) -> list[list[str]]:
    """Per secret, the digests it would be stored under (none if it is not well formed).
    Digests only, not the secrets, so they may be kept for the rest of the request (though,
    like the secrets, never logged or cached)."""
    keyring = settings.PORTAL_TOKEN_HASH_KEYS
    return [
        [digest for _, digest in crypto.token_digests(secret, keyring)]
        if crypto.token_is_well_formed(secret)
        else []
        for secret in presented
    ]


def _all_digests(wanted: list[list[str]]) -> list[str]:
    return list(dict.fromkeys(digest for digests in wanted for digest in digests))


_scopes_parsed: dict[str, tuple[str, ...]] = {}  # SQLite's JSON text, parsed once per value


def _verified(row: tuple, presented: str, digests: list[str], now: datetime):
    """The VerifiedKey for a matching row, or None if its kind or times say it must not verify."""
    (
        version_id,
        public_id,
        number,
        state,
        stored_digest,
        activated_at,
        expires_at,
        retire_at,
        credential_id,
        kind,
        scopes,
        client_id,
    ) = row
    for digest in digests:
        if crypto.digest_matches(stored_digest, digest):
            break
    else:
        return None
    if kind != crypto.token_kind(presented):
        return None
    expires_at, retire_at = _aware(expires_at), _aware(retire_at)
    if expires_at is not None and now >= expires_at:
        return None
    if state == State.RETIRING and (retire_at is None or now >= retire_at):
        return None
    return VerifiedKey(  # by position, in the order of its fields (keywords cost more here)
        version_id,
        public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(public_id),
        number,
        state,
        credential_id,
        kind,
        _scopes(scopes),
        client_id,
        _aware(activated_at),
        expires_at,
        retire_at,
    )


def _scopes(stored) -> tuple[str, ...]:
    """The scopes column as a tuple. The lookup reads it as JSON text on every database (a
    list is taken as it is, should a driver hand one over parsed).

    The text is parsed once per distinct value (a credential's scopes, not anything about
    its validity); the memo is bounded so that odd data cannot grow it without end.
    """
    if not isinstance(stored, str):
        return tuple(stored)
    parsed = _scopes_parsed.get(stored)
    if parsed is None:
        parsed = tuple(json.loads(stored))
        if len(_scopes_parsed) >= 1024:
            _scopes_parsed.clear()
        _scopes_parsed[stored] = parsed
    return parsed


def _aware(value) -> datetime | None:
    """Times from the row as aware datetimes: psycopg's already are; SQLite's come as text in
    UTC (``_lookup_sql``), or as naive datetimes through Django's cursor."""
    if value is None:
        return None
    if type(value) is str:
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
