"""No secret reaches an event body, a task argument or result, a receipt, the audit trail or
the logs, through every new path: events, retries, test events, expiry notices, the clock."""

import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from credentials import crypto, lifecycle
from credentials.models import AuditEvent, Delivery, DeliveryReceipt, Kind, WebhookMessage
from credentials.webhooks import send_test_ping
from credentials.webhooks.clock import sweep
from tests.receiver import Receiver
from tests.states import ACTOR
from tests.webhook_helpers import drain

pytestmark = pytest.mark.django_db(transaction=True)


def test_no_plaintext_or_secret_shape_anywhere_webhooks_write(issue, settings, caplog, capsys):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PORTAL_WEBHOOK_RETRY_SCHEDULE = [0]
    settings.PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS = 0.5
    caplog.set_level(logging.DEBUG)
    secrets = []
    with Receiver(script=[500, "timeout"], hold_seconds=1) as receiver:
        hook = issue(Kind.ENDPOINT_SECRET, url=receiver.url)
        endpoint = hook.credential.endpoint
        secrets.append(hook.plaintext)
        key = issue(Kind.API_KEY, name="orders", lifetime_days=3)
        client = issue(Kind.CLIENT_SECRET, name="oauth")
        secrets += [key.plaintext, client.plaintext]
        for credential in (key.credential, client.credential, hook.credential):
            secrets.append(
                lifecycle.credential_rotate(actor=ACTOR, credential=credential).plaintext
            )
        lifecycle.version_revoke(actor=ACTOR, version=key.version, reason="routine")
        lifecycle.version_report_exposure(actor=ACTOR, version=client.version, note="leaked")
        drain()
        send_test_ping(endpoint=endpoint, actor=ACTOR)
        call_command("send_test_event", str(endpoint.pk))
        sweep(now=key.version.created_at + timedelta(days=2, hours=12))
        drain()
        sweep(now=key.version.created_at + timedelta(days=4))
        drain()
    assert DeliveryReceipt.objects.count() >= 6  # the paths above really ran
    assert WebhookMessage.objects.filter(event_type="credential.expiring").exists()
    raw_keys = [s.split("_", 1)[1] for s in secrets if s.startswith("whsec_")]

    written = [
        *WebhookMessage.objects.values_list("body", flat=True),
        *(str(row) for row in DBTaskResult.objects.values_list(
            "args_kwargs", "return_value", "traceback", "exception_class_path"
        )),
        *(str(row) for row in DeliveryReceipt.objects.values()),
        *(str(row) for row in Delivery.objects.values()),
        *(str(row) for row in AuditEvent.objects.values(
            "actor_label", "target_label", "details"
        )),
        caplog.text,
        capsys.readouterr().out,
        *(str(r.body) for r in receiver.requests),
    ]  # fmt: skip
    everything = "\n".join(written)
    for secret in [*secrets, *raw_keys]:
        assert secret not in everything
    assert not crypto.looks_secret(everything)
