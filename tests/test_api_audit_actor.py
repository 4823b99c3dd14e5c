"""Every API action is an audit event naming the calling key, by its last four, as actor."""

import pytest

from credentials.audit import verify_chain
from credentials.models import AuditEvent
from tests.management_api import ALL_SCOPES, call, management_key
from tests.test_api_scopes import OPERATIONS

pytestmark = pytest.mark.django_db

WRITE_ACTIONS = {
    "rotate_credential": ["credential.rotated"],
    "revoke_version": ["credential.revoked"],
    "reactivate_version": ["credential.reactivated"],
    # The exposed version is revoked for good and its exposure rotation opens, both by the key.
    "report_exposure": ["credential.exposed", "rotation.started"],
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_operation_is_audited_with_the_key_as_actor(client, issue, operation):
    issued = management_key(*ALL_SCOPES, name="nightly pipeline")
    method, path_for, body, _, success = OPERATIONS[operation]
    path = path_for(issue)
    before = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    assert call(client, method, path, issued.plaintext, body).status_code == success
    events = list(AuditEvent.objects.filter(seq__gt=before).order_by("seq"))
    assert [e.action for e in events] == WRITE_ACTIONS.get(operation, ["api.read"])
    for event in events:
        assert event.actor_type == "api_key"
        assert event.actor_id == str(issued.version.public_id)
        assert event.actor_label == f"API key ••••{issued.version.last_four} (nightly pipeline)"
        assert event.ip == "127.0.0.1"
    event = events[0]
    if operation not in WRITE_ACTIONS:
        assert event.action == "api.read"
        assert event.details["operation"] == operation
        assert event.credential_id == issued.credential.pk  # in the key's own timeline
    assert verify_chain().ok


def test_a_replay_acts_and_audits_nothing_more(client, issue):
    key = management_key("credentials:rotate").plaintext
    credential = issue().credential
    path = f"/api/v1/credentials/{credential.pk}/rotations"
    call(client, "post", path, key, {"overlap_seconds": 5}, "once")
    count = AuditEvent.objects.count()
    call(client, "post", path, key, {"overlap_seconds": 5}, "once")
    assert AuditEvent.objects.count() == count


def test_a_refused_call_writes_nothing_to_the_trail(client, issue):
    key = management_key("credentials:read").plaintext
    credential = issue().credential
    count = AuditEvent.objects.count()
    path = f"/api/v1/credentials/{credential.pk}/rotations"
    assert call(client, "post", path, key, {}).status_code == 403
    assert AuditEvent.objects.count() == count
