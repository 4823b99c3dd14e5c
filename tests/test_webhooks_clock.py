"""The clock: expiry, expiry notices at each threshold once (also with two clocks at once),
re-queueing, pruning; `sweep` and `run_clock`."""

import json
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from credentials import lifecycle
from credentials.models import (
    AuditEvent,
    DeliveryReceipt,
    ExpiryNotice,
    Kind,
    State,
    WebhookMessage,
)
from credentials.webhooks import send_test_ping
from credentials.webhooks.clock import sweep
from tests.states import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hooked(issue):
    """An app with an endpoint that hears everything, and a way to issue keys on it."""

    def _issue(**options):
        return issue(Kind.API_KEY, **options)

    lifecycle.endpoint_create(
        actor=ACTOR, app=issue(Kind.API_KEY, name="first").credential.app, url="https://a.example/h"
    )
    return _issue


def _sent(event_type):
    return [json.loads(m.body) for m in WebhookMessage.objects.filter(event_type=event_type)]


def test_expiring_is_sent_at_seven_days_and_at_one_day_once_each_then_expired(hooked):
    key = hooked(name="ten days", lifetime_days=10)
    start = key.version.created_at
    sweep(now=start + timedelta(days=2))
    assert _sent("credential.expiring") == []
    sweep(now=start + timedelta(days=3, hours=1))
    sweep(now=start + timedelta(days=4))
    (seven,) = _sent("credential.expiring")
    assert seven["data"]["days_before"] == 7
    assert seven["data"]["version"]["last_four"] == key.version.last_four
    sweep(now=start + timedelta(days=9, hours=1))
    sweep(now=start + timedelta(days=9, hours=2))
    assert [m["data"]["days_before"] for m in _sent("credential.expiring")] == [1, 7]
    sweep(now=start + timedelta(days=10, seconds=1))
    key.version.refresh_from_db()
    assert key.version.state == State.EXPIRED
    (expired,) = _sent("credential.expired")
    assert expired["data"]["version"]["number"] == 1 and expired["data"]["why"] == "lifetime ended"
    assert AuditEvent.objects.filter(action="credential.expiring").count() == 2


def test_a_version_first_seen_inside_one_day_gets_one_notice_not_two(hooked):
    key = hooked(name="short", lifetime_days=1)
    sweep(now=key.version.created_at + timedelta(hours=1))
    assert [m["data"]["days_before"] for m in _sent("credential.expiring")] == [1]
    assert sorted(key.version.expiry_notices.values_list("days_before", flat=True)) == [1, 7]


def test_thresholds_come_from_the_setting(hooked, settings):
    settings.PORTAL_EXPIRY_NOTICE_DAYS = [30, 3]
    key = hooked(name="month", lifetime_days=40)
    sweep(now=key.version.created_at + timedelta(days=11))
    assert [m["data"]["days_before"] for m in _sent("credential.expiring")] == [30]


def test_the_database_refuses_a_second_notice_for_one_threshold(hooked):
    key = hooked(name="once")
    ExpiryNotice.objects.create(version=key.version, days_before=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExpiryNotice.objects.create(version=key.version, days_before=7)


def test_old_receipts_are_pruned_and_recent_ones_kept(issue, settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint = issue(Kind.ENDPOINT_SECRET, url="http://127.0.0.1:9/h").credential.endpoint
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # refused: nothing is really sent
    receipt = send_test_ping(endpoint=endpoint, actor=ACTOR)
    sweep(now=timezone.now() + timedelta(days=29))
    assert DeliveryReceipt.objects.filter(pk=receipt.pk).exists()
    report = sweep(now=timezone.now() + timedelta(days=31))
    assert report.pruned_receipts == 1
    assert not DeliveryReceipt.objects.exists()
    assert not WebhookMessage.objects.filter(event_type="test.ping").exists()


def test_sweep_and_run_clock_commands_do_one_pass(hooked, capsys):
    call_command("sweep")
    assert "Expired 0 version(s)" in capsys.readouterr().out
    call_command("run_clock", "--passes", "2", "--every", "1")  # returns after two passes


@pytest.mark.postgres
def test_two_clocks_at_once_send_each_threshold_once(hooked):
    versions = [hooked(name=f"key {n}", lifetime_days=5).version for n in range(6)]
    at = timezone.now() + timedelta(days=4, hours=12)  # inside 7 days and inside 1 day
    barrier, errors = threading.Barrier(2), []

    def clock():
        try:
            barrier.wait()
            sweep(now=at)
        except Exception as error:  # collected and asserted on below
            errors.append(repr(error))
        finally:
            connection.close()

    clocks = [threading.Thread(target=clock) for _ in range(2)]
    for thread in clocks:
        thread.start()
    for thread in clocks:
        thread.join(timeout=120)
    assert errors == []
    notices = _sent("credential.expiring")
    assert sorted(m["data"]["version"]["last_four"] for m in notices) == sorted(
        v.last_four for v in versions
    )
    assert ExpiryNotice.objects.filter(message__isnull=False).count() == len(versions)
    assert ExpiryNotice.objects.count() == 2 * len(versions)
