"""Events go out through the outbox and the django-tasks-db worker: signed, retried with the
same id, finished exactly once by id for a receiver that fails, times out, then recovers."""

import json

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from credentials import lifecycle
from credentials.models import AuditEvent, Delivery, Endpoint, Kind, WebhookMessage
from tests.receiver import Receiver
from tests.states import ACTOR
from tests.webhook_helpers import drain

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_local_delivery(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PORTAL_WEBHOOK_RETRY_SCHEDULE = [0, 0, 0, 0, 0, 0]
    settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS = 0.5
    settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS = 1


def _hook(issue, url, event_types=()):
    issued = lifecycle.endpoint_create(
        actor=ACTOR, app=issue(Kind.API_KEY).credential.app, url=url, event_types=event_types
    )
    return issued.credential.endpoint, issued.plaintext


def test_rotate_revoke_reactivate_reach_subscribed_endpoints_only(issue):
    key = issue(Kind.API_KEY, name="orders")
    everything = lifecycle.endpoint_create(
        actor=ACTOR, app=key.credential.app, url="https://a.example/h"
    )
    only_revokes = lifecycle.endpoint_create(
        actor=ACTOR, app=key.credential.app, url="https://b.example/h",
        event_types=["credential.revoked"],
    )  # fmt: skip
    rotated = lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
    lifecycle.version_revoke(actor=ACTOR, version=rotated.version, reason="routine")
    sent = lambda issued: sorted(  # noqa: E731
        Delivery.objects.filter(endpoint=issued.credential.endpoint).values_list(
            "message__event_type", flat=True
        )
    )
    assert sent(everything) == ["credential.revoked", "credential.rotated"]
    assert sent(only_revokes) == ["credential.revoked"]


def test_a_disabled_endpoint_gets_no_new_deliveries(issue):
    key = issue(Kind.API_KEY)
    hook = lifecycle.endpoint_create(actor=ACTOR, app=key.credential.app, url="https://a.example/h")
    endpoint = hook.credential.endpoint
    lifecycle.endpoint_update(
        actor=ACTOR, endpoint=endpoint, url=endpoint.url, event_types=[], enabled=False
    )
    lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
    assert not Delivery.objects.filter(endpoint=endpoint).exists()


def test_a_change_that_rolls_back_sends_nothing(issue):
    key = issue(Kind.API_KEY)
    lifecycle.endpoint_create(actor=ACTOR, app=key.credential.app, url="https://a.example/h")
    tasks_before = DBTaskResult.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        raise RuntimeError("something later in the same transaction failed")
    assert not WebhookMessage.objects.filter(event_type="credential.rotated").exists()
    assert DBTaskResult.objects.count() == tasks_before


def test_tasks_carry_only_a_delivery_id(issue):
    key = issue(Kind.API_KEY)
    lifecycle.endpoint_create(actor=ACTOR, app=key.credential.app, url="https://a.example/h")
    lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
    (task,) = DBTaskResult.objects.all()
    delivery = Delivery.objects.get()
    assert task.args_kwargs == {"args": [delivery.pk], "kwargs": {}}
    assert task.task_path == "credentials.webhooks.tasks.deliver"


def test_payload_is_type_timestamp_data_and_names_versions_by_last_four_only(issue):
    key = issue(Kind.API_KEY)
    lifecycle.endpoint_create(actor=ACTOR, app=key.credential.app, url="https://a.example/h")
    rotated = lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
    payload = json.loads(WebhookMessage.objects.get(event_type="credential.rotated").body)
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "credential.rotated"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"]["version"]["number"] == 2
    assert payload["data"]["version"]["last_four"] == rotated.version.last_four
    assert payload["data"]["previous_version"]["state"] == "retiring"
    assert rotated.plaintext not in json.dumps(payload)
    assert key.plaintext not in json.dumps(payload)


def test_a_receiver_that_fails_times_out_then_recovers_gets_every_message_once_by_id(issue):
    script = [500, 503, "timeout", "timeout", 500]
    with Receiver(script=script, hold_seconds=1.0) as receiver:
        endpoint, secret = _hook(issue, receiver.url)
        key = issue(Kind.API_KEY, name="orders")
        rotated = lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        lifecycle.version_revoke(actor=ACTOR, version=rotated.version, reason="routine")
        lifecycle.version_reactivate(actor=ACTOR, version=rotated.version)
        drain()
    messages = WebhookMessage.objects.filter(deliveries__endpoint=endpoint)
    expected = set(messages.values_list("message_id", flat=True))
    assert len(expected) == 3
    assert set(receiver.unique_ids()) == expected  # every message arrived...
    assert len(receiver.unique_ids()) == 3  # ...and a deduplicating receiver handled each once
    assert len(receiver.requests) == 3 + len(script)  # the failed attempts were retried
    by_body = {}
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)  # fresh signature, still valid
        by_body.setdefault(request.body, set()).add(request.headers["webhook-id"])
    assert all(len(ids) == 1 for ids in by_body.values())  # one id per message, ever
    assert set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {
        "delivered"
    }
    receipts = [r for d in Delivery.objects.filter(endpoint=endpoint) for r in d.receipts.all()]
    assert len(receipts) == len(receiver.requests)
    assert {r.error for r in receipts if r.status_code is None} == {
        "timed out waiting for the response"
    }
    assert Endpoint.objects.get(pk=endpoint.pk).consecutive_failures == 0


def test_a_delivery_gives_up_after_its_schedule(issue, settings):
    settings.PORTAL_WEBHOOK_RETRY_SCHEDULE = [0, 0]
    with Receiver(default=500) as receiver:
        endpoint, _ = _hook(issue, receiver.url)
        key = issue(Kind.API_KEY)
        lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        drain()
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts == 3 and len(receiver.requests) == 3
    assert Endpoint.objects.get(pk=endpoint.pk).enabled  # 3 failures are below the threshold


def test_a_410_disables_the_endpoint_at_once_and_audits_it(issue):
    with Receiver(default=410) as receiver:
        endpoint, _ = _hook(issue, receiver.url)
        key = issue(Kind.API_KEY)
        lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        drain()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert len(receiver.requests) == 1
    assert Delivery.objects.get(endpoint=endpoint).status == Delivery.Status.FAILED
    assert (
        AuditEvent.objects.filter(action="endpoint.disabled", target_id=str(endpoint.pk)).count()
        == 1
    )


def test_a_run_of_failures_disables_the_endpoint_and_cancels_what_was_pending(issue, settings):
    settings.PORTAL_WEBHOOK_DISABLE_AFTER_FAILURES = 4
    with Receiver(default=500) as receiver:
        endpoint, _ = _hook(issue, receiver.url)
        key = issue(Kind.API_KEY)
        lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        drain()
    endpoint.refresh_from_db()
    assert (
        not endpoint.enabled and "4 delivery attempts in a row failed" in endpoint.disabled_reason
    )
    assert len(receiver.requests) == 4
    statuses = set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True))
    assert statuses <= {Delivery.Status.FAILED, Delivery.Status.CANCELLED}


def test_resend_sends_the_same_id_again_after_the_endpoint_is_enabled(issue, settings):
    settings.PORTAL_WEBHOOK_RETRY_SCHEDULE = [0]
    with Receiver(script=[500, 500]) as receiver:
        endpoint, _ = _hook(issue, receiver.url)
        key = issue(Kind.API_KEY)
        lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        drain()
        delivery = Delivery.objects.get(endpoint=endpoint)
        assert delivery.status == Delivery.Status.FAILED
        lifecycle.delivery_resend(actor=ACTOR, delivery=delivery)
        with pytest.raises(lifecycle.TransitionRefused, match="still pending"):
            lifecycle.delivery_resend(actor=ACTOR, delivery=delivery)
        drain()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.message.message_id}
    assert AuditEvent.objects.filter(action="webhook.resent").count() == 1


def test_resend_is_refused_while_the_endpoint_is_disabled(issue):
    with Receiver(default=410) as receiver:
        endpoint, _ = _hook(issue, receiver.url)
        key = issue(Kind.API_KEY)
        lifecycle.credential_rotate(actor=ACTOR, credential=key.credential)
        drain()
    delivery = Delivery.objects.get(endpoint=endpoint)
    with pytest.raises(lifecycle.TransitionRefused, match="disabled; enable it first"):
        lifecycle.delivery_resend(actor=ACTOR, delivery=delivery)
    endpoint.refresh_from_db()
    lifecycle.endpoint_update(
        actor=ACTOR, endpoint=endpoint, url=endpoint.url, event_types=[], enabled=True
    )
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.disabled_reason == ""
    assert lifecycle.delivery_resend(actor=ACTOR, delivery=delivery).status == "pending"
