"""`audit_head` exports the chain head that `verify_audit --expect-head` checks later."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from credentials import audit, lifecycle
from credentials.models import AuditEvent, Kind, RevokeReason
from tests.states import ACTOR

TABLE = AuditEvent._meta.db_table


def _head() -> str:
    out = io.StringIO()
    call_command("audit_head", stdout=out)
    return out.getvalue().strip()


def test_an_empty_trail_exports_the_genesis_head(db):
    assert AuditEvent.objects.count() == 0
    assert _head() == f"0:{audit.GENESIS_HASH}"


def test_the_exported_head_is_the_newest_event_and_verify_audit_accepts_it(issue, capsys):
    issued = issue(Kind.API_KEY)
    lifecycle.version_revoke(actor=ACTOR, version=issued.version, reason=RevokeReason.ROUTINE)
    newest = AuditEvent.objects.order_by("-seq").first()

    line = _head()

    assert line == f"{newest.seq}:{newest.hash}"
    call_command("verify_audit", expect_head=line)
    assert "intact" in capsys.readouterr().out


def test_an_exported_head_catches_the_newest_events_being_removed_later(issue):
    issued = issue(Kind.API_KEY)
    lifecycle.version_revoke(actor=ACTOR, version=issued.version, reason=RevokeReason.ROUTINE)
    exported = _head()
    seq = int(exported.split(":")[0])
    previous = AuditEvent.objects.get(seq=seq - 1)
    # What someone with write access would do: drop the newest event and rewind the head.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER keyturn_audit_append_only")
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [seq])
        cursor.execute(
            "UPDATE credentials_auditchainhead SET seq = %s, hash = %s", [seq - 1, previous.hash]
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER keyturn_audit_append_only")

    assert audit.verify_chain().ok  # consistent inside the database alone
    assert _head() != exported
    with pytest.raises(CommandError, match=f"BROKEN at event #{seq}"):
        call_command("verify_audit", expect_head=exported)


def test_a_head_row_that_names_a_missing_event_is_refused_not_exported(issue):
    issue(Kind.API_KEY)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE credentials_auditchainhead SET seq = seq + 5")
    with pytest.raises(CommandError, match="missing or does not match") as refused:
        _head()
    assert refused.value.returncode == 1
