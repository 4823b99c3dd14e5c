"""Helpers for the tests that need PostgreSQL: a second connection to the test database, and
ending this thread's own connection from it, as a restart or a network cut would."""

import psycopg
from django.db import connection


def another_connection(**options) -> psycopg.Connection:
    """A connection of its own to the database the tests run on (not Django's)."""
    db = connection.settings_dict
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
    }
    return psycopg.connect(**{k: v for k, v in params.items() if v}, **options)


def kill_this_connection() -> int:
    """End the server process behind Django's connection; return that process's id."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with another_connection(autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    return pid
