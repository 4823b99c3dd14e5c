"""No plaintext secret reaches any table, any log line or the audit trail."""

import io
import logging

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from credentials import lifecycle
from credentials.models import Kind, RevokeReason
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


def _every_row_as_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return "\n".join(chunks) + out.getvalue()


def _fragments(secret: str) -> list[str]:
    # The whole secret, and its random middle on its own, in case a prefix was stripped.
    body = secret.split("_", 1)[1]
    return [secret, body[4:28]]


def test_issuing_and_rotating_every_kind_leaves_no_plaintext_in_tables_or_logs(issue, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")  # Django's own default stops at INFO
    connection.force_debug_cursor = True  # log every SQL statement with its parameters
    try:
        plaintexts = []
        for kind in Kind.values:
            issued = issue(kind)
            plaintexts.append(issued.plaintext)
            for overlap in (3600, 0):
                rotated = lifecycle.credential_rotate(
                    actor=ACTOR,
                    credential=issued.credential,
                    overlap_seconds=overlap,
                    public_key_pem=_key_for(kind),
                )
                plaintexts.append(rotated.plaintext)
            lifecycle.version_revoke(
                actor=ACTOR, version=rotated.version, reason=RevokeReason.ROUTINE
            )
            lifecycle.version_reactivate(actor=ACTOR, version=rotated.version)
            lifecycle.version_record_reveal(actor=ACTOR, version=rotated.version, channel="test")
            lifecycle.version_report_exposure(actor=ACTOR, version=rotated.version)
    finally:
        connection.force_debug_cursor = False

    secrets = [p for p in plaintexts if p is not None]
    assert len(secrets) == 9  # three generated kinds, issued and rotated twice each
    assert "SELECT" in caplog.text or "INSERT" in caplog.text  # the SQL log really was captured
    haystacks = {"tables": _every_row_as_text(), "logs": caplog.text}
    for secret in secrets:
        for fragment in _fragments(secret):
            for where, text in haystacks.items():
                assert fragment not in text, f"a secret fragment leaked into {where}"


def _key_for(kind):
    from tests.conftest import new_public_key_pem

    return new_public_key_pem() if kind == Kind.SERVICE_ACCOUNT_KEY else None
