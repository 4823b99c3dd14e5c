"""The outbox: record an event and its deliveries in the caller's transaction.

``emit`` is called by lifecycle functions inside the transaction that makes the change, so the
event exists if and only if the change committed. The delivery tasks are enqueued with
``transaction.on_commit`` and carry only a delivery's id: a rolled-back change sends nothing,
and no task argument can ever hold a secret.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from ..models import (
    Credential,
    CredentialVersion,
    Delivery,
    Endpoint,
    EventType,
    WebhookMessage,
)


def body_bytes(event_type: str, *, at: datetime, data: dict) -> str:
    """The body every attempt sends: ``{"type", "timestamp", "data"}`` as compact JSON."""
    payload = {"type": event_type, "timestamp": _iso(at), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def credential_data(credential: Credential, version: CredentialVersion | None, **extra) -> dict:
    """What every credential event says: which app, credential and version, never a secret.

    Versions are named by number, last four characters and fingerprint only.
    """
    data = {
        "app": {"client_id": credential.app.client_id, "name": credential.app.name},
        "credential": {"id": credential.pk, "name": credential.name, "kind": credential.kind},
    }
    if version is not None:
        data["version"] = version_data(version)
    data.update(extra)
    return data


def version_data(version: CredentialVersion) -> dict:
    return {
        "number": version.number,
        "state": version.state,
        "last_four": version.last_four,
        "fingerprint": version.fingerprint,
        "expires_at": _iso(version.expires_at),
    }


def emit(event_type: str, *, credential: Credential, data: dict) -> WebhookMessage | None:
    """Record one event for every enabled, subscribed endpoint of the credential's app.

    Must run inside the transaction of the change it reports. Returns the message, or None
    when no endpoint wants it (then nothing is written).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit must run inside the transaction that makes the change")
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(app_id=credential.app_id, enabled=True)
        if endpoint.subscribes_to(event_type)
    ]
    if not endpoints:
        return None
    now = timezone.now()
    message = WebhookMessage.objects.create(
        event_type=event_type,
        body=body_bytes(event_type, at=now, data=data),
        created_at=now,
        app_id=credential.app_id,
        credential=credential,
    )
    deliveries = Delivery.objects.bulk_create(
        [Delivery(message=message, endpoint=e, next_attempt_at=now) for e in endpoints]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: enqueue(ids))
    return message


def test_message(endpoint: Endpoint) -> WebhookMessage:
    """A fresh ``test.ping`` message for one endpoint (written in the caller's transaction)."""
    now = timezone.now()
    data = {
        "app": {"client_id": endpoint.app.client_id, "name": endpoint.app.name},
        "endpoint": {"id": endpoint.pk, "url": endpoint.url},
        "message": "A test event from Keyturn. Verify its signature, then answer 2xx.",
    }
    return WebhookMessage.objects.create(
        event_type=EventType.TEST_PING,
        body=body_bytes(EventType.TEST_PING, at=now, data=data),
        created_at=now,
        app_id=endpoint.app_id,
    )


def enqueue(delivery_ids, *, run_after: datetime | None = None) -> None:
    """Queue one delivery task per id (ids only, never content)."""
    from .tasks import deliver  # the task module imports the lifecycle, which imports this one

    task = deliver if run_after is None else deliver.using(run_after=run_after)
    for delivery_id in delivery_ids:
        task.enqueue(delivery_id)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
