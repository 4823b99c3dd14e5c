"""Auditors: the audit log, its filters and CSV export, the chain badge, the timeline."""

import csv
import io

import pytest
from django.urls import reverse

from credentials import lifecycle
from credentials.models import AuditEvent, ChainVerification, Kind, RevokeReason
from tests.states import ACTOR

pytestmark = pytest.mark.django_db

LOG = "admin:credentials_auditevent_changelist"


@pytest.fixture
def auditor(client, auditor_user):
    client.force_login(auditor_user)
    return client


@pytest.fixture
def history(issue, app):
    first = issue(Kind.API_KEY, name="Orders key")
    lifecycle.credential_rotate(actor=ACTOR, credential=first.credential, overlap_seconds=0)
    other = lifecycle.app_create(
        actor=ACTOR, name='=HYPERLINK("http://evil")', owner_team="x", contact_email="x@e.com"
    )
    lifecycle.credential_issue(actor=ACTOR, app=other, kind=Kind.API_KEY, name="Other key")
    return first.credential, other


def _rows(client, **params):
    response = client.get(reverse(LOG), params)
    assert response.status_code == 200
    return response.context["cl"].result_list


@pytest.mark.parametrize(
    ("params", "expected_actions"),
    [
        ({"action": "credential.rotated"}, {"credential.rotated"}),
        ({"actor": "system"}, None),
        ({"since": "2000-01-01", "until": "2000-01-02"}, set()),
    ],
    ids=["by-action", "by-actor", "empty-date-range"],
)
def test_the_audit_log_filters(auditor, history, params, expected_actions):
    rows = _rows(auditor, **params)
    if expected_actions is None:
        assert len(rows) == AuditEvent.objects.filter(actor_type="system").count() > 0
    else:
        assert {event.action for event in rows} == expected_actions


def test_the_audit_log_filters_by_app_and_by_credential(auditor, history):
    credential, other_app = history
    by_app = _rows(auditor, app=str(other_app.pk))
    assert by_app and all(event.app_id == other_app.pk for event in by_app)
    by_credential = _rows(auditor, credential=str(credential.pk))
    assert by_credential and all(event.credential_id == credential.pk for event in by_credential)


def test_a_date_range_including_today_keeps_every_event(auditor, history):
    today = AuditEvent.objects.first().created_at.date().isoformat()
    assert len(_rows(auditor, since=today, until=today)) == AuditEvent.objects.count()


def test_the_csv_export_streams_the_filtered_log_in_order_and_is_audited(auditor, history):
    credential, _ = history
    response = auditor.post(
        reverse("admin:credentials_auditevent_export") + f"?credential={credential.pk}"
    )
    assert response.status_code == 200 and response.streaming
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = AuditEvent.objects.filter(credential_id=credential.pk).order_by("seq")
    assert [int(row["seq"]) for row in rows] == [e.seq for e in expected]
    assert rows[0]["hash"] == expected[0].hash
    exported = AuditEvent.objects.filter(action="audit.exported").get()
    assert (
        exported.actor_label == "aud"
        and f"credential={credential.pk}" in (exported.details["filters"])
    )


def test_the_csv_export_defuses_cells_that_look_like_formulas(auditor, history):
    response = auditor.post(reverse("admin:credentials_auditevent_export"))
    text = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in text
    assert ",=HYPERLINK" not in text and '"=HYPERLINK' not in text


def test_security_staff_may_read_the_log_but_not_export_it(client, security_user, history):
    client.force_login(security_user)
    assert client.get(reverse(LOG)).status_code == 200
    assert client.post(reverse("admin:credentials_auditevent_export")).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_badge_says_never_verified_then_verified_then_broken(auditor, history):
    assert "Never verified" in auditor.get(reverse(LOG)).content.decode()
    response = auditor.post(reverse("admin:credentials_auditevent_verify"), follow=True)
    assert "Chain verified" in response.content.decode()
    assert ChainVerification.objects.get().ok
    from tests.test_audit_chain import triggers_disabled

    with triggers_disabled() as cursor:
        cursor.execute("UPDATE credentials_auditevent SET actor_label = 'x' WHERE seq = 2")
    response = auditor.post(reverse("admin:credentials_auditevent_verify"), follow=True)
    body = response.content.decode()
    assert "Chain BROKEN" in body and "event #2" in body


def test_verify_now_only_answers_post(auditor):
    assert auditor.get(reverse("admin:credentials_auditevent_verify")).status_code == 405


def test_the_timeline_lists_a_credentials_events_oldest_first(auditor, history):
    credential, _ = history
    lifecycle.version_revoke(
        actor=ACTOR, version=credential.versions.get(number=2), reason=RevokeReason.ROUTINE
    )
    response = auditor.get(reverse("admin:credentials_credential_timeline", args=[credential.pk]))
    events = list(response.context["events"])
    assert [e.action for e in events] == [
        "credential.issued", "credential.rotated", "credential.revoked",
    ]  # fmt: skip
    assert "Other key" not in response.content.decode()


def test_the_actor_filter_picks_one_persons_events(client, auditor_user, security_user, issue):
    from credentials.audit import Actor

    version = issue(Kind.API_KEY).version
    lifecycle.version_revoke(
        actor=Actor.for_user(security_user), version=version, reason=RevokeReason.ROUTINE
    )
    client.force_login(auditor_user)
    rows = _rows(client, actor=f"user:{security_user.pk}")
    assert [event.action for event in rows] == ["credential.revoked"]


def test_every_action_the_code_records_is_offered_by_the_filter():
    import re
    from pathlib import Path

    from credentials.audit import ACTIONS

    source = Path(__file__).resolve().parent.parent / "credentials"
    recorded = set()
    for path in source.rglob("*.py"):
        text = path.read_text()
        recorded |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', text))
        recorded |= set(re.findall(r'"([a-z]+\.[a-z_]+)" if ', text))
        recorded |= set(re.findall(r'else "([a-z]+\.[a-z_]+)"', text))
    assert len(recorded) > 10
    assert recorded <= set(ACTIONS), recorded - set(ACTIONS)


def test_verify_now_returns_to_the_filtered_log_it_was_pressed_on(auditor, history):
    response = auditor.post(reverse("admin:credentials_auditevent_verify") + "?action=app.created")
    assert response.status_code == 302 and response["Location"].endswith("?action=app.created")
