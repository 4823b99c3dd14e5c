"""The scope matrix: every operation of the management API against every scope, and against
no key, a revoked key, an expired key and a key of another app."""

import pytest

from credentials import lifecycle
from credentials.api.management import api
from credentials.models import Kind, RevokeReason
from tests.management_api import ALL_SCOPES, call, management_key
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


def _active(issue):
    return issue(Kind.API_KEY).version


def _revoked(issue):
    version = _active(issue)
    return lifecycle.version_revoke(actor=ACTOR, version=version, reason=RevokeReason.ROUTINE)


def _endpoint(issue):
    return issue(Kind.ENDPOINT_SECRET).credential.endpoint


def _version_path(version, suffix=""):
    return f"/api/v1/credentials/{version.credential_id}/versions/{version.number}{suffix}"


# operation id -> (method, how to build the path from a fresh target, body, scope, success)
OPERATIONS = {
    "list_apps": ("get", lambda issue: "/api/v1/apps", None, "credentials:read", 200),
    "get_app": (
        "get", lambda issue: f"/api/v1/apps/{_active(issue).credential.app_id}", None,
        "credentials:read", 200,
    ),
    "list_endpoints": ("get", lambda issue: "/api/v1/endpoints", None, "credentials:read", 200),
    "get_endpoint": (
        "get", lambda issue: f"/api/v1/endpoints/{_endpoint(issue).pk}",
        None, "credentials:read", 200,
    ),
    "list_credentials": (
        "get", lambda issue: "/api/v1/credentials", None, "credentials:read", 200,
    ),
    "get_credential": (
        "get", lambda issue: f"/api/v1/credentials/{_active(issue).credential_id}", None,
        "credentials:read", 200,
    ),
    "list_versions": (
        "get", lambda issue: f"/api/v1/credentials/{_active(issue).credential_id}/versions",
        None, "credentials:read", 200,
    ),
    "get_version": (
        "get", lambda issue: _version_path(_active(issue)), None, "credentials:read", 200,
    ),
    "list_audit_events": ("get", lambda issue: "/api/v1/audit", None, "audit:read", 200),
    "rotate_credential": (
        "post", lambda issue: f"/api/v1/credentials/{_active(issue).credential_id}/rotations",
        {"overlap_seconds": 60}, "credentials:rotate", 201,
    ),
    "revoke_version": (
        "post", lambda issue: _version_path(_active(issue), "/revoke"), {"reason": "routine"},
        "credentials:revoke", 200,
    ),
    "reactivate_version": (
        "post", lambda issue: _version_path(_revoked(issue), "/reactivate"), {},
        "credentials:revoke", 200,
    ),
    "report_exposure": (
        "post", lambda issue: _version_path(_active(issue), "/exposure"), {"note": "in a log"},
        "exposures:report", 200,
    ),
}  # fmt: skip

KEYED_OPERATIONS = sorted(OPERATIONS)


def test_the_table_names_every_keyed_operation_of_the_served_document(client):
    document = client.get("/api/v1/openapi.json").json()
    served = {
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
        if operation.get("security")
    }
    assert served == set(OPERATIONS)


def test_every_keyed_operation_declares_the_scope_of_the_table():
    declared = {
        operation.view_func.__name__: operation.auth_callbacks[0].scope
        for _, router in api._routers
        for path_view in router.path_operations.values()
        for operation in path_view.operations
        if operation.auth_callbacks
    }
    assert declared == {name: row[3] for name, row in OPERATIONS.items()}


@pytest.mark.parametrize("scope", ALL_SCOPES)
@pytest.mark.parametrize("operation", KEYED_OPERATIONS)
def test_scope_matrix(client, issue, operation, scope):
    method, path_for, body, required, success = OPERATIONS[operation]
    key = management_key(scope).plaintext
    response = call(client, method, path_for(issue), key, body)
    if scope == required:
        assert response.status_code == success, response.content
        assert response["Content-Type"].startswith("application/json")
    else:
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:keyturn:problem:missing-scope"
        assert problem["scope"] == required
        assert required in problem["detail"]


def _expired_key():
    issued = management_key(*ALL_SCOPES)
    lifecycle.versions_expire(now=issued.version.expires_at)
    return issued.plaintext


def _revoked_key():
    issued = management_key(*ALL_SCOPES)
    lifecycle.version_revoke(actor=ACTOR, version=issued.version, reason=RevokeReason.ROUTINE)
    return issued.plaintext


def _past_expiry_key():
    # Expired by time alone, before any sweep recorded it: still refused.
    issued = management_key(*ALL_SCOPES)
    issued.version.__class__.objects.filter(pk=issued.version.pk).update(
        expires_at=issued.version.created_at
    )
    return issued.plaintext


REFUSED_CALLERS = {
    "no key": (lambda issue: None, 401, "unauthenticated"),
    "malformed key": (lambda issue: "ktak_not-a-key", 401, "unauthenticated"),
    "revoked key": (lambda issue: _revoked_key(), 401, "unauthenticated"),
    "expired key": (lambda issue: _expired_key(), 401, "unauthenticated"),
    "key past its expiry, not yet swept": (
        lambda issue: _past_expiry_key(), 401, "unauthenticated",
    ),
    "key of another app, every scope": (
        lambda issue: issue(Kind.API_KEY, scopes=list(ALL_SCOPES)).plaintext,
        403, "not-a-management-key",
    ),
    "client secret of the management app": (
        lambda issue: lifecycle.credential_issue(
            actor=ACTOR, app=management_key().credential.app, kind=Kind.CLIENT_SECRET,
            name="not a key", scopes=list(ALL_SCOPES),
        ).plaintext,
        403, "not-a-management-key",
    ),
}  # fmt: skip


@pytest.mark.parametrize("caller", sorted(REFUSED_CALLERS))
@pytest.mark.parametrize("operation", KEYED_OPERATIONS)
def test_refused_callers_change_nothing(client, issue, operation, caller):
    method, path_for, body, _, _ = OPERATIONS[operation]
    make_key, status, slug = REFUSED_CALLERS[caller]
    key = make_key(issue)
    path = path_for(issue)
    before = _state_of_everything()
    response = call(client, method, path, key, body)
    assert response.status_code == status
    assert response.json()["type"] == f"urn:keyturn:problem:{slug}"
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert _state_of_everything() == before


def _state_of_everything():
    """Every version's state, and how many audit events and idempotency records exist (the
    use count is left out: a refused caller's key was still presented, and counts as used)."""
    from credentials.models import AuditEvent, CredentialVersion, IdempotencyRecord

    versions = sorted(CredentialVersion.objects.values_list("pk", "state", "revoke_reason"))
    return versions, AuditEvent.objects.count(), IdempotencyRecord.objects.count()


def test_the_scope_is_checked_before_the_body_is_even_validated(client, issue):
    key = management_key("credentials:read").plaintext
    credential = issue(Kind.API_KEY).credential
    path = f"/api/v1/credentials/{credential.pk}/rotations"
    response = call(client, "post", path, key, {"overlap_seconds": "not a number", "x": 1})
    assert response.status_code == 403
    assert response.json()["scope"] == "credentials:rotate"
    assert call(client, "post", path, key, {}, idempotency_key=None).status_code == 403
