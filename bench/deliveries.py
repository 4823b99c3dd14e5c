"""Benchmark: webhook deliveries per second to a local receiver, with two workers.

The whole real path: ``events.emit`` writes the messages and deliveries and enqueues one task
per delivery (django-tasks-db), then real ``manage.py db_worker`` processes claim the tasks,
claim each delivery (conditional update), sign it for the endpoint's secret (AES-GCM decrypt +
HMAC-SHA256), POST it to a receiver on 127.0.0.1 and write the receipt. The receiver is a
threaded http.server in this process that answers 204 at once, so the figure is Keyturn's
cost, not a receiver's.

For each worker count (two, the figure asked for, and one for comparison) the script queues
``--events`` fresh events, starts the workers with ``--batch`` (they exit when the queue is
empty) and measures:

- wall time from starting the workers to the last of them exiting (includes Django start-up);
- the sustained rate between the first and the last receipt;
- that every delivery ended delivered and the receiver saw every message id exactly once.

Run it with ``.venv/bin/python bench/deliveries.py [--events N]``, on SQLite by default or on
PostgreSQL with ``DATABASE_URL=postgres://...``. It uses a database of its own (created and
dropped, as ``bench/verify.py`` does: ``var/bench_deliveries.sqlite3`` or
``keyturn_bench_deliveries``). It prints figures and never fails on a timing; it exits with
status 1 when a delivery was lost or a message arrived more than once (CI runs it).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_IS_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
os.environ.setdefault(
    "KEYTURN_BENCH_DATABASE",
    "keyturn_bench_deliveries" if _IS_POSTGRES else str(ROOT / "var" / "bench_deliveries.sqlite3"),
)
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ["PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"  # the receiver is on 127.0.0.1

from bench.common import ScratchDatabase, cpu_model, step, table  # noqa: E402


class Receiver:
    """Answers 204 to every POST and counts the message ids it saw."""

    def __init__(self):
        self.ids: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.ids.append(self.headers.get("webhook-id", ""))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.send_header("connection", "close")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bench"


def queue_events(endpoint_credential, count: int) -> list[int]:
    from django.db import transaction

    from credentials.models import Delivery
    from credentials.webhooks import events

    ids = []
    with transaction.atomic():
        for n in range(count):
            data = events.credential_data(endpoint_credential, None, sequence=n)
            message = events.emit("credential.rotated", credential=endpoint_credential, data=data)
            ids.append(message.pk)
    return list(Delivery.objects.filter(message_id__in=ids).values_list("pk", flat=True))


def run_workers(workers: int) -> float:
    env = {**os.environ}
    command = [sys.executable, "manage.py", "db_worker", "--batch", "--no-reload",
               "--no-startup-delay", "--interval", "0", "--verbosity", "0"]  # fmt: skip
    began = time.perf_counter()
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
        for _ in range(workers)
    ]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit("a worker failed")
    return time.perf_counter() - began


def measure(endpoint, receiver: Receiver, *, workers: int, events: int) -> dict:
    from credentials.models import Delivery, DeliveryReceipt

    receiver.ids.clear()
    delivery_ids = step(f"queue {events} events", lambda: queue_events(endpoint.credential, events))
    wall = step(f"deliver with {workers} worker(s)", lambda: run_workers(workers))
    deliveries = Delivery.objects.filter(pk__in=delivery_ids)
    delivered = deliveries.filter(status=Delivery.Status.DELIVERED).count()
    receipts = DeliveryReceipt.objects.filter(delivery__in=delivery_ids)
    first = receipts.order_by("started_at").values_list("started_at", flat=True).first()
    last = receipts.order_by("-started_at").first()
    span = (last.started_at - first).total_seconds() + last.latency_ms / 1000
    expected = set(deliveries.values_list("message__message_id", flat=True))
    return {
        "workers": workers,
        "events": events,
        "delivered": delivered,
        "receipts": receipts.count(),
        "duplicates": len(receiver.ids) - len(set(receiver.ids)),
        "exactly_once": sorted(receiver.ids) == sorted(expected),
        "wall": wall,
        "span": span,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    options = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    from credentials import lifecycle
    from credentials.audit import Actor

    database = ScratchDatabase()
    step("create the scratch database", database.create)
    try:
        step("migrate", lambda: call_command("migrate", verbosity=0))
        receiver = Receiver()
        actor = Actor.system("bench")
        app = lifecycle.app_create(
            actor=actor, name="Bench", owner_team="Bench", contact_email="bench@example.com"
        )
        hook = lifecycle.endpoint_create(actor=actor, app=app, url=receiver.url)
        endpoint = hook.credential.endpoint
        results = [
            measure(endpoint, receiver, workers=workers, events=options.events)
            for workers in (2, 1)
        ]
        report(database.describe(), results)
    finally:
        step("drop the scratch database", database.drop)
    failed = [
        r["workers"] for r in results if not r["exactly_once"] or r["delivered"] != r["events"]
    ]
    if failed:
        sys.exit(f"Not every event was delivered exactly once (workers: {failed}).")


def report(where: str, results: list[dict]) -> None:
    import django

    print(f"# Webhook deliveries to a local receiver ({where})")
    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"{os.cpu_count()} CPU(s): {cpu_model()}"
    )
    print()
    header = ["workers", "events", "delivered", "receipts", "duplicate ids", "each id once",
              "wall s", "deliveries/s (wall)", "deliveries/s (sustained)"]  # fmt: skip
    body = [_row(r) for r in results]
    print(table(header, body))


def _row(r: dict) -> list[str]:
    return [
        str(r["workers"]), str(r["events"]), str(r["delivered"]), str(r["receipts"]),
        str(r["duplicates"]), "yes" if r["exactly_once"] else "NO", f"{r['wall']:.1f}",
        f"{r['delivered'] / r['wall']:.0f}", f"{r['delivered'] / r['span']:.0f}",
    ]  # fmt: skip


if __name__ == "__main__":
    main()
