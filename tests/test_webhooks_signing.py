"""Our deliveries verify with someone else's Standard Webhooks code, through a rotation."""

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from credentials import lifecycle
from credentials.models import Kind
from credentials.webhooks import send_test_ping
from credentials.webhooks.signing import SigningKey, signature_header
from tests.receiver import Receiver
from tests.states import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _private_targets(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def _endpoint(issue, receiver):
    issued = issue(Kind.ENDPOINT_SECRET, url=receiver.url)
    return issued.credential.endpoint, issued.plaintext


def test_test_ping_verifies_with_standardwebhooks(issue):
    with Receiver() as receiver:
        endpoint, secret = _endpoint(issue, receiver)
        receipt = send_test_ping(endpoint=endpoint, actor=ACTOR)
    assert receipt.succeeded and receipt.status_code == 200
    assert receipt.signed_versions == [1]
    (got,) = receiver.requests
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "test.ping"
    assert set(payload) == {"type", "timestamp", "data"}
    assert got.headers["webhook-id"] == receipt.delivery.message.message_id


def test_during_overlap_each_secret_alone_verifies_and_after_only_the_new_one(issue):
    with Receiver() as receiver:
        endpoint, old_secret = _endpoint(issue, receiver)
        before = send_test_ping(endpoint=endpoint, actor=ACTOR)
        rotated = lifecycle.credential_rotate(
            actor=ACTOR, credential=endpoint.credential, overlap_seconds=3600
        )
        during = send_test_ping(endpoint=endpoint, actor=ACTOR)
        old_version = endpoint.credential.versions.get(number=1)
        lifecycle.version_revoke(actor=ACTOR, version=old_version, reason="routine")
        after = send_test_ping(endpoint=endpoint, actor=ACTOR)
    new_secret = rotated.plaintext
    first, second, third = receiver.requests[:3]
    assert [before.signed_versions, during.signed_versions, after.signed_versions] == [
        [1],
        [2, 1],
        [2],
    ]
    Webhook(old_secret).verify(first.body, first.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret).verify(first.body, first.headers)
    signatures = second.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    for secret, signature in zip((new_secret, old_secret), signatures, strict=True):
        alone = {**second.headers, "webhook-signature": signature}
        Webhook(secret).verify(second.body, alone)
    Webhook(old_secret).verify(second.body, second.headers)
    Webhook(new_secret).verify(second.body, second.headers)
    Webhook(new_secret).verify(third.body, third.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(third.body, third.headers)


def test_signature_covers_the_exact_bytes():
    key = SigningKey(1, b"k" * 32)
    header = signature_header(message_id="msg_1", timestamp=1700000000, body=b"{}", keys=[key])
    other = signature_header(message_id="msg_1", timestamp=1700000000, body=b"{ }", keys=[key])
    assert header.startswith("v1,") and header != other
