"""The audit trail is append-only and its chain exposes any edit, deletion, insertion or swap."""

import contextlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from credentials import audit
from credentials.models import AuditEvent, ChainVerification, Kind, RevokeReason
from tests.states import ACTOR

pytestmark = pytest.mark.django_db

TABLE = AuditEvent._meta.db_table


@pytest.fixture
def trail(issue):
    """A short history: issue, rotate, revoke, reactivate... about ten events."""
    from credentials import lifecycle

    first = issue(Kind.API_KEY)
    lifecycle.credential_rotate(actor=ACTOR, credential=first.credential, overlap_seconds=60)
    lifecycle.version_revoke(actor=ACTOR, version=first.version, reason=RevokeReason.ROUTINE)
    lifecycle.version_reactivate(actor=ACTOR, version=first.version)
    issue(Kind.ENDPOINT_SECRET)
    issue(Kind.SERVICE_ACCOUNT_KEY)
    assert AuditEvent.objects.count() >= 8
    return AuditEvent.objects.count()


@contextlib.contextmanager
def triggers_disabled():
    """What an attacker with database access would do first: switch the guard off."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER keyturn_audit_append_only")
            yield cursor
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER keyturn_audit_append_only")
        else:
            cursor.execute("DROP TRIGGER keyturn_audit_no_update")
            yield cursor


def _verify_fails(expected_seq, fragment):
    report = audit.verify_chain()
    assert not report.ok
    assert report.broken_seq == expected_seq, report.problem
    assert fragment in report.problem
    with pytest.raises(CommandError, match=f"BROKEN at event #{expected_seq}") as failed:
        call_command("verify_audit")
    assert failed.value.returncode == 1


def test_an_untouched_trail_verifies(trail, capsys):
    report = audit.verify_chain()
    assert (report.ok, report.checked, report.head_seq) == (True, trail, trail)
    call_command("verify_audit")
    assert f"Audit chain intact: {trail} event(s)" in capsys.readouterr().out


def test_an_edited_detail_is_detected_at_that_event(trail):
    with triggers_disabled() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET details = %s WHERE seq = 3", ['{"reason": "forged"}'])
    _verify_fails(3, "contents were changed")


def test_an_edited_actor_is_detected(trail):
    with triggers_disabled() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET actor_label = 'someone else' WHERE seq = 5")
    _verify_fails(5, "contents were changed")


def test_an_edit_with_a_recomputed_hash_under_another_key_is_detected(trail):
    event = AuditEvent.objects.get(seq=4)
    event.actor_label = "mallory"
    forged = audit.event_hash(event, key=b"k" * 32)
    with triggers_disabled() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET actor_label = 'mallory', hash = %s WHERE seq = 4", [forged]
        )
    _verify_fails(4, "contents were changed")


def test_a_deleted_event_in_the_middle_is_detected(trail):
    with triggers_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 4")
    _verify_fails(4, "missing")


def test_deleted_newest_events_are_detected_against_the_head(trail):
    with triggers_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq >= %s", [trail - 1])
    _verify_fails(trail - 1, "missing")


def test_an_appended_forgery_is_detected(trail):
    last = AuditEvent.objects.get(seq=trail)
    with triggers_disabled() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (seq, created_at, actor_type, actor_id, actor_label, user_agent, "
            "action, target_type, target_id, target_label, details, prev_hash, hash) "
            "VALUES (%s, %s, 'system', '', 'x', '', 'credential.revoked', 'x', '1', '', '{}', "
            "%s, %s)",
            [trail + 1, last.created_at, last.hash, "f" * 64],
        )
    _verify_fails(trail + 1, "not recorded by the chain head")


def test_an_event_inserted_in_the_middle_is_detected(trail):
    with triggers_disabled() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET seq = seq + 1000 WHERE seq >= 4")
        cursor.execute(f"UPDATE {TABLE} SET seq = seq - 999 WHERE seq >= 1000")
        cursor.execute(
            f"INSERT INTO {TABLE} (seq, created_at, actor_type, actor_id, actor_label, user_agent, "
            "action, target_type, target_id, target_label, details, prev_hash, hash) "
            "SELECT 4, created_at, actor_type, actor_id, actor_label, user_agent, action, "
            f"target_type, target_id, target_label, details, hash, hash FROM {TABLE} WHERE seq = 3",
        )
    _verify_fails(4, "contents were changed")


def test_two_swapped_events_are_detected(trail):
    with triggers_disabled() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET seq = 999999 WHERE seq = 3")
        cursor.execute(f"UPDATE {TABLE} SET seq = 3 WHERE seq = 4")
        cursor.execute(f"UPDATE {TABLE} SET seq = 4 WHERE seq = 999999")
    _verify_fails(3, "does not link")


def test_a_trail_rewritten_from_scratch_is_caught_by_an_exported_head(trail):
    head = AuditEvent.objects.get(seq=trail)
    with triggers_disabled() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [trail])
        previous = AuditEvent.objects.get(seq=trail - 1)
        cursor.execute(
            "UPDATE credentials_auditchainhead SET seq = %s, hash = %s",
            [trail - 1, previous.hash],
        )
    assert audit.verify_chain().ok  # consistent inside the database...
    with pytest.raises(CommandError, match=f"BROKEN at event #{trail}"):
        call_command("verify_audit", expect_head=f"{trail}:{head.hash}")  # ...but not outside
    assert not ChainVerification.objects.latest().ok  # and the badge says so


def test_expect_head_accepts_a_head_that_is_still_there(trail, capsys):
    head = AuditEvent.objects.get(seq=3)
    call_command("verify_audit", expect_head=f"3:{head.hash}")
    assert "intact" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["3", "x:abc", f"3:{'z' * 10}"])
def test_expect_head_with_a_malformed_value_is_an_error(trail, value):
    with pytest.raises(CommandError, match="SEQ:HASH"):
        call_command("verify_audit", expect_head=value)


# --------------------------------------------------------------------------- append-only


def test_the_orm_refuses_to_update_or_delete_audit_events(trail):
    event = AuditEvent.objects.first()
    event.action = "changed"
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.all().delete()
    assert audit.verify_chain().ok


def test_the_database_refuses_a_raw_update(trail):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE {TABLE} SET action = 'changed' WHERE seq = 1")
    assert audit.verify_chain().ok


@pytest.mark.postgres
def test_postgres_refuses_a_raw_delete(trail):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 1")
    assert AuditEvent.objects.count() == trail


# --------------------------------------------------------------------------- what goes in


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused(app):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.append(actor=ACTOR, action="x", target=app)


@pytest.mark.parametrize(
    "details",
    [
        {"token": "ktak_" + "A" * 46},
        {"nested": ["whsec_MfKQ9r8GKYqrTFWN5Qq7uGzfXvmzpdX5RWYNz6E8nJU="]},
        {"pem": "-----BEGIN PRIVATE KEY-----"},
    ],
    ids=["api-key", "webhook-secret", "private-key"],
)
def test_append_refuses_details_shaped_like_a_secret(app, details):
    with pytest.raises(ValueError, match="shaped like a secret"), transaction.atomic():
        audit.append(actor=ACTOR, action="x", target=app, details=details)


@pytest.mark.parametrize("details", [{"ratio": 0.5}, {1: "int key"}, {"when": object()}])
def test_append_refuses_details_that_would_not_round_trip(app, details):
    with pytest.raises(TypeError), transaction.atomic():
        audit.append(actor=ACTOR, action="x", target=app, details=details)


@pytest.mark.parametrize(
    "ip", ["203.0.113.9", "2001:db8::1", "::ffff:192.0.2.1", "2001:DB8:0:0:0:0:0:2", "garbage"]
)
def test_events_round_trip_through_the_database_unchanged(app, ip):
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_USER_AGENT="ü-agent/1.0 " + "x" * 400)
    actor = audit.Actor("user", "7", "ßilvia", *audit._request_origin(request))
    with transaction.atomic():
        audit.append(
            actor=actor,
            action="app.viewed",
            target=app,
            details={"unicode": "ünïcødé ✓", "n": 2**40, "flag": True, "none": None, "list": [1]},
        )
    assert audit.verify_chain().ok


def test_events_appended_during_a_walk_do_not_read_as_a_break(trail, monkeypatch):
    """A writer that commits between the walk's first read of the head and its end."""
    reads = iter([(trail, AuditEvent.objects.get(seq=trail).hash)])
    real_read = audit._read_head

    def head_then_a_concurrent_append():
        try:
            return next(reads)  # the head as the walk first saw it...
        except StopIteration:
            return real_read()  # ...and as it is after the other writer's commit

    with transaction.atomic():
        audit.append(actor=ACTOR, action="app.viewed", target=AuditEvent.objects.first())
    monkeypatch.setattr(audit, "_read_head", head_then_a_concurrent_append)
    report = audit.verify_chain()
    assert report.ok, report.problem
    assert report.checked == trail
