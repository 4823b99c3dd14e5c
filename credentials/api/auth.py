"""Who is calling the automation API, and what it may do: management keys, scopes, limits.

A management key is an ``api_key`` credential of the portal's own app (client id
``MANAGEMENT_CLIENT_ID``), issued and rotated in the portal like any other key, verified by the
same hot path as introspection (``verify_bearer``: a revoke counts on the very next request).
Its scopes come from the catalogue in ``models.SCOPES``; each operation names the one it needs.

This module is the API's bearer authentication and fixed-window rate limit. Introspection has
its own copies in ``introspection.py`` (kept apart while both change); they can be folded into
this one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from ninja.security import HttpBearer

from .. import ratelimit, usage
from ..audit import Actor
from ..models import MANAGEMENT_CLIENT_ID, CredentialVersion, Kind
from ..verification import verify_bearer
from .problems import Problem

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # the largest management request (a revoke note) is far smaller
_REALM = 'Bearer realm="keyturn-api"'


@dataclass(frozen=True)
class Caller:
    """A verified management key: its version row (for the audit actor) and its scopes."""

    version: CredentialVersion
    scopes: frozenset[str]
    actor: Actor


class ManagementKey(HttpBearer):
    """``Authorization: Bearer <management key>`` holding ``scope``; every failure is a
    problem, never None. Checked before the request body is read or validated, so a key
    without the scope learns nothing about the operation beyond the scope it needs."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    @sensitive_variables("authorization", "presented")
    def __call__(self, request: HttpRequest) -> Caller:
        check_body_size(request, MAX_BODY_BYTES)
        authorization = request.headers.get("Authorization", "")
        scheme, _, presented = authorization.strip().partition(" ")
        if not authorization or scheme.lower() != "bearer":
            raise Problem(
                "unauthenticated",
                "Send a management key as 'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": _REALM},
            )
        found = verify_bearer(presented.strip())
        if found is None:
            raise Problem(
                "unauthenticated",
                "The key is unknown, malformed, revoked or expired.",
                headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
        usage.record_use(found.version_id)
        if found.client_id != MANAGEMENT_CLIENT_ID or found.kind != Kind.API_KEY:
            raise Problem(
                "not-a-management-key",
                "Only API keys of the Keyturn automation API app can call this API; issue one "
                "there with the scopes you need.",
            )
        retry_after = ratelimit.seconds_to_wait(
            f"api:{found.credential_id}", settings.PORTAL_API_RATE
        )
        if retry_after:
            raise Problem(
                "rate-limited",
                f"This key made more than {settings.PORTAL_API_RATE} requests this minute.",
                headers={"Retry-After": str(retry_after)},
            )
        if self.scope not in found.scopes:
            raise Problem(
                "missing-scope",
                f"This operation needs the scope {self.scope}, which this key does not have.",
                scope=self.scope,
            )
        version = CredentialVersion.objects.select_related("credential").get(pk=found.version_id)
        caller = Caller(
            version=version,
            scopes=frozenset(found.scopes),
            actor=Actor.for_api_key(version, request),
        )
        return caller

    def authenticate(self, request, token):  # required by HttpBearer; __call__ does the work
        raise NotImplementedError


def needs(scope: str) -> ManagementKey:
    """The authentication of an operation that needs ``scope`` (403 ``missing-scope`` without)."""
    return ManagementKey(scope)


def check_body_size(request: HttpRequest, limit: int) -> None:
    """Refuse a body over ``limit`` bytes before anything reads it (413 ``body-too-large``)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Problem("body-too-large", "The Content-Length header is not a number.") from None
    if declared > limit:
        raise Problem("body-too-large", f"Keep the request body under {limit} bytes.")
