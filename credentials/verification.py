"""Resolve a presented bearer secret to the version it belongs to: the hot path.

Cost per call, in order: a length and format check with the checksum (garbage stops here,
before any hashing or query); one HMAC-SHA256 per configured hash key; one indexed SELECT on
the unique digest column, joined to its credential and app. The SELECT is written by hand
and run on the driver's cursor (SQLite) or through libpq itself (PostgreSQL) because the ORM's
query building, and even Django's cursor wrapper, cost more than the lookup itself on this path
(see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.utils import timezone
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
    if not pg.autocommit and pg.pgconn.transaction_status == pq.TransactionStatus.IDLE:
        # Django opened a transaction that psycopg has yet to BEGIN: let psycopg's cursor do
        # it, so that the read belongs to that transaction like any other query in it.
        with psycopg.Cursor(pg) as cursor:
            percent = _lookup_sql(conn.vendor, "%s", len(params) - 2)  # psycopg's placeholders
            cursor.execute(percent, params, binary=True)
            return cursor.fetchall()
    kept = _kept(conn, pg)
    name = _statement_name(params)
    values = [param.encode() for param in params]
    binary = pq.Format.BINARY
    with pg.lock:  # psycopg lets other threads run while libpq waits for the server
        if not prepare:
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
    presented: Sequence[object], *, now: datetime | None = None
) -> list[VerifiedKey | None]:
    """``verify_bearer`` for several secrets at once, in one query: the answer for each, in order.

    For a request that carries two secrets (introspection: the caller's key and the token it
    asks about), this saves a round trip to the database; each answer is exactly what
    ``verify_bearer`` would have given for that secret alone.
    """
    wanted = bearer_digests(presented)
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
    """Per secret, the digests it would be stored under (none if it is not well formed)."""
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
