"""Benchmark: ``POST /api/v1/introspect`` under gunicorn, against a trivial Django JSON view.

One gunicorn (``--workers`` processes, sync workers, as the Procfile runs it) serves both the
portal's introspection endpoint and a trivial view that answers ``{"active": false}`` without
reading anything (``bench/introspect_urls.py``, benchmark only). Both get the same request
bytes: a form-encoded token and a bearer key, from 1 and then 32 concurrent clients. The two
targets take turns in short rounds (ten by default), so drift falls on both alike. Reported:
requests per second, p50 and p99 latency, the ratio of the two throughputs over the whole run
and its spread over the paired rounds, and the database writes that last-use tracking made,
per version, with the shortest gap between two writes of one version.

The load comes from client processes on this machine (threads inside them), each opening a
connection per request as gunicorn's sync workers close it after each answer; they are bounded
by ``--seconds`` and ``--max-requests`` and only ever connect to 127.0.0.1.

Run it with ``make bench-introspect``, or ``DATABASE_URL=postgres://... make bench-introspect``.
Set ``CACHE_URL=redis://127.0.0.1:6379/N`` to share counters between workers, as in
production. It creates and removes a database of its own (see ``bench/introspect_settings.py``).
It never fails on a timing; it exits with status 1 when any answer was wrong (CI runs it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlencode

# The project root, so that `bench.*`, `portal.*` and `credentials.*` import from a plain run.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ScratchDatabase, cpu_model, step, table

ROOT = Path(__file__).resolve().parent.parent

INTROSPECT = "/api/v1/introspect"
TRIVIAL = "/bench/trivial"
TARGET_RATIO = 0.70  # introspection at least 70% of the trivial view's throughput
PRESENTED_KEYS = 200  # distinct tokens presented (each one a version whose use is counted)
CLIENT_PROCESSES = 4  # at most; threads within them make up the concurrency


@dataclass
class Result:
    """What one target answered at one level: in one round, or added up over the rounds."""

    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    elapsed: float = 0.0
    wrong: int = 0  # a status or body that is not the expected one
    writes: list[tuple[str, float]] = field(default_factory=list)  # (version, server time)

    def add(self, other: Result) -> None:
        self.latencies += other.latencies
        self.elapsed += other.elapsed
        self.wrong += other.wrong
        self.writes += other.writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="timed seconds per target and level"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="alternating turns per level, each --seconds/--rounds long: more rounds pair the "
        "two targets more closely in time",
    )
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per round")
    parser.add_argument("--clients", default="1,32", help="concurrency levels, comma-separated")
    parser.add_argument(
        "--flush-seconds",
        type=int,
        default=10,
        help="PORTAL_LAST_USE_FLUSH_SECONDS for the run (shorter than production's 60, so that "
        "a short run writes and the one-write-per-interval bound is checked under load)",
    )
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    try:
        levels = [int(level) for level in args.clients.split(",")]
    except ValueError:
        parser.error(f"--clients takes whole numbers separated by commas, not {args.clients!r}")
    if args.workers < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--workers, --seconds and --rounds must be positive")
    if not all(1 <= n <= 256 for n in levels):
        parser.error("--clients must be from 1 to 256")

    # Forced, not defaulted: under the portal's own settings this would wipe its database.
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.introspect_settings"
    os.environ["PORTAL_LAST_USE_FLUSH_SECONDS"] = str(args.flush_seconds)
    os.environ["KEYTURN_BENCH_CACHE_PREFIX"] = f"keyturn-bench-{os.getpid()}-{time.time_ns()}"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    rng = random.Random(args.seed)
    scratch = ScratchDatabase()
    scratch.create()
    try:
        step("migrating a fresh database", lambda: call_command("migrate", verbosity=0))
        tokens = step("issuing 1,000 keys", lambda: issue(rng))
        step("gathering planner statistics", scratch.analyse)
        from django.db import connections

        connections.close_all()
        caller, presented = tokens[0], tokens[1 : 1 + PRESENTED_KEYS]
        with Server(args.workers) as server:
            began = time.monotonic()
            results = step(
                f"loading for {len(levels)} levels x 2 targets x {args.seconds:g} s",
                lambda: measure(server.port, caller, presented, levels, args, rng),
            )
            duration = time.monotonic() - began
        print()
        print(header(args, scratch, settings))
        print()
        totals = {target: added(rounds) for target, rounds in results.items()}
        print(table(["Target", "clients", "requests", "req/s", "p50 ms", "p99 ms"], rows(totals)))
        print()
        print(ratios(results, totals, levels))
        print()
        print(writes(totals, duration, settings.PORTAL_LAST_USE_FLUSH_SECONDS))
    finally:
        scratch.drop()
        forget_cache()
    wrong = sum(total.wrong for total in totals.values())
    if wrong:
        sys.exit(f"{wrong} wrong answers: the figures above are void.")


def forget_cache() -> None:
    """Delete this run's keys from a shared Redis (an in-process cache went with the server)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(None, write=True)
        for key in client.scan_iter(match=f"{os.environ['KEYTURN_BENCH_CACHE_PREFIX']}:*"):
            client.delete(key)


# --------------------------------------------------------------------------- data


def issue(rng: random.Random) -> list[str]:
    """1,000 keys scoped ``introspect``, bulk-inserted as ``bench/verify.py`` makes them."""
    from bench.verify import issue_keyturn

    sample = issue_keyturn(argparse.Namespace(keys=1_000), rng)
    return [token for token in sample if token.startswith("ktak_")]


# --------------------------------------------------------------------------- server


class Server:
    """gunicorn on a free port of 127.0.0.1, as the Procfile runs it, for this ``with`` block."""

    def __init__(self, workers: int):
        self.workers = workers
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def __enter__(self) -> Server:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.introspect_settings"}
        command = [sys.executable, "-m", "gunicorn", "portal.wsgi", "--workers", str(self.workers)]
        command += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"]
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            command,
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("gunicorn exited during start-up")
            try:
                status, _, _ = request(self.port, build(TRIVIAL, "x", "y"))
                if status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.process.kill()
        raise SystemExit("gunicorn did not answer within 30 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --------------------------------------------------------------------------- client


def build(path: str, caller: str, token: str) -> bytes:
    body = urlencode({"token": token}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {caller}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def request(port: int, raw: bytes) -> tuple[int, bytes, bytes]:
    """Send one request on a new connection; (status, headers, body) once the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head[9:12]), head, body


def client_process(port, requests, threads, seconds, max_requests, expect) -> Result:
    """``threads`` clients in this process, each sending its requests in turn until time is up."""
    out = Result()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    budget = [max_requests]

    def client(offset: int) -> None:
        mine = Result()
        i = offset
        while time.monotonic() < stop_at:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            began = time.perf_counter()
            try:
                status, head, body = request(port, requests[i % len(requests)])
            except (OSError, ValueError):  # refused, reset, timed out, or no status line
                mine.wrong += 1
                i += 1
                continue
            mine.latencies.append(time.perf_counter() - began)
            if status != 200 or expect not in body:
                mine.wrong += 1
            marker = b"x-bench-version-writes: "
            start = head.lower().find(marker)
            if start >= 0:
                ids = head[start + len(marker) :].split(b"\r\n", 1)[0].decode()
                for write in ids.split(","):
                    version_id, _, when = write.partition("@")
                    mine.writes.append((version_id, float(when)))
            i += 1
        with lock:
            out.add(mine)

    began = time.perf_counter()
    workers = [threading.Thread(target=client, args=(n * 7919,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.elapsed = time.perf_counter() - began
    return out


def run(pool, port, requests, clients, seconds, max_requests, expect) -> Result:
    processes = min(clients, CLIENT_PROCESSES)
    shares = [clients // processes + (n < clients % processes) for n in range(processes)]
    parts = pool.starmap(
        client_process,
        [(port, requests, share, seconds, max_requests // processes, expect) for share in shares],
    )
    total = Result()
    for part in parts:
        total.add(part)
    total.elapsed = max(part.elapsed for part in parts)
    return total


def measure(port, caller, presented, levels, args, rng) -> dict[tuple[str, int], list[Result]]:
    """Per target and level, the result of each round, in order: round n of one target ran
    right before or right after round n of the other."""
    introspect = [build(INTROSPECT, caller, token) for token in presented]
    trivial = [build(TRIVIAL, caller, token) for token in presented]
    targets = [("introspect", introspect, b'"active": true'), ("trivial", trivial, b'"active"')]
    results = {(name, clients): [] for name, _, _ in targets for clients in levels}
    with multiprocessing.get_context("fork").Pool(CLIENT_PROCESSES) as pool:
        for _name, requests, expect in targets:  # warm-up: connections, prepared statements
            run(pool, port, requests, 4, 1.0, 10_000, expect)
        for clients in levels:
            for _ in range(args.rounds):
                rng.shuffle(targets)
                for name, requests, expect in targets:
                    part = run(
                        pool,
                        port,
                        requests,
                        clients,
                        args.seconds / args.rounds,
                        args.max_requests,
                        expect,
                    )
                    results[(name, clients)].append(part)
    return results


def added(rounds: list[Result]) -> Result:
    total = Result()
    for part in rounds:
        total.add(part)
    return total


# --------------------------------------------------------------------------- printing


def throughput(result: Result) -> float:
    return len(result.latencies) / result.elapsed if result.elapsed else 0.0


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:  # a run that got (almost) no answers: void, but still printed
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def header(args, scratch: ScratchDatabase, settings) -> str:
    cache = settings.CACHES["default"]
    facts = {
        "Database": scratch.describe(),
        "Cache": f"{cache['BACKEND'].rsplit('.', 1)[-1]} {cache.get('LOCATION', '')}".strip(),
        "Server": f"gunicorn {version('gunicorn')}, {args.workers} sync workers, 127.0.0.1",
        "Load": f"{args.seconds:g} s per target and level in {args.rounds} alternating rounds; "
        f"up to {CLIENT_PROCESSES} client processes; a new connection per request",
        "Keys": f"1,000 issued; {PRESENTED_KEYS} presented in turn by one calling key",
        "Software": f"Python {platform.python_version()}, Django {version('django')}",
        "Machine": f"{cpu_model()}, {os.cpu_count()} CPUs (shared by server and clients)",
    }
    return "\n".join(f"{label + ':':<10}{value}" for label, value in facts.items())


def rows(results: dict[tuple[str, int], Result]) -> list[list[str]]:
    body = []
    for (name, clients), result in sorted(results.items(), key=lambda item: item[0][::-1]):
        label = "POST /api/v1/introspect" if name == "introspect" else "trivial Django JSON view"
        if result.wrong:
            label += f" ({result.wrong} wrong answers: run invalid)"
        body.append(
            [
                label,
                str(clients),
                f"{len(result.latencies):,}",
                f"{throughput(result):,.0f}",
                f"{percentile(result.latencies, 50) * 1000:.2f}",
                f"{percentile(result.latencies, 99) * 1000:.2f}",
            ]
        )
    return body


def ratios(
    results: dict[tuple[str, int], list[Result]],
    totals: dict[tuple[str, int], Result],
    levels: list[int],
) -> str:
    """The verdict is the ratio over the whole run (``totals``). The paired rounds show how
    much it moved: their median, lowest and highest, and how many met the target alone."""
    body = []
    for clients in levels:
        ours, floor = results[("introspect", clients)], results[("trivial", clients)]
        whole, whole_floor = totals[("introspect", clients)], totals[("trivial", clients)]
        ratio = throughput(whole) / (throughput(whole_floor) or float("nan"))
        p50 = percentile(whole.latencies, 50) / percentile(whole_floor.latencies, 50)
        paired = sorted(
            throughput(mine) / throughput(theirs)
            for mine, theirs in zip(ours, floor, strict=True)
            if throughput(theirs)
        ) or [float("nan")]
        body.append(
            [
                f"{clients} client(s)",
                f"{ratio:.2f}",
                f"{p50:.2f}",
                f"{statistics.median(paired):.2f} ({paired[0]:.2f} to {paired[-1]:.2f})",
                f"{sum(r >= TARGET_RATIO for r in paired)} of {len(paired)}",
                f">= {TARGET_RATIO:.2f}",
                "yes" if ratio >= TARGET_RATIO else "NO",
            ]
        )
    header = [
        "Introspection vs trivial",
        "req/s ratio",
        "p50 ratio",
        "rounds: median (range)",
        "rounds met",
        "target",
        "met",
    ]
    return table(header, body)


def writes(results: dict[tuple[str, int], Result], duration: float, interval: int) -> str:
    by_version: dict[str, list[float]] = {}
    for result in results.values():
        for version_id, when in result.writes:
            by_version.setdefault(version_id, []).append(when)
    total = sum(len(times) for times in by_version.values())
    gaps = []
    for times in by_version.values():
        ordered = sorted(times)
        gaps += [later - earlier for earlier, later in pairwise(ordered)]
    most = max((len(times) for times in by_version.values()), default=0)
    allowed = 1 + int(duration // interval)  # the first use writes, then once per interval
    body = [
        [
            f"{len(by_version)}",
            f"{total}",
            f"{duration:.0f} s",
            f"{most}",
            f"{min(gaps):.1f} s" if gaps else "none",
            f"<= {allowed} (1 per {interval} s)",
            "yes" if most <= allowed and all(gap >= interval * 0.95 for gap in gaps) else "NO",
        ]
    ]
    header = [
        "Versions written",
        "DB writes",
        "over",
        "most for one version",
        "shortest gap",
        "target",
        "met",
    ]
    return table(header, body)


if __name__ == "__main__":
    main()
