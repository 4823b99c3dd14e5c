"""Benchmark: the admin's pages and the audit CSV export, at 1,000 rows and at scale.

One database is measured twice: with 1,000 credential versions and 1,000 audit events
("small"), then grown in place to 100,000 versions and 1,000,000 events ("large"). At each
size the script renders, in-process with ``django.test.Client`` as a signed-in administrator:
the admin index (the dashboard), the credential changelist, the page of the one "busy"
credential that holds 1 % of all versions, that credential's timeline, the version changelist,
the audit log, and the audit log filtered to the busy credential. Each page is timed (median of
several renders, after warm-up) and its queries counted. Then the whole audit log is exported
as CSV and the streaming response read to its end: once for time and resident-set growth, once
under ``tracemalloc`` for the peak of Python allocations. Every figure is printed at both sizes
with the ratio large / small.

Rows are bulk-inserted with realistic values (see `bench/admin_data.py`), not made through the
lifecycle. The audit chain's hashes are not HMACs of the rows, so the chain does not verify; no
page measured here verifies it.

Run it with ``.venv/bin/python bench/admin_scale.py``, with ``DATABASE_URL=postgres://...`` in
front for PostgreSQL; ``--quick`` grows to 10,000 versions and 100,000 events instead. It
creates and removes a database of its own (see ``bench/admin_settings.py``). It prints
figures; it never fails on a timing, because a timing is not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

# The project root, so that `bench.*`, `portal.*` and `credentials.*` import from a plain run.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.admin_data import Data, administrator
from bench.common import ScratchDatabase, cpu_model, step, table


@dataclass(frozen=True)
class Size:
    name: str
    versions: int
    events: int


SMALL = Size("small", 1_000, 1_000)
LARGE = Size("large", 100_000, 1_000_000)
QUICK = Size("large", 10_000, 100_000)

WARM_UP = 2  # untimed renders of each page before it is timed
EARLY_ROWS = 10_000  # the export's Python peak is also read after this many rows
SLOW_MS = 5.0  # the large pages' queries that take this long are listed one by one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="grow to 10,000 / 100,000 only")
    parser.add_argument("--renders", type=int, default=9, help="timed renders per page and size")
    parser.add_argument("--seed", type=int, default=None, help="seed for data and page order")
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.renders < 1:
        parser.error("--renders must be positive")
    sizes = (SMALL, QUICK if args.quick else LARGE)

    # Forced, not defaulted: under the portal's own settings this would wipe its database.
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.admin_settings"
    import django

    django.setup()
    if args.export_child:  # run by measure_export, on the database the parent has filled
        print(json.dumps(asdict(export_here())))
        return
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    rng = random.Random(args.seed)
    scratch = ScratchDatabase()
    scratch.create()
    try:
        step("migrating a fresh database", lambda: call_command("migrate", verbosity=0))
        client = Client()
        client.force_login(administrator())
        data = Data(rng=rng, now=timezone.now(), newest_seq=sizes[-1].events)
        results = []
        for size in sizes:
            tag = f"[{size.name}]"
            step(f"{tag} versions up to {size.versions:,}", lambda s=size: data.grow(s.versions))
            step(f"{tag} audit events up to {size.events:,}", lambda s=size: data.log(s.events))
            step(f"{tag} gathering planner statistics", scratch.analyse)
            shape = data.shape()
            pages = step(
                f"{tag} rendering {len(PAGES)} pages, {WARM_UP} + 1 + {args.renders} times each",
                lambda: measure_pages(client, data, args.renders, rng),
            )
            export = step(f"{tag} exporting the audit log twice", measure_export)
            results.append((size.name, shape, pages, export))
        print()
        print(header(args, scratch))
        print()
        print(report(*results))
    finally:
        scratch.drop()


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Page:
    label: str
    url_name: str
    busy: str = ""  # how the busy credential's pk goes into the URL: "arg" or "query"
    listed: str = 'id="result_list"'  # marks the table(s) whose body rows are counted

    def url(self, data: Data) -> str:
        from django.urls import reverse

        pk = data.busy.pk
        path = reverse(self.url_name, args=[pk] if self.busy == "arg" else None)
        return path + (f"?credential={pk}" if self.busy == "query" else "")


PAGES = [
    Page("Admin index (dashboard)", "admin:index", listed='class="module kt-attention-'),
    Page("Credential changelist", "admin:credentials_credential_changelist"),
    Page("Busy credential's page", "admin:credentials_credential_change", "arg",
         listed='id="kt-version-table"'),
    Page("Busy credential's timeline", "admin:credentials_credential_timeline", "arg",
         listed='id="kt-timeline"'),
    Page("Version changelist", "admin:credentials_credentialversion_changelist"),
    Page("Audit log", "admin:credentials_auditevent_changelist"),
    Page("Audit log, busy credential", "admin:credentials_auditevent_changelist", "query"),
]  # fmt: skip


@dataclass(frozen=True)
class PageResult:
    median_ms: float
    queries: int
    timed_sql: list[tuple[float, str]]  # its SELECTs, each re-run alone, read to the last row
    rows: int
    kibibytes: float

    @property
    def sql_ms(self) -> float:
        return sum(ms for ms, _ in self.timed_sql)


def measure_pages(client, data: Data, renders: int, rng: random.Random) -> dict[str, PageResult]:
    """Count each page's queries in one render, then time renders in a new order each round."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    urls = {page: page.url(data) for page in PAGES}
    counted = {}
    for page in PAGES:
        for _ in range(WARM_UP):
            render(client, urls[page])
        statements = Statements()
        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(statements):
            html = render(client, urls[page])
        counted[page] = (len(captured), rerun(connection, statements), html)

    timings = {page: [] for page in PAGES}
    order = list(PAGES)
    for _ in range(renders):
        rng.shuffle(order)
        for page in order:
            began = time.perf_counter()
            render(client, urls[page])
            timings[page].append(time.perf_counter() - began)

    return {
        page.label: PageResult(
            median_ms=statistics.median(timings[page]) * 1000,
            queries=queries,
            timed_sql=timed_sql,
            rows=rows_listed(html, page.listed),
            kibibytes=len(html.encode()) / 1024,
        )
        for page, (queries, timed_sql, html) in counted.items()
    }


class Statements(list):
    """An execute wrapper that notes every statement a render runs, to time it again after."""

    def __call__(self, execute, sql, params, many, context):
        self.append((sql, params, many))
        return execute(sql, params, many, context)


def render(client, url: str) -> str:
    response = client.get(url, secure=True)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: run invalid")
    return response.content.decode()


def rerun(connection, statements: list) -> list[tuple[float, str]]:
    """Time each SELECT of a page again, on its own, fetching every row it returns.

    Timing ``execute`` inside the page would miss the rows SQLite produces while they are
    fetched, so a scan that returns many rows would look cheap.
    """
    timed = []
    with connection.cursor() as cursor:
        for sql, params, many in statements:
            if many or not sql.lstrip().upper().startswith("SELECT"):
                continue
            began = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            timed.append(((time.perf_counter() - began) * 1000, sql))
    return timed


def rows_listed(html: str, marker: str) -> int:
    """Body rows of every table that follows ``marker`` in the page."""
    rows, at = 0, html.find(marker)
    while at != -1:
        body = html.find("<tbody", at)
        rows += html.count("<tr", body, html.find("</tbody>", body))
        at = html.find(marker, at + 1)
    return rows


def short_sql(sql: str) -> str:
    """The SQL, shortened to read in a table: names unquoted and unqualified, joins without
    their conditions, a list of selected columns as "…"."""
    sql = re.sub(r'"(\w+)"', r"\1", " ".join(sql.split())).replace("credentials_", "")
    sql = re.sub(r" (INNER|LEFT OUTER) JOIN (\w+) ON \([^)]*\)", r" JOIN \2", sql)
    sql = re.sub(r"\b\w+\.(\w+)", r"\1", sql)  # columns without their table
    sql = re.sub(r"^SELECT (DISTINCT )?[^()]*?,[^()]*? FROM ", r"SELECT \1… FROM ", sql)
    return sql if len(sql) <= 120 else sql[:119] + "…"


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportResult:
    rows: int
    mebibytes: float
    seconds: float  # without tracemalloc, which slows every allocation
    queries: int
    rss_before: float  # MiB, resident set of the exporting process just before the export
    rss_growth: float  # MiB, its peak resident set during the export, less rss_before
    early_peak: float  # MiB, tracemalloc's peak after EARLY_ROWS rows (a second export)
    python_peak: float  # MiB, tracemalloc's peak over the whole of that second export


EXPORT_COLUMNS = {  # field: heading, format
    "rows": ("rows", "{:,}"),
    "mebibytes": ("MiB", "{:.1f}"),
    "seconds": ("seconds", "{:.2f}"),
    "queries": ("queries", "{}"),
    "rss_before": ("RSS before MiB", "{:.1f}"),
    "rss_growth": ("RSS growth MiB", "{:.1f}"),
    "early_peak": (f"Python peak MiB, {EARLY_ROWS:,} rows", "{:.2f}"),
    "python_peak": ("Python peak MiB", "{:.2f}"),
}


def measure_export() -> ExportResult:
    """Export in a fresh process, so its resident set holds nothing left over from the rest."""
    # This very script, with a fixed argument: no outside input reaches the command line.
    child = subprocess.run(  # noqa: S603
        [sys.executable, str(Path(__file__).resolve()), "--export-child"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return ExportResult(**json.loads(child.stdout.splitlines()[-1]))


def export_here() -> ExportResult:
    """Export the whole audit log twice as the benchmark's administrator, reading the stream
    to its end as a download would: once for time, queries and resident set, once under
    tracemalloc. A first export of no rows (a date range in the future) warms the code path."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client, url, mib = Client(), reverse("admin:credentials_auditevent_export"), 1024 * 1024
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    # A POST, as the audit log's button sends it; the test client skips the CSRF check.
    consume(client.post(url + "?since=2999-01-01", secure=True))

    gc.collect()
    reset_peak_resident()
    before = resident("VmRSS")
    with CaptureQueriesContext(connection) as captured:
        began = time.perf_counter()
        rows, size, _ = consume(client.post(url, secure=True))
        seconds = time.perf_counter() - began
    growth = resident("VmHWM") - before
    queries = len(captured)  # now: the next request empties the log this count reads

    gc.collect()
    tracemalloc.start()
    traced_rows, _, early_peak = consume(client.post(url, secure=True))
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert traced_rows == rows + 1, "the second export lists the first one's audit event too"
    return ExportResult(
        rows, size / mib, seconds, queries, before / mib, growth / mib,
        early_peak / mib, python_peak / mib,
    )  # fmt: skip


def consume(response) -> tuple[int, int, int]:
    """Rows (less the header line) and bytes of a streamed CSV, in which a chunk is a line, and
    tracemalloc's peak (if it is on) after ``EARLY_ROWS`` rows, or at the end if sooner."""
    if response.status_code != 200 or not response.streaming:
        raise SystemExit(f"the export answered {response.status_code}: run invalid")
    chunks = size = early_peak = 0
    for chunk in response.streaming_content:
        chunks += 1
        size += len(chunk)
        if chunks == EARLY_ROWS + 1 and tracemalloc.is_tracing():
            early_peak = tracemalloc.get_traced_memory()[1]
    response.close()
    if chunks <= EARLY_ROWS and tracemalloc.is_tracing():
        early_peak = tracemalloc.get_traced_memory()[1]
    return chunks - 1, size, early_peak


def resident(key: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, in bytes, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"/proc/self/status has no {key}: no resident-set figures on this system")


def reset_peak_resident() -> None:
    """Restart VmHWM from the current resident set (Linux 4.0 or later)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as error:
        raise SystemExit(f"cannot reset the peak resident set: {error}") from None


# --------------------------------------------------------------------------- printing


def header(args, scratch: ScratchDatabase) -> str:
    facts = {
        "Database": scratch.describe(),
        "Renders": f"{args.renders} timed per page and size after {WARM_UP} untimed, pages in a "
        "random order each round; queries counted in one more render",
        "Code": code_measured(),
        "Software": f"Python {platform.python_version()}, Django {version('django')}",
        "Machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
    }
    return "\n".join(f"{label + ':':<10}{value}" for label, value in facts.items())


def code_measured() -> str:
    """The commit the portal's code came from, and whether it had uncommitted changes."""
    git, root = shutil.which("git"), Path(__file__).resolve().parent.parent
    if git is None:
        return "unknown (no git)"

    def ask(*args: str) -> str:
        done = subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True)  # noqa: S603
        return done.stdout.strip()

    commit = ask("rev-parse", "--short", "HEAD") or "unknown"
    changed = ask("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!docs")
    return commit + (", with uncommitted changes outside bench/ and docs/" if changed else "")


def report(small: tuple, large: tuple) -> str:
    """The data, the pages, the large pages' slow queries, the export: five tables."""
    _, small_shape, small_pages, small_export = small
    _, large_shape, large_pages, large_export = large
    shapes = [["small", *(f"{n:,}" for n in small_shape)],
              ["large", *(f"{n:,}" for n in large_shape)]]  # fmt: skip
    pages, sql, slow = [], [], []
    for label, s in small_pages.items():
        g = large_pages[label]
        pages.append([
            label, f"{s.median_ms:.1f}", f"{g.median_ms:.1f}", f"{g.median_ms / s.median_ms:.2f}",
            str(s.queries), str(g.queries), f"{g.queries / s.queries:.2f}",
        ])  # fmt: skip
        sql.append([label, f"{s.rows:,} → {g.rows:,}", f"{s.kibibytes:,.0f} → {g.kibibytes:,.0f}",
                    f"{s.sql_ms:.1f}", f"{g.sql_ms:.1f}"])  # fmt: skip
        before = {text: ms for ms, text in s.timed_sql}  # the same SQL, as the small page ran it
        slow += [[label, f"{before[text]:.1f}" if text in before else "—", f"{ms:.1f}",
                  short_sql(text)]
                 for ms, text in sorted(g.timed_sql, reverse=True) if ms >= SLOW_MS]  # fmt: skip
    exports = [
        [name, *(form.format(getattr(e, f)) for f, (_, form) in EXPORT_COLUMNS.items())]
        for name, e in (("small", small_export), ("large", large_export))
    ]
    ratios = [getattr(large_export, f) / (getattr(small_export, f) or float("nan"))
              for f in EXPORT_COLUMNS]  # fmt: skip
    exports.append(["large ÷ small", *(f"{r:.2f}" if r == r else "—" for r in ratios)])  # nan
    return "\n\n".join([
        table(["Data", "apps", "credentials", "versions", "busy credential's versions",
               "audit events", "events naming it"], shapes),
        table(["Page", "small ms", "large ms", "time ratio", "small queries", "large queries",
               "query ratio"], pages),
        table(["Page", "rows listed", "HTML KiB", "small SQL ms", "large SQL ms"], sql),
        table([f"Queries of ≥ {SLOW_MS:g} ms at large", "small ms", "large ms",
               "query, each re-run alone"], slow),
        table(["CSV export of the whole log", *(h for h, _ in EXPORT_COLUMNS.values())], exports),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
