"""A worker killed in the middle of a delivery loses nothing: the lease runs out, the clock
queues the delivery again, another worker delivers it under the same message id."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from credentials import lifecycle
from credentials.models import Delivery, Kind
from credentials.webhooks import clock
from credentials.webhooks.delivery import claim
from tests.receiver import Receiver
from tests.states import ACTOR
from tests.webhook_helpers import drain

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
LEASE = 5


@pytest.fixture(autouse=True)
def _local(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PORTAL_WEBHOOK_LEASE_SECONDS = LEASE
    settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS = 1
    settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS = 2


def _rotation_for(issue, url):
    hook = lifecycle.endpoint_create(actor=ACTOR, app=issue(Kind.API_KEY).credential.app, url=url)
    key = issue(Kind.API_KEY, name="orders")
    lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
    return Delivery.objects.get(endpoint=hook.credential.endpoint)


@pytest.fixture
def worker_log(tmp_path):
    with (tmp_path / "workers.log").open("wb") as log:
        yield log


def _worker(log, *extra):
    """A real `manage.py db_worker` process on the test database, its output in ``log``."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "PORTAL_WEBHOOK_LEASE_SECONDS": str(LEASE),
        "PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1",
        "PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS": "2",
    }
    command = [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.1",
               "--no-startup-delay", *extra]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.postgres
def test_a_db_worker_killed_mid_delivery_loses_nothing(issue, tmp_path, worker_log):
    log = worker_log
    # The first request hangs (the worker is mid-delivery when it dies); later ones succeed.
    with Receiver(script=["timeout"], hold_seconds=3) as receiver:
        delivery = _rotation_for(issue, receiver.url)
        first = _worker(log)
        try:
            sent = receiver.got_request.wait(30)
            assert sent, (tmp_path / "workers.log").read_text()[-2000:]
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
        finally:
            first.kill()
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.IN_FLIGHT  # it died holding the lease
        assert not delivery.receipts.exists()
        assert clock.requeue_stuck_deliveries(now=timezone.now()) == 0  # lease still running
        time.sleep(LEASE + 0.5)
        assert clock.requeue_stuck_deliveries(now=timezone.now()) == 1
        second = _worker(log, "--batch")
        try:
            assert second.wait(60) == 0, (tmp_path / "workers.log").read_text()[-2000:]
        finally:
            second.kill()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.attempts == 2
    assert [r.attempt for r in delivery.receipts.all()] == [2]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == [delivery.message.message_id] * 2  # the same id both times
    assert receiver.unique_ids() == [delivery.message.message_id]


def test_a_claim_abandoned_by_a_dead_worker_is_delivered_after_its_lease(issue):
    """The same recovery without a process to kill (SQLite's in-memory test database cannot
    be shared with one): a claim that is never recorded, as a killed worker leaves it."""
    with Receiver() as receiver:
        delivery = _rotation_for(issue, receiver.url)
        assert claim(delivery.pk, now=timezone.now()) is not None  # ...and then it "dies"
        assert claim(delivery.pk, now=timezone.now()) is None  # nobody else may take it yet
        later = timezone.now() + timedelta(seconds=LEASE + 1)
        assert clock.requeue_stuck_deliveries(now=later) == 1
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now())
        drain()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 2
    assert receiver.unique_ids() == [delivery.message.message_id]
