"""Fifty copies of one rotation request at once, on PostgreSQL: exactly one new version.

Real threads, each with its own database connection and its own test client, start together
at a barrier and send the same POST with the same Idempotency-Key.
"""

from collections import Counter

import pytest
from django.test import Client

from credentials.audit import verify_chain
from credentials.models import AuditEvent, IdempotencyRecord, Kind
from tests.management_api import call, management_key
from tests.races import together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

COPIES = 50


def test_fifty_concurrent_identical_rotations_make_one_version(issue):
    key = management_key("credentials:rotate").plaintext
    credential = issue(Kind.API_KEY).credential
    path = f"/api/v1/credentials/{credential.pk}/rotations"

    def send(index):
        response = call(Client(), "post", path, key, {"overlap_seconds": 300}, "nightly-7")
        return response.status_code, response.get("Idempotency-Replayed"), response.content

    answers = together(send, COPIES)
    assert len(answers) == COPIES

    assert credential.versions.count() == 2
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {201, 409}, statuses
    originals = [a for a in answers if a[0] == 201 and a[1] is None]
    replays = [a for a in answers if a[0] == 201 and a[1] == "true"]
    assert len(originals) == 1
    assert all(content == originals[0][2] for _, _, content in replays)
    assert IdempotencyRecord.objects.count() == 1
    assert AuditEvent.objects.filter(action="credential.rotated").count() == 1
    assert verify_chain().ok

    # Once the first has finished, every retry is a replay of it.
    retry = call(Client(), "post", path, key, {"overlap_seconds": 300}, "nightly-7")
    assert retry["Idempotency-Replayed"] == "true"
    assert retry.content == originals[0][2]
