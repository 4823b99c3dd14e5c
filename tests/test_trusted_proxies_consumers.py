"""What reads the client's address (the audit trail, the GitHub intake's rate limit) reads the
one the trusted proxy reported, through the whole middleware stack, and a forged hop changes
nothing."""

import pytest
from django.test import Client

from credentials import crypto
from credentials.audit import verify_chain
from credentials.models import AuditEvent, Kind
from tests.management_api import call, management_key
from tests.test_api_github_intake import _post, _report, _sign, github_key  # noqa: F401

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"


@pytest.fixture(autouse=True)
def _behind_a_proxy(settings):
    settings.PORTAL_TRUSTED_PROXIES = [PROXY]


def _revoke_through(issue, peer, forwarded_for):
    key = management_key("credentials:revoke").plaintext
    target = issue(Kind.API_KEY)
    path = f"/api/v1/credentials/{target.credential.pk}/versions/{target.version.number}/revoke"
    client = Client(REMOTE_ADDR=peer)  # the address the connection came from
    response = call(client, "post", path, key, {"reason": "routine"}, x_forwarded_for=forwarded_for)
    assert response.status_code == 200, response.content
    return AuditEvent.objects.get(action="credential.revoked", target_id=str(target.version.pk))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "recorded"),
    [
        (PROXY, "198.51.100.23", "198.51.100.23"),
        (PROXY, "6.6.6.6, 198.51.100.23", "198.51.100.23"),  # the client forged the first hop
        (PROXY, "2001:db8:1::42", "2001:db8:1::42"),
        (PROXY, "nonsense", PROXY),
        ("203.0.113.9", "198.51.100.23", "203.0.113.9"),  # not through the proxy
    ],
)
def test_the_audit_trail_records_the_address_the_trusted_proxy_reported(
    issue, peer, forwarded_for, recorded
):
    event = _revoke_through(issue, peer, forwarded_for)
    assert event.ip == recorded
    assert verify_chain().ok


def test_the_github_intake_limits_each_client_behind_the_proxy_on_its_own(
    client,
    github_key,  # noqa: F811
    settings,
):
    settings.PORTAL_EXPOSURE_INTAKE_RATE = 1
    body = _report(crypto.generate_token("api_key"))
    signature = _sign(github_key, body)

    def report(forwarded_for):
        return _post(
            client, body, signature, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for
        ).status_code

    assert report("198.51.100.1") == 200
    assert report("198.51.100.1") == 429
    # A new hop written by the same client does not make it someone else...
    assert report("192.0.2.99, 198.51.100.1") == 429
    # ...while another client behind the same proxy has its own allowance.
    assert report("198.51.100.2") == 200
    # Without the proxy's word the header is nobody's address: the peer itself is limited.
    assert _post(client, body, signature, REMOTE_ADDR="203.0.113.9").status_code == 200
    assert (
        _post(
            client, body, signature, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.1.1.1"
        ).status_code
        == 429
    )
