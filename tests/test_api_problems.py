"""Every error of the management API is RFC 9457 problem+json with a stable type, and the
limits hold: rate, body size, page size."""

import json

import pytest

from credentials.api import problems
from credentials.models import Kind
from tests.management_api import ALL_SCOPES, call, management_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def key():
    return management_key(*ALL_SCOPES).plaintext


def _assert_problem(response, status, slug):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == problems.CONTENT_TYPE
    body = response.json()
    assert body["type"] == f"urn:keyturn:problem:{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_an_unknown_address_under_the_api_is_a_problem_404(client, key):
    for path in ("/api/v1/nope", "/api/v1/apps/", "/api/v1/credentials/1/versions/x/y"):
        _assert_problem(call(client, "get", path, key), 404, "not-found")


def test_a_missing_object_is_a_problem_404(client, key):
    _assert_problem(call(client, "get", "/api/v1/apps/999999", key), 404, "not-found")
    path = "/api/v1/credentials/999999/rotations"
    _assert_problem(call(client, "post", path, key, {}), 404, "not-found")


def test_a_wrong_method_is_a_problem_405_with_allow(client, key):
    body = _assert_problem(call(client, "delete", "/api/v1/apps", key), 405, "method-not-allowed")
    assert "GET" in body["detail"]
    assert call(client, "put", "/api/v1/apps", key)["Allow"] == "GET"


def test_validation_errors_are_a_problem_422_that_never_echo_the_input(client, key, issue):
    credential = issue(Kind.API_KEY).credential
    secret = issue(Kind.API_KEY).plaintext
    path = f"/api/v1/credentials/{credential.pk}/rotations"
    body = _assert_problem(
        call(client, "post", path, key, {"overlap_seconds": secret}), 422, "validation-error"
    )
    assert body["errors"][0]["loc"][-1] == "overlap_seconds"
    assert secret not in json.dumps(body)
    for bad in ({"overlap_seconds": -1}, {"surprise": 1}, {"overlap_seconds": 10**12}):
        _assert_problem(call(client, "post", path, key, bad), 422, "validation-error")
    raw = client.post(
        path, b"{not json", content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_IDEMPOTENCY_KEY="k1",
    )  # fmt: skip
    assert raw.status_code in (400, 422)
    assert raw["Content-Type"] == problems.CONTENT_TYPE


def test_a_refused_transition_is_a_problem_409_in_the_lifecycles_words(client, key, issue):
    version = issue(Kind.API_KEY).version
    path = f"/api/v1/credentials/{version.credential_id}/versions/1/reactivate"
    body = _assert_problem(call(client, "post", path, key, {}), 409, "transition-refused")
    assert "only a revoked version can be reactivated" in body["detail"]


def test_an_exposed_version_cannot_be_reactivated_through_the_api(client, key, issue):
    version = issue(Kind.API_KEY).version
    base = f"/api/v1/credentials/{version.credential_id}/versions/1"
    assert call(client, "post", base + "/exposure", key, {}).status_code == 200
    body = _assert_problem(call(client, "post", base + "/reactivate", key, {}), 409,
                           "transition-refused")  # fmt: skip
    assert "exposed" in body["detail"]


def test_an_unexpected_error_is_a_logged_problem_500_without_details(client, key, monkeypatch):
    from credentials.api import reads

    def broken(*args, **kwargs):
        raise RuntimeError("the internals of the failure")

    monkeypatch.setattr(reads, "page", broken)
    response = call(client, "get", "/api/v1/apps", key)
    body = _assert_problem(response, 500, "server-error")
    assert "internals" not in json.dumps(body)


def test_each_key_is_rate_limited_with_retry_after(client, settings):
    settings.PORTAL_API_RATE = 3
    limited_key = management_key("credentials:read").plaintext
    other_key = management_key("credentials:read").plaintext
    for _ in range(3):
        assert call(client, "get", "/api/v1/apps", limited_key).status_code == 200
    response = call(client, "get", "/api/v1/apps", limited_key)
    _assert_problem(response, 429, "rate-limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert call(client, "get", "/api/v1/apps", other_key).status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_parsed(client, key, issue):
    from credentials.api.auth import MAX_BODY_BYTES

    version = issue(Kind.API_KEY).version
    path = f"/api/v1/credentials/{version.credential_id}/versions/1/revoke"
    note = "n" * (MAX_BODY_BYTES + 1)
    response = call(client, "post", path, key, {"reason": "other", "note": note})
    _assert_problem(response, 413, "body-too-large")
    version.refresh_from_db()
    assert version.state == "active"


def test_pages_are_capped_and_a_cursor_walks_every_row_once(client, key, issue):
    for _ in range(7):
        issue(Kind.API_KEY)
    _assert_problem(call(client, "get", "/api/v1/credentials?limit=101", key), 422,
                    "validation-error")  # fmt: skip
    assert call(client, "get", "/api/v1/credentials?limit=100", key).status_code == 200
    seen, cursor = [], None
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = call(client, "get", f"/api/v1/credentials?{query}", key).json()
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    from credentials.models import Credential

    assert seen == sorted(Credential.objects.values_list("pk", flat=True))


@pytest.mark.parametrize(
    "cursor", ["garbage", "azE6LTE", "eDox", "%%%", "azE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5"]
)
def test_a_cursor_we_did_not_hand_out_is_a_problem_400(client, key, cursor):
    response = call(client, "get", f"/api/v1/audit?cursor={cursor}", key)
    _assert_problem(response, 400, "invalid-cursor")


def test_audit_filters_select_what_they_name(client, key, issue):
    credential = issue(Kind.API_KEY).credential
    path = f"/api/v1/audit?credential_id={credential.pk}&action=credential.issued"
    items = call(client, "get", path, key).json()["items"]
    assert [(e["action"], e["credential_id"]) for e in items] == [
        ("credential.issued", credential.pk)
    ]
    assert call(client, "get", "/api/v1/audit?actor_type=robot", key).status_code == 422
    _assert_problem(call(client, "get", "/api/v1/audit?since=0001-01-01T00:00:00%2B01:00", key),
                    422, "invalid-request")  # fmt: skip
    newer = call(client, "get", "/api/v1/audit?since=2999-01-01T00:00:00Z", key).json()
    assert newer["items"] == []


def test_every_problem_type_is_declared_once_with_its_status():
    slugs = list(problems.TYPES)
    assert len(slugs) == len(set(slugs))
    for slug, (status, title) in problems.TYPES.items():
        assert 400 <= status <= 599 and title
        assert problems.type_uri(slug) == f"urn:keyturn:problem:{slug}"


def test_introspection_still_answers_in_its_own_format(client, caller_key):
    from tests.introspection import introspect

    response = introspect(client, "ktak_nope", caller=caller_key)
    assert response.status_code == 200
    assert response.json() == {"active": False}
    assert call(client, "get", "/api/v1/introspect")["Content-Type"] == "application/json"
