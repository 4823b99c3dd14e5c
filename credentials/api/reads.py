"""Read operations: apps, endpoints, credentials, versions (metadata only) and the audit log.

Each read is audited (``api.read``) with the key as actor. Lists are keyset-paginated
(``?cursor=`` from the previous page's ``next_cursor``, ``?limit=`` at most 100).
"""

from datetime import UTC, datetime

from django.db.models import Q
from django.shortcuts import get_object_or_404
from ninja import Path, Query

from .. import lifecycle
from ..models import App, AuditEvent, Credential, CredentialVersion, Endpoint
from . import schemas
from .auth import needs
from .management import api
from .pagination import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, page
from .problems import Problem

ERRORS = {code: schemas.ProblemOut for code in (400, 401, 403, 404, 413, 422, 429)}
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _id(description: str):
    return Path(..., ge=1, le=MAX_ID, description=description)


def _limit():
    return Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}.")


def _cursor():
    return Query(None, max_length=64, description="next_cursor of the previous page.")


def _filter_id():
    return Query(None, ge=1, le=MAX_ID)


def _audit(request, operation: str, **details) -> None:
    details = {name: value for name, value in details.items() if value is not None}
    lifecycle.api_record_read(
        actor=request.auth.actor, caller=request.auth.version, operation=operation, details=details
    )


@api.get(
    "/apps",
    response={200: schemas.AppPage, **ERRORS},
    tags=["apps"],
    auth=needs("credentials:read"),
)
def list_apps(request, cursor: str | None = _cursor(), limit: int = _limit()):
    """Every app, by id."""
    rows, next_cursor = page(App.objects.all(), field="id", cursor=cursor, limit=limit)
    _audit(request, "list_apps", count=len(rows))
    return {"items": rows, "next_cursor": next_cursor}


@api.get(
    "/apps/{app_id}",
    response={200: schemas.AppOut, **ERRORS},
    tags=["apps"],
    auth=needs("credentials:read"),
)
def get_app(request, app_id: int = _id("The app's id.")):
    app = get_object_or_404(App, pk=app_id)
    _audit(request, "get_app", app_id=app.pk)
    return app


@api.get(
    "/endpoints",
    response={200: schemas.EndpointPage, **ERRORS},
    tags=["endpoints"],
    auth=needs("credentials:read"),
)
def list_endpoints(
    request,
    app_id: int | None = _filter_id(),
    cursor: str | None = _cursor(),
    limit: int = _limit(),
):
    """Webhook endpoints, by id, optionally of one app."""
    endpoints = Endpoint.objects.select_related("credential")
    if app_id is not None:
        endpoints = endpoints.filter(app_id=app_id)
    rows, next_cursor = page(endpoints, field="id", cursor=cursor, limit=limit)
    _audit(request, "list_endpoints", app_id=app_id, count=len(rows))
    return {"items": [_endpoint(row) for row in rows], "next_cursor": next_cursor}


@api.get(
    "/endpoints/{endpoint_id}",
    response={200: schemas.EndpointOut, **ERRORS},
    tags=["endpoints"],
    auth=needs("credentials:read"),
)
def get_endpoint(request, endpoint_id: int = _id("The endpoint's id.")):
    endpoint = get_object_or_404(Endpoint.objects.select_related("credential"), pk=endpoint_id)
    _audit(request, "get_endpoint", endpoint_id=endpoint.pk)
    return _endpoint(endpoint)


def _endpoint(endpoint: Endpoint) -> dict:
    credential = getattr(endpoint, "credential", None)
    return {
        "id": endpoint.pk,
        "app_id": endpoint.app_id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types or []),
        "enabled": endpoint.enabled,
        "created_at": endpoint.created_at,
        "credential_id": credential.pk if credential else None,
    }


@api.get(
    "/credentials",
    response={200: schemas.CredentialPage, **ERRORS},
    tags=["credentials"],
    auth=needs("credentials:read"),
)
def list_credentials(
    request,
    app_id: int | None = _filter_id(),
    kind: schemas.KindName | None = Query(None),
    cursor: str | None = _cursor(),
    limit: int = _limit(),
):
    """Credentials, by id, optionally of one app or one kind."""
    credentials = Credential.objects.all()
    if app_id is not None:
        credentials = credentials.filter(app_id=app_id)
    if kind is not None:
        credentials = credentials.filter(kind=kind)
    rows, next_cursor = page(credentials, field="id", cursor=cursor, limit=limit)
    _audit(request, "list_credentials", app_id=app_id, kind=kind, count=len(rows))
    return {"items": rows, "next_cursor": next_cursor}


@api.get(
    "/credentials/{credential_id}",
    response={200: schemas.CredentialOut, **ERRORS},
    tags=["credentials"],
    auth=needs("credentials:read"),
)
def get_credential(request, credential_id: int = _id("The credential's id.")):
    credential = get_object_or_404(Credential, pk=credential_id)
    _audit(request, "get_credential", credential_id=credential.pk)
    return credential


@api.get(
    "/credentials/{credential_id}/versions",
    response={200: schemas.VersionPage, **ERRORS},
    tags=["credentials"],
    auth=needs("credentials:read"),
)
def list_versions(
    request,
    credential_id: int = _id("The credential's id."),
    cursor: str | None = _cursor(),
    limit: int = _limit(),
):
    """A credential's versions, newest first: metadata only, never a secret or digest."""
    credential = get_object_or_404(Credential, pk=credential_id)
    rows, next_cursor = page(
        credential.versions.all(), field="number", cursor=cursor, limit=limit, descending=True
    )
    _audit(request, "list_versions", credential_id=credential.pk, count=len(rows))
    return {"items": rows, "next_cursor": next_cursor}


@api.get(
    "/credentials/{credential_id}/versions/{number}",
    response={200: schemas.VersionOut, **ERRORS},
    tags=["credentials"],
    auth=needs("credentials:read"),
)
def get_version(
    request,
    credential_id: int = _id("The credential's id."),
    number: int = _id("The version number."),
):
    version = find_version(credential_id, number)
    _audit(request, "get_version", credential_id=credential_id, version=number)
    return version


def find_version(credential_id: int, number: int) -> CredentialVersion:
    return get_object_or_404(
        CredentialVersion.objects.select_related("credential"),
        credential_id=credential_id,
        number=number,
    )


@api.get(
    "/audit", response={200: schemas.AuditPage, **ERRORS}, tags=["audit"], auth=needs("audit:read")
)
def list_audit_events(
    request,
    action: str | None = Query(None, pattern=r"^[a-z_]{1,32}\.[a-z_]{1,32}$"),
    actor_type: str | None = Query(None, pattern=r"^(user|api_key|system)$"),
    actor_id: str | None = Query(None, pattern=r"^[0-9A-Za-z-]{1,64}$"),
    app_id: int | None = _filter_id(),
    credential_id: int | None = _filter_id(),
    since: datetime | None = Query(None, description="Events at or after this time."),
    until: datetime | None = Query(None, description="Events before this time."),
    cursor: str | None = _cursor(),
    limit: int = _limit(),
):
    """The audit trail, newest first, with filters."""
    events = AuditEvent.objects.all()
    filters = Q()
    for name, value in (
        ("action", action),
        ("actor_type", actor_type),
        ("actor_id", actor_id),
        ("app_id", app_id),
        ("credential_id", credential_id),
    ):
        if value is not None:
            filters &= Q(**{name: value})
    if since is not None:
        filters &= Q(created_at__gte=_moment(since, "since"))
    if until is not None:
        filters &= Q(created_at__lt=_moment(until, "until"))
    rows, next_cursor = page(
        events.filter(filters), field="seq", cursor=cursor, limit=limit, descending=True
    )
    _audit(
        request,
        "list_audit_events",
        action=action,
        actor_type=actor_type,
        app_id=app_id,
        credential_id=credential_id,
        count=len(rows),
    )
    return {"items": rows, "next_cursor": next_cursor}


def _moment(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        inside = _EARLIEST <= value <= _LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise Problem("invalid-request", f"Give {name} as a time between 1970 and 9000.")
    return value
