"""Who may open which portal page and take which action: one explicit matrix.

Each row is a page or an action; each column a role (security staff, auditor, administrator,
a staff user with no role, an anonymous visitor). A cell is OK (the page renders, or the
change happens and is audited as that user), LOGIN (redirected to the login page) or the status
code of the refusal. A page view and a refused request change nothing: no version state or
count, no credential, app or endpoint field, no user, no audit event.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.urls import reverse

from credentials import lifecycle, once
from credentials.models import (
    App,
    AuditEvent,
    ChainVerification,
    Credential,
    CredentialVersion,
    Delivery,
    DeliveryReceipt,
    Endpoint,
    Kind,
    RevokeReason,
    Rotation,
    State,
)
from credentials.webhooks import events
from tests.states import ACTOR, make_version

pytestmark = pytest.mark.django_db

OK = "ok"
LOGIN = "login"
ROLES = ("security", "auditor", "administrator", "outsider", "anonymous")
ROLE_FIXTURES = {
    "security": "security_user",
    "auditor": "auditor_user",
    "administrator": "admin_user",
    "outsider": "outsider_user",
}
NEW_HOOK = "https://hooks.example.com/added-in-the-matrix"
MOVED_HOOK = "https://hooks.example.com/moved-in-the-matrix"


@dataclass(frozen=True)
class World:
    """What every request acts on: an app, a live version, a revoked one, an endpoint."""

    app: App
    credential: Credential
    active: CredentialVersion
    revoked: CredentialVersion
    endpoint: Endpoint
    delivery: Delivery
    receipt: DeliveryReceipt
    rotation: Rotation  # a guided rotation in progress, of a credential of its own


@pytest.fixture
def world(app, issue):
    active = make_version(issue, "active")
    revoked = make_version(issue, "revoked")
    endpoint = issue(Kind.ENDPOINT_SECRET).credential.endpoint
    with transaction.atomic():  # a delivery that failed for good: the one "resend" revives
        message = events.emit("credential.rotated", credential=active.credential, data={})
    delivery = message.deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, attempts=1)
    receipt = DeliveryReceipt.objects.create(
        delivery=delivery, attempt=1, started_at=delivery.created_at, webhook_timestamp=0,
        status_code=503, ok=False, latency_ms=12, sent_by="delivery worker",
    )  # fmt: skip
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=issue(Kind.API_KEY).credential)
    return World(app, active.credential, active, revoked, endpoint, delivery, receipt, rotation)


# --------------------------------------------------------------------------- how to send


def get(*, follow=False):
    def send(client, user, url, w):
        return client.get(url, follow=follow)

    return send


def post(fields):
    def send(client, user, url, w):
        return client.post(url, fields(w))

    return send


def post_once(purpose: str, target: Callable[[World], str], fields):
    """GET the minting page, read its one-time token and POST the form with it.

    A refused GET carries no token; then a genuine one is made for that user, so the POST is
    refused for who sent it, not for a missing or stale token.
    """

    def send(client, user, url, w):
        found = re.search(r'name="once" value="([^"]+)"', client.get(url).content.decode())
        token = found.group(1) if found else once.new_token(
            user=user, purpose=purpose, target=target(w)
        )  # fmt: skip
        return client.post(url, {"once": token, **fields(w)})

    return send


def bulk(action: str, selected: Callable[[World], list], fields: dict):
    """Choose an action on the changelist, then confirm it (`apply=1` and the form)."""

    def send(client, user, url, w):
        chosen = {"action": action, "_selected_action": [obj.pk for obj in selected(w)]}
        client.post(url, {**chosen, "index": "0"})
        return client.post(url, {**chosen, "apply": "1", **fields})

    return send


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Case:
    id: str
    url: str
    send: Callable
    expect: dict[str, object]
    args: Callable[[World], list] = lambda w: []
    ok_status: int = 200
    shows: str | None = None  # in the allowed response only; formatted with w=World
    changed: Callable[[World], bool] | None = None  # the change an allowed request makes
    audit: str | None = None  # the audit event it writes, if Keyturn audits it

    def __str__(self):
        return self.id


def who(security, auditor, administrator, outsider, anonymous):
    return dict(zip(ROLES, (security, auditor, administrator, outsider, anonymous), strict=True))


def credential_pk(w):
    return [w.credential.pk]


def _reloaded(version):
    return CredentialVersion.objects.get(pk=version.pk)


CREDENTIAL_FORM = {"name": "Renamed in the matrix", "scopes": ["orders:read"],
                   "lifetime_days": "", "overlap_seconds": "3600", "_save": "Save"}  # fmt: skip
APP_FORM = {"name": "Payroll", "owner_team": "People", "contact_email": "people@example.com",
            "description": "", "_save": "Save"}  # fmt: skip
ISSUE_FORM = {"app": None, "kind": Kind.API_KEY, "name": "Issued in the matrix",
              "lifetime_days": "", "overlap_hours": "24"}  # fmt: skip
USER_FORM = {"username": "newcomer", "usable_password": "true", "password1": "a long passphrase 42",
             "password2": "a long passphrase 42", "_save": "Save"}  # fmt: skip
HISTORY = 'id="change-history"'
EXPOSE_FORM = {"note": "pasted in a public channel", "confirm": "on"}
ROTATION_PLAN = {"step": "0", "action": "complete", "tick_0": "on", "tick_1": "on",
                 "overlap_hours": "1"}  # fmt: skip

CASES = [
    # Home and lists: everyone with a role reads; the no-role user sees no credential data.
    Case("index", "admin:index", get(), who(OK, OK, OK, 200, LOGIN),
         shows="{w.revoked.masked}"),
    Case("credentials-app-index", "admin:app_list", get(), who(OK, OK, OK, 404, LOGIN),
         args=lambda w: ["credentials"], shows="Credential versions"),
    Case("credential-changelist", "admin:credentials_credential_changelist", get(),
         who(OK, OK, OK, 403, LOGIN), shows="{w.active.masked}"),
    Case("credential-change-get", "admin:credentials_credential_change", get(),
         who(OK, OK, OK, 403, LOGIN), args=credential_pk, shows='id="kt-version-table"'),
    Case("credential-change-post", "admin:credentials_credential_change",
         post(lambda w: CREDENTIAL_FORM), who(OK, 403, OK, 403, LOGIN), args=credential_pk,
         ok_status=302, audit="credential.updated",
         changed=lambda w: Credential.objects.get(pk=w.credential.pk).name
         == "Renamed in the matrix"),
    Case("credential-add-get-redirects-to-issue", "admin:credentials_credential_add",
         get(follow=True), who(OK, 403, OK, 403, LOGIN), shows='name="once"'),
    Case("credential-delete-post", "admin:credentials_credential_delete",
         post(lambda w: {"post": "yes"}), who(403, 403, 403, 403, LOGIN), args=credential_pk),
    Case("credential-issue-get", "admin:credentials_credential_issue", get(),
         who(OK, 403, OK, 403, LOGIN), shows='name="once"'),
    Case("credential-issue-post", "admin:credentials_credential_issue",
         post_once("issue", lambda w: "new", lambda w: {**ISSUE_FORM, "app": w.app.pk}),
         who(OK, 403, OK, 403, LOGIN), shows='id="kt-secret"', audit="credential.issued",
         changed=lambda w: Credential.objects.filter(name="Issued in the matrix").exists()),
    Case("credential-rotate-get", "admin:credentials_credential_rotate", get(),
         who(OK, 403, OK, 404, LOGIN), args=credential_pk, shows='name="once"'),
    Case("credential-rotate-post", "admin:credentials_credential_rotate",
         post_once("rotate", lambda w: f"credential:{w.credential.pk}",
                   lambda w: {"overlap_hours": "1"}),
         who(OK, 403, OK, 404, LOGIN), args=credential_pk, shows='id="kt-secret"',
         audit="credential.rotated",
         changed=lambda w: _reloaded(w.active).state == State.RETIRING
         and w.credential.versions.count() == 2),
    # Guided rotations: security and administrators walk them; auditors follow them.
    Case("rotation-start-get", "admin:credentials_credential_rotation_start", get(),
         who(OK, 403, OK, 404, LOGIN), args=credential_pk, shows="Start the guided rotation"),
    Case("rotation-start-post", "admin:credentials_credential_rotation_start", post(lambda w: {}),
         who(OK, 403, OK, 404, LOGIN), args=credential_pk, ok_status=302,
         audit="rotation.started",
         changed=lambda w: w.credential.rotations.filter(state="in_progress").exists()),
    # Opening a rotation someone else started joins it (logged, audited); an auditor only reads
    # it (no form; tests/test_portal_rotations.py checks the log is on show).
    Case("rotation-page-get-joins", "admin:credentials_rotation", get(),
         who(OK, 200, OK, 404, LOGIN), args=lambda w: [w.rotation.pk], shows='name="once"',
         audit="rotation.resumed",
         changed=lambda w: any(e["outcome"] == "joined"
                               for e in Rotation.objects.get(pk=w.rotation.pk).log)),
    Case("rotation-step-post", "admin:credentials_rotation",
         post_once("rotation", lambda w: f"rotation:{w.rotation.pk}:0", lambda w: ROTATION_PLAN),
         who(OK, 403, OK, 404, LOGIN), args=lambda w: [w.rotation.pk], ok_status=302,
         audit="rotation.step_completed",
         changed=lambda w: Rotation.objects.get(pk=w.rotation.pk).step == 1),
    Case("rotation-abandon-get", "admin:credentials_rotation_abandon", get(),
         who(OK, 403, OK, 404, LOGIN), args=lambda w: [w.rotation.pk],
         shows="Abandon the rotation"),
    Case("rotation-abandon-post", "admin:credentials_rotation_abandon",
         post(lambda w: {"confirm": "on"}), who(OK, 403, OK, 404, LOGIN),
         args=lambda w: [w.rotation.pk], ok_status=302, audit="rotation.abandoned",
         changed=lambda w: Rotation.objects.get(pk=w.rotation.pk).state == "abandoned"),
    Case("rotation-activity-json", "admin:credentials_rotation_activity", get(),
         who(OK, OK, OK, 404, LOGIN), args=lambda w: [w.rotation.pk], shows='"quiet_minutes"'),
    Case("credential-timeline", "admin:credentials_credential_timeline", get(),
         who(OK, OK, OK, 404, LOGIN), args=credential_pk, shows='id="kt-timeline"'),
    # Versions: security revokes and reactivates; only administrators report exposure.
    Case("version-changelist", "admin:credentials_credentialversion_changelist", get(),
         who(OK, OK, OK, 403, LOGIN), shows="{w.revoked.masked}"),
    # A version has no page of its own (it would show digests); it redirects to its credential.
    Case("version-change-get", "admin:credentials_credentialversion_change", get(),
         who(302, 302, 302, 404, LOGIN), args=lambda w: [w.active.pk]),
    Case("version-add-get", "admin:credentials_credentialversion_add", get(),
         who(403, 403, 403, 403, LOGIN)),
    Case("version-delete-post", "admin:credentials_credentialversion_delete",
         post(lambda w: {"post": "yes"}), who(403, 403, 403, 403, LOGIN),
         args=lambda w: [w.active.pk]),
    Case("version-revoke-get", "admin:credentials_credentialversion_revoke", get(),
         who(OK, 403, OK, 404, LOGIN), args=lambda w: [w.active.pk],
         shows="Revoke {w.active.masked} now"),
    Case("version-revoke-post", "admin:credentials_credentialversion_revoke",
         post(lambda w: {"reason": RevokeReason.ROUTINE, "note": ""}),
         who(OK, 403, OK, 404, LOGIN), args=lambda w: [w.active.pk], ok_status=302,
         audit="credential.revoked", changed=lambda w: _reloaded(w.active).state == State.REVOKED),
    Case("version-reactivate-get", "admin:credentials_credentialversion_reactivate", get(),
         who(OK, 403, OK, 404, LOGIN), args=lambda w: [w.revoked.pk],
         shows="Reactivate {w.revoked.masked}"),
    Case("version-reactivate-post", "admin:credentials_credentialversion_reactivate",
         post(lambda w: {}), who(OK, 403, OK, 404, LOGIN), args=lambda w: [w.revoked.pk],
         ok_status=302, audit="credential.reactivated",
         changed=lambda w: _reloaded(w.revoked).state == State.ACTIVE),
    Case("version-expose-get", "admin:credentials_credentialversion_expose", get(),
         who(403, 403, OK, 404, LOGIN), args=lambda w: [w.active.pk],
         shows="Report {w.active.masked} exposed"),
    Case("version-expose-post", "admin:credentials_credentialversion_expose",
         post(lambda w: EXPOSE_FORM), who(403, 403, OK, 404, LOGIN),
         args=lambda w: [w.active.pk], ok_status=302, audit="credential.exposed",
         changed=lambda w: _reloaded(w.active).revoke_reason == RevokeReason.EXPOSED),
    # A role without the action is not offered it: the auditor, with no action at all, gets
    # the list back; security, offered only "revoke", is sent back with "no action selected".
    Case("bulk-revoke-selected", "admin:credentials_credentialversion_changelist",
         bulk("revoke_selected", lambda w: [w.active],
              {"reason": RevokeReason.ROUTINE, "note": ""}),
         who(OK, 200, OK, 403, LOGIN), ok_status=302, audit="credential.revoked",
         changed=lambda w: _reloaded(w.active).state == State.REVOKED),
    Case("bulk-report-selected-exposed", "admin:credentials_credentialversion_changelist",
         bulk("report_selected_exposed", lambda w: [w.active], EXPOSE_FORM),
         who(302, 200, OK, 403, LOGIN), ok_status=302, audit="credential.exposed",
         changed=lambda w: _reloaded(w.active).revoke_reason == RevokeReason.EXPOSED),
    # Apps and endpoints: security and administrators manage them.
    Case("app-changelist", "admin:credentials_app_changelist", get(),
         who(OK, OK, OK, 403, LOGIN), shows="{w.app.client_id}"),
    Case("app-add-get", "admin:credentials_app_add", get(), who(OK, 403, OK, 403, LOGIN),
         shows='name="owner_team"'),
    Case("app-add-post", "admin:credentials_app_add", post(lambda w: APP_FORM),
         who(OK, 403, OK, 403, LOGIN), ok_status=302, audit="app.created",
         changed=lambda w: App.objects.filter(name="Payroll").exists()),
    Case("app-change-get", "admin:credentials_app_change", get(), who(OK, OK, OK, 403, LOGIN),
         args=lambda w: [w.app.pk], shows="{w.endpoint.url}"),
    Case("app-change-post", "admin:credentials_app_change", post(lambda w: APP_FORM),
         who(OK, 403, OK, 403, LOGIN), args=lambda w: [w.app.pk], ok_status=302,
         audit="app.updated", changed=lambda w: App.objects.get(pk=w.app.pk).name == "Payroll"),
    Case("app-delete-post", "admin:credentials_app_delete", post(lambda w: {"post": "yes"}),
         who(403, 403, 403, 403, LOGIN), args=lambda w: [w.app.pk]),
    Case("app-archive-selected", "admin:credentials_app_changelist",
         bulk("archive_selected", lambda w: [w.app], {}), who(OK, 200, OK, 403, LOGIN),
         ok_status=302, audit="app.archived",
         changed=lambda w: App.objects.get(pk=w.app.pk).archived_at is not None),
    Case("endpoint-changelist", "admin:credentials_endpoint_changelist", get(),
         who(OK, OK, OK, 403, LOGIN), shows="{w.endpoint.url}"),
    Case("endpoint-add-get", "admin:credentials_endpoint_add", get(),
         who(OK, 403, OK, 403, LOGIN), shows='name="once"'),
    Case("endpoint-add-post-shows-the-signing-secret-once", "admin:credentials_endpoint_add",
         post_once("endpoint", lambda w: "new",
                   lambda w: {"app": w.app.pk, "url": NEW_HOOK, "event_types": ["test.ping"]}),
         who(OK, 403, OK, 403, LOGIN), shows='value="whsec_', audit="endpoint.created",
         changed=lambda w: Endpoint.objects.filter(url=NEW_HOOK).exists()),
    Case("endpoint-change-get", "admin:credentials_endpoint_change", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.endpoint.pk], shows="{w.endpoint.url}"),
    Case("endpoint-change-post", "admin:credentials_endpoint_change",
         post(lambda w: {"url": MOVED_HOOK, "event_types": ["test.ping"], "enabled": "on",
                         "_save": "Save"}),
         who(OK, 403, OK, 403, LOGIN), args=lambda w: [w.endpoint.pk], ok_status=302,
         audit="endpoint.updated",
         changed=lambda w: Endpoint.objects.get(pk=w.endpoint.pk).url == MOVED_HOOK),
    Case("endpoint-delete-post", "admin:credentials_endpoint_delete",
         post(lambda w: {"post": "yes"}), who(403, 403, 403, 403, LOGIN),
         args=lambda w: [w.endpoint.pk]),
    # Webhooks: everyone with a role reads deliveries and receipts; nobody edits them; security
    # and administrators send test events and resend.
    Case("endpoint-send-test-event", "admin:credentials_endpoint_test_event",
         post(lambda w: {}), who(OK, 403, OK, 404, LOGIN), args=lambda w: [w.endpoint.pk],
         ok_status=302, audit="webhook.test_sent",
         changed=lambda w: w.endpoint.deliveries.filter(retry=False).exists()),
    Case("endpoint-send-test-event-by-link", "admin:credentials_endpoint_test_event", get(),
         who(405, 405, 405, 405, LOGIN), args=lambda w: [w.endpoint.pk]),
    Case("receipt-changelist", "admin:credentials_deliveryreceipt_changelist", get(),
         who(OK, OK, OK, 403, LOGIN), shows="{w.endpoint.url}"),
    Case("receipt-change-get", "admin:credentials_deliveryreceipt_change", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.receipt.pk], shows="503"),
    Case("receipt-change-post", "admin:credentials_deliveryreceipt_change",
         post(lambda w: {"status_code": "200", "_save": "Save"}),
         who(403, 403, 403, 403, LOGIN), args=lambda w: [w.receipt.pk]),
    Case("receipt-add-get", "admin:credentials_deliveryreceipt_add", get(),
         who(403, 403, 403, 403, LOGIN)),
    Case("receipt-delete-post", "admin:credentials_deliveryreceipt_delete",
         post(lambda w: {"post": "yes"}), who(403, 403, 403, 403, LOGIN),
         args=lambda w: [w.receipt.pk]),
    Case("receipt-history", "admin:credentials_deliveryreceipt_history", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.receipt.pk], shows=HISTORY),
    Case("delivery-changelist", "admin:credentials_delivery_changelist", get(),
         who(OK, OK, OK, 403, LOGIN), shows="credential.rotated"),
    Case("delivery-change-get", "admin:credentials_delivery_change", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.delivery.pk],
         shows="{w.delivery.message.message_id}"),
    Case("delivery-change-post", "admin:credentials_delivery_change",
         post(lambda w: {"status": "delivered", "_save": "Save"}),
         who(403, 403, 403, 403, LOGIN), args=lambda w: [w.delivery.pk]),
    Case("delivery-add-get", "admin:credentials_delivery_add", get(),
         who(403, 403, 403, 403, LOGIN)),
    Case("delivery-delete-post", "admin:credentials_delivery_delete",
         post(lambda w: {"post": "yes"}), who(403, 403, 403, 403, LOGIN),
         args=lambda w: [w.delivery.pk]),
    Case("delivery-history", "admin:credentials_delivery_history", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.delivery.pk], shows=HISTORY),
    Case("bulk-resend-selected", "admin:credentials_delivery_changelist",
         bulk("resend_selected", lambda w: [w.delivery], {}), who(OK, 200, OK, 403, LOGIN),
         ok_status=302, audit="webhook.resent",
         changed=lambda w: Delivery.objects.get(pk=w.delivery.pk).status
         == Delivery.Status.PENDING),
    # The audit trail: read by every role, changed by nobody through the admin.
    Case("audit-changelist", "admin:credentials_auditevent_changelist", get(),
         who(OK, OK, OK, 403, LOGIN), shows="credential.revoked"),
    Case("audit-export-csv-is-itself-audited", "admin:credentials_auditevent_export",
         post(lambda w: {}), who(403, OK, OK, 403, LOGIN), shows="seq,created_at,actor_type",
         audit="audit.exported",
         changed=lambda w: AuditEvent.objects.filter(action="audit.exported").exists()),
    Case("audit-export-by-link-is-refused", "admin:credentials_auditevent_export", get(),
         who(403, 405, 405, 403, LOGIN)),
    Case("audit-verify-post", "admin:credentials_auditevent_verify", post(lambda w: {}),
         who(OK, OK, OK, 403, LOGIN), ok_status=302,
         changed=lambda w: ChainVerification.objects.exists()),
    Case("audit-verify-get", "admin:credentials_auditevent_verify", get(),
         who(405, 405, 405, 405, LOGIN)),
    Case("audit-change-get", "admin:credentials_auditevent_change", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [AuditEvent.objects.latest("seq").pk],
         shows="View audit event"),
    Case("audit-change-post", "admin:credentials_auditevent_change",
         post(lambda w: {"action": "nothing.happened", "_save": "Save"}),
         who(403, 403, 403, 403, LOGIN), args=lambda w: [AuditEvent.objects.latest("seq").pk]),
    Case("audit-add-get", "admin:credentials_auditevent_add", get(),
         who(403, 403, 403, 403, LOGIN)),
    Case("audit-delete-post", "admin:credentials_auditevent_delete",
         post(lambda w: {"post": "yes"}), who(403, 403, 403, 403, LOGIN),
         args=lambda w: [AuditEvent.objects.latest("seq").pk]),
    # Django's change history of each object: whoever may view the object.
    Case("credential-history", "admin:credentials_credential_history", get(),
         who(OK, OK, OK, 403, LOGIN), args=credential_pk, shows=HISTORY),
    Case("version-history", "admin:credentials_credentialversion_history", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.active.pk], shows=HISTORY),
    Case("app-history", "admin:credentials_app_history", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.app.pk], shows=HISTORY),
    Case("endpoint-history", "admin:credentials_endpoint_history", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [w.endpoint.pk], shows=HISTORY),
    Case("audit-history", "admin:credentials_auditevent_history", get(),
         who(OK, OK, OK, 403, LOGIN), args=lambda w: [AuditEvent.objects.latest("seq").pk],
         shows=HISTORY),
    # People: administrators only. (Django's own pages; not in Keyturn's audit trail.)
    Case("user-changelist", "admin:auth_user_changelist", get(),
         who(403, 403, OK, 403, LOGIN), shows="Staff status"),
    Case("user-add-post", "admin:auth_user_add", post(lambda w: USER_FORM),
         who(403, 403, OK, 403, LOGIN), ok_status=302,
         changed=lambda w: get_user_model().objects.filter(username="newcomer").exists()),
]  # fmt: skip


def _snapshot() -> dict:
    """Everything a portal request could change."""
    return {
        "versions": list(
            CredentialVersion.objects.order_by("pk").values_list(
                "pk", "credential_id", "number", "state", "revoke_reason", "reactivation_deadline"
            )
        ),
        "credentials": list(
            Credential.objects.order_by("pk").values_list(
                "pk", "name", "scopes", "lifetime_days", "overlap_seconds"
            )
        ),
        "apps": list(
            App.objects.order_by("pk").values_list(
                "pk", "name", "owner_team", "contact_email", "description", "archived_at"
            )
        ),
        "endpoints": list(
            Endpoint.objects.order_by("pk").values_list("pk", "url", "event_types", "enabled")
        ),
        "deliveries": list(Delivery.objects.order_by("pk").values_list("pk", "status", "attempts")),
        "receipts": DeliveryReceipt.objects.count(),
        "audit_events": AuditEvent.objects.count(),
        "chain_checks": ChainVerification.objects.count(),
        "users": list(get_user_model().objects.order_by("pk").values_list("pk", "username")),
    }


def _sign_in(request, client, role):
    if role == "anonymous":
        return AnonymousUser()
    user = request.getfixturevalue(ROLE_FIXTURES[role])
    client.force_login(user)
    return user


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_role_can_open_and_do_exactly_what_its_cell_says(request, client, world, case, role):
    user = _sign_in(request, client, role)
    expected = case.expect[role]
    mutating = case.changed is not None
    if mutating:
        assert not case.changed(world), "the change must not have happened before the request"
    before = _snapshot()
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    response = case.send(client, user, reverse(case.url, args=case.args(world)), world)

    body = b"".join(response.streaming_content) if response.streaming else response.content
    body = body.decode()
    shows = case.shows.format(w=world) if case.shows else None
    if expected == OK:
        assert response.status_code == case.ok_status
        if shows:
            assert shows in body
        if mutating:
            assert case.changed(world)
            if case.audit:
                written = AuditEvent.objects.filter(seq__gt=last_seq, action=case.audit)
                assert written.filter(actor_label=user.get_username()).exists()
            return
    elif expected == LOGIN:
        first_hop = response.redirect_chain[0] if hasattr(response, "redirect_chain") else (
            response.get("Location", ""), response.status_code
        )  # fmt: skip
        assert first_hop[1] == 302
        assert first_hop[0].startswith(reverse("admin:login") + "?next=")
    else:
        assert response.status_code == expected
        if shows:
            assert shows not in body
    assert _snapshot() == before


def test_the_matrix_covers_every_portal_page_and_every_action():
    """A page or admin action added later must get its row, or this fails."""
    pages = {
        f"admin:{pattern.name}"
        for pattern in admin.site.get_urls()
        if getattr(pattern, "name", None) and pattern.name.startswith("credentials_")
    }  # fmt: skip
    covered = {case.url for case in CASES}
    assert pages - covered == set()
    actions = {
        name
        for model_admin in admin.site._registry.values()
        if model_admin.opts.app_label == "credentials"
        for name in model_admin.actions or ()
    }
    ids = " ".join(case.id for case in CASES)  # a bulk row's id names its action
    assert {name for name in actions if name.replace("_", "-") not in ids} == set()
    assert all(set(case.expect) == set(ROLES) for case in CASES)


# ------------------------------------------------------------ requests the pages never send


@pytest.mark.parametrize("role", ["security", "administrator"])
@pytest.mark.parametrize(
    ("url", "target", "form"),
    [
        ("admin:credentials_credential_change", lambda w: w.credential, CREDENTIAL_FORM),
        ("admin:credentials_endpoint_change", lambda w: w.endpoint,
         {"url": MOVED_HOOK, "event_types": [], "enabled": "on"}),
        ("admin:credentials_app_change", lambda w: w.app,
         {"name": "Copy", "owner_team": "x", "contact_email": "x@example.com"}),
    ],
    ids=["credential", "endpoint", "app"],
)  # fmt: skip
def test_save_as_new_on_a_change_page_is_refused_rather_than_a_server_error(
    request, client, world, role, url, target, form
):
    _sign_in(request, client, role)
    client.raise_request_exception = False
    before = _snapshot()
    response = client.post(
        reverse(url, args=[target(world).pk]), {**form, "_saveasnew": "Save as new"}
    )
    assert response.status_code == 403  # "save as new" is not offered, and not honoured
    assert _snapshot() == before


@pytest.mark.parametrize(
    "url",
    [
        "admin:credentials_credential_rotate",
        "admin:credentials_credential_timeline",
        "admin:credentials_credentialversion_revoke",
        "admin:credentials_credentialversion_reactivate",
        "admin:credentials_credentialversion_expose",
        "admin:credentials_credential_rotation_start",
        "admin:credentials_rotation",
        "admin:credentials_rotation_abandon",
        "admin:credentials_rotation_activity",
    ],
)
def test_a_malformed_object_id_is_not_found_rather_than_a_server_error(
    client, admin_user, world, url
):
    client.force_login(admin_user)
    client.raise_request_exception = False
    assert client.get(reverse(url, args=["1x"])).status_code == 404
