"""What the benchmarks in ``bench/`` share: a scratch database of their own, and their output.

Nothing here imports Django at module level: each script imports it after choosing its
settings module, and each settings module names its database and ``BENCH_SERVER_DATABASE``.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

# --------------------------------------------------------------------------- database


class ScratchDatabase:
    """The benchmark's own database: made empty before the run and removed after it."""

    def __init__(self):
        from django.conf import settings

        self.settings = settings.DATABASES["default"]
        self.server = settings.BENCH_SERVER_DATABASE
        self.is_sqlite = self.settings["ENGINE"] == "django.db.backends.sqlite3"
        if str(self.settings["NAME"]) == str(self.server["NAME"]):
            raise SystemExit("The benchmark's database must not be the portal's own.")

    def create(self) -> None:
        if self.is_sqlite:
            self._remove_sqlite_files()
        else:
            self._on_server("DROP DATABASE IF EXISTS {}", "CREATE DATABASE {}")

    def analyse(self) -> None:
        """Statistics (and, on PostgreSQL, a visibility map) as a database in service has."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE" if self.is_sqlite else "VACUUM ANALYZE")

    def drop(self) -> None:
        from django.db import connections

        connections.close_all()
        if self.is_sqlite:
            self._remove_sqlite_files()
        else:
            self._on_server("DROP DATABASE IF EXISTS {}")

    def describe(self) -> str:
        from django.db import connection

        if self.is_sqlite:
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}, file {self.settings['NAME']}"
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            (server_version,) = cursor.fetchone()
        where = f"{self.settings['HOST'] or 'local socket'}:{self.settings['PORT'] or 5432}"
        return f"PostgreSQL {server_version} at {where}, database {self.settings['NAME']}"

    def _remove_sqlite_files(self) -> None:
        path = Path(self.settings["NAME"])
        for suffix in ("", "-journal", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    def _on_server(self, *statements: str) -> None:
        import psycopg
        from psycopg import sql

        params = {
            "dbname": self.server["NAME"],
            "user": self.server.get("USER"),
            "password": self.server.get("PASSWORD"),
            "host": self.server.get("HOST"),
            "port": self.server.get("PORT"),
        }
        with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
            for statement in statements:
                conn.execute(sql.SQL(statement).format(sql.Identifier(self.settings["NAME"])))


# --------------------------------------------------------------------------- printing


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(header: list[str], body: list[list[str]]) -> str:
    """A Markdown table, padded so it reads as well in a terminal."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * widths[0], *(("-" * (width - 1)) + ":" for width in widths[1:])]
    return "\n".join([line(header), "| " + " | ".join(rule) + " |", *map(line, body)])


def step(what: str, run: Callable[[], object]):
    """Run one stage, telling stderr how long it took (stdout carries only the results)."""
    print(f"{what} ...", end=" ", file=sys.stderr, flush=True)
    began = time.perf_counter()
    result = run()
    print(f"{time.perf_counter() - began:.1f} s", file=sys.stderr)
    return result
