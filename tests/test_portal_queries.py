"""A page's query count does not grow with its rows: ten rows and a thousand cost the same.

Each test renders a page once to warm process-wide caches, counts its queries with 10 rows,
adds 990 more and counts again. Rows are bulk-created (no lifecycle, no audit) except audit
events, which only `audit.append` may write.
"""

import secrets
from collections.abc import Callable
from datetime import timedelta
from itertools import count

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from credentials import audit
from credentials.models import (
    App,
    Credential,
    CredentialVersion,
    Endpoint,
    Kind,
    RevokeReason,
    State,
)
from tests.states import ACTOR

pytestmark = pytest.mark.django_db

FEW, MANY = 10, 1000
_serial = count(1)


def _version(credential, number, *, state, **fields) -> CredentialVersion:
    n = next(_serial)
    return CredentialVersion(
        credential=credential,
        number=number,
        state=state,
        created_by="tests",
        last_four=f"{n % 10000:04d}",
        fingerprint=f"{n:064x}",
        digest=secrets.token_hex(32),
        digest_key_id="k1",
        **fields,
    )


def _in_situation(credential, i: int, now) -> CredentialVersion:
    """One version per credential, cycling through what the dashboard lists."""
    situations = [
        {"state": State.ACTIVE, "expires_at": now + timedelta(days=3)},
        {"state": State.RETIRING, "retire_at": now + timedelta(hours=5),
         "expires_at": now + timedelta(days=20)},
        {"state": State.REVOKED, "revoke_reason": RevokeReason.ROUTINE, "revoked_at": now,
         "reactivation_deadline": now + timedelta(minutes=30)},
        {"state": State.REVOKED, "revoke_reason": RevokeReason.EXPOSED, "revoked_at": now},
    ]  # fmt: skip
    return _version(credential, 1, **situations[i % len(situations)])


def add_credentials(app, n: int) -> None:
    """``n`` more API-key credentials on ``app``, each with one version in some situation."""
    now = timezone.now()
    start = Credential.objects.count()
    made = Credential.objects.bulk_create(
        Credential(app=app, kind=Kind.API_KEY, name=f"bulk {start + i}") for i in range(n)
    )
    CredentialVersion.objects.bulk_create(
        _in_situation(credential, start + i, now) for i, credential in enumerate(made)
    )


def add_versions(credential, n: int) -> None:
    """``n`` more old versions (expired or revoked) of one credential."""
    now = timezone.now()
    top = credential.versions.order_by("-number").values_list("number", flat=True).first() or 0
    old = [
        {"state": State.EXPIRED, "expired_at": now},
        {"state": State.REVOKED, "revoked_at": now, "revoke_reason": RevokeReason.OFFBOARDING},
    ]
    CredentialVersion.objects.bulk_create(
        _version(credential, top + 1 + i, **old[i % 2]) for i in range(n)
    )


def add_endpoints(app, n: int) -> None:
    """``n`` more endpoints, each with its signing-secret credential."""
    start = Endpoint.objects.count()
    endpoints = Endpoint.objects.bulk_create(
        Endpoint(app=app, url=f"https://hooks.example.com/{start + i}") for i in range(n)
    )
    Credential.objects.bulk_create(
        Credential(app=app, kind=Kind.ENDPOINT_SECRET, name=f"secret {e.url}", endpoint=e)
        for e in endpoints
    )


def add_audit_events(app, n: int) -> None:
    actions = ["app.updated", "credential.revoked", "credential.rotated"]
    for i in range(n):
        with transaction.atomic():
            audit.append(
                actor=ACTOR, action=actions[i % len(actions)], target=app, app_id=app.pk,
                details={"i": i},
            )  # fmt: skip


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def few_and_many(client, url: str, grow: Callable[[int], None]) -> tuple[int, int]:
    """The page's query count with FEW rows, then with MANY."""
    grow(FEW)
    client.get(url)  # warm the content-type and permission caches
    few = queries_for(client, url)
    grow(MANY - FEW)
    return few, queries_for(client, url)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def auditor_client(client, auditor_user):
    client.force_login(auditor_user)
    return client


def test_the_credential_list_costs_the_same_for_ten_credentials_and_a_thousand(admin_client, app):
    url = reverse("admin:credentials_credential_changelist")
    few, many = few_and_many(admin_client, url, lambda n: add_credentials(app, n))
    assert many == few


def test_a_credential_page_costs_the_same_with_ten_versions_and_a_thousand(admin_client, issue):
    credential = issue(Kind.API_KEY).credential
    url = reverse("admin:credentials_credential_change", args=[credential.pk])
    few, many = few_and_many(admin_client, url, lambda n: add_versions(credential, n))
    assert many == few
    assert credential.versions.count() == MANY + 1


def test_a_credential_timeline_costs_the_same_with_ten_events_and_a_thousand(auditor_client, issue):
    version = issue(Kind.API_KEY).version
    credential = version.credential

    def grow(n):
        for _ in range(n):
            with transaction.atomic():
                audit.append(
                    actor=ACTOR, action="credential.revealed", target=version,
                    app_id=credential.app_id, credential_id=credential.pk,
                )  # fmt: skip

    url = reverse("admin:credentials_credential_timeline", args=[credential.pk])
    few, many = few_and_many(auditor_client, url, grow)
    assert many == few


def test_the_version_list_costs_the_same_for_ten_versions_and_a_thousand(auditor_client, app):
    url = reverse("admin:credentials_credentialversion_changelist")
    few, many = few_and_many(auditor_client, url, lambda n: add_credentials(app, n))
    assert many == few
    assert CredentialVersion.objects.count() == MANY


def test_the_dashboard_costs_the_same_for_ten_rows_and_a_thousand(admin_client, app):
    url = reverse("admin:index")
    few, many = few_and_many(admin_client, url, lambda n: add_credentials(app, n))
    assert many == few
    assert "Revokes that can still be undone" in admin_client.get(url).content.decode()


def test_the_audit_log_costs_the_same_for_ten_events_and_a_thousand(auditor_client, app):
    url = reverse("admin:credentials_auditevent_changelist")
    few, many = few_and_many(auditor_client, url, lambda n: add_audit_events(app, n))
    assert many == few


def test_an_app_page_costs_the_same_with_ten_credentials_and_endpoints_and_a_thousand(
    admin_client, app
):
    def grow(n):
        add_credentials(app, n)
        add_endpoints(app, n)

    url = reverse("admin:credentials_app_change", args=[app.pk])
    few, many = few_and_many(admin_client, url, grow)
    assert many == few
    assert App.objects.get(pk=app.pk).credentials.count() == 2 * MANY


def test_the_endpoint_list_costs_the_same_for_ten_endpoints_and_a_thousand(auditor_client, app):
    url = reverse("admin:credentials_endpoint_changelist")
    few, many = few_and_many(auditor_client, url, lambda n: add_endpoints(app, n))
    assert many == few
