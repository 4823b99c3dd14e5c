"""Shared by the automation API tests: management keys and how a pipeline calls the API."""

import json
import uuid

from credentials import lifecycle
from credentials.models import MANAGEMENT_CLIENT_ID, App, Kind
from tests.states import ACTOR

ALL_SCOPES = (
    "credentials:read",
    "credentials:rotate",
    "credentials:revoke",
    "exposures:report",
    "audit:read",
    "introspect",
)


def management_app() -> App:
    """The portal's own app. Migration 0008_api makes it; a transactional test before this
    one may have flushed every table, so make it again the way the migration does."""
    app, _ = App.objects.get_or_create(
        client_id=MANAGEMENT_CLIENT_ID,
        defaults={
            "name": "Keyturn automation API",
            "owner_team": "Keyturn administrators",
            "contact_email": "keyturn@localhost",
        },
    )
    return app


def management_key(*scopes, name=None) -> lifecycle.Issued:
    """Issue a management key with ``scopes``; ``.plaintext`` is the bearer secret."""
    return lifecycle.credential_issue(
        actor=ACTOR,
        app=management_app(),
        kind=Kind.API_KEY,
        name=name or f"pipeline {uuid.uuid4().hex[:8]}",
        scopes=list(scopes),
    )


def call(client, method, path, key=None, body=None, idempotency_key="auto", **headers):
    """Call the API as the holder of ``key`` (a plaintext). POSTs get a fresh
    Idempotency-Key unless one is given (or None, for none at all)."""
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if method == "post" and idempotency_key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = (
            uuid.uuid4().hex if idempotency_key == "auto" else idempotency_key
        )
    if method == "post":
        payload = json.dumps(body if body is not None else {})
        return client.post(path, payload, content_type="application/json", **extra)
    return getattr(client, method)(path, **extra)
