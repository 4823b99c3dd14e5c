"""Test events from the endpoint page and from `manage.py send_test_event`: both send a signed
test.ping through the real sender and lead to its receipt; auditors see receipts only."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from credentials import lifecycle
from credentials.models import AuditEvent, DeliveryReceipt, Kind
from credentials.webhooks import send_test_ping
from tests.receiver import Receiver
from tests.states import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _local(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def test_send_test_event_by_id_prints_the_receipt(issue, capsys):
    with Receiver() as receiver:
        endpoint = issue(Kind.ENDPOINT_SECRET, url=receiver.url).credential.endpoint
        call_command("send_test_event", str(endpoint.pk))
    out = capsys.readouterr().out
    receipt = DeliveryReceipt.objects.get()
    assert f"Sent test.ping {receipt.delivery.message.message_id} to {receiver.url}" in out
    assert "status:    200" in out and "version(s) [1]" in out
    assert reverse("admin:credentials_deliveryreceipt_change", args=[receipt.pk]) in out
    assert len(receiver.requests) == 1


def test_send_test_event_by_url_fails_loudly_when_the_receiver_refuses(issue, capsys):
    with Receiver(default=401) as receiver:
        issue(Kind.ENDPOINT_SECRET, url=receiver.url)
        with pytest.raises(CommandError, match="did not accept"):
            call_command("send_test_event", receiver.url)
    assert "status:    401" in capsys.readouterr().out


@pytest.mark.parametrize("given", ["999999", "https://nowhere.example/x", "1x"])
def test_send_test_event_names_an_unknown_endpoint(db, given):
    with pytest.raises(CommandError, match="No endpoint has the id or URL"):
        call_command("send_test_event", given)


def test_a_test_event_is_sent_even_to_a_disabled_endpoint_and_audited(issue):
    with Receiver() as receiver:
        endpoint = issue(Kind.ENDPOINT_SECRET, url=receiver.url).credential.endpoint
        endpoint.enabled = False
        endpoint.save(update_fields=["enabled"])
        receipt = send_test_ping(endpoint=endpoint, actor=ACTOR)
    assert receipt.succeeded and receipt.delivery.retry is False
    event = AuditEvent.objects.get(action="webhook.test_sent")
    assert event.details["receipt"] == receipt.pk and event.details["ok"] is True


def test_an_unreachable_endpoint_gives_a_receipt_with_the_error_not_an_exception(issue, settings):
    endpoint = issue(Kind.ENDPOINT_SECRET, url="http://127.0.0.1:9/h").credential.endpoint
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # e.g. turned off since it was saved
    receipt = send_test_ping(endpoint=endpoint, actor=ACTOR)
    assert not receipt.succeeded and receipt.status_code is None
    assert "loopback" in receipt.error


def test_the_endpoint_page_button_sends_and_lands_on_the_receipt(client, security_user, issue):
    with Receiver() as receiver:
        endpoint = issue(Kind.ENDPOINT_SECRET, url=receiver.url).credential.endpoint
        client.force_login(security_user)
        page = client.get(reverse("admin:credentials_endpoint_change", args=[endpoint.pk]))
        button = reverse("admin:credentials_endpoint_test_event", args=[endpoint.pk])
        assert f'action="{button}"' in page.content.decode()
        response = client.post(button, follow=True)
    receipt = DeliveryReceipt.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "admin:credentials_deliveryreceipt_change", args=[receipt.pk]
    )
    body = response.content.decode()
    assert "Test event accepted" in body and receipt.delivery.message.message_id in body
    page = client.get(reverse("admin:credentials_endpoint_change", args=[endpoint.pk]))
    assert receipt.delivery.message.message_id in page.content.decode()  # listed on the page


def test_auditors_see_receipts_but_are_not_offered_the_button(client, auditor_user, issue):
    with Receiver() as receiver:
        endpoint = issue(Kind.ENDPOINT_SECRET, url=receiver.url).credential.endpoint
        receipt = send_test_ping(endpoint=endpoint, actor=ACTOR)
    client.force_login(auditor_user)
    page = client.get(reverse("admin:credentials_endpoint_change", args=[endpoint.pk]))
    assert "Send test event" not in page.content.decode()
    shown = client.get(reverse("admin:credentials_deliveryreceipt_change", args=[receipt.pk]))
    assert (
        shown.status_code == 200 and receipt.delivery.message.message_id in shown.content.decode()
    )
    refused = client.post(reverse("admin:credentials_endpoint_test_event", args=[endpoint.pk]))
    assert refused.status_code == 403


def test_an_endpoint_with_no_version_able_to_sign_gets_nothing_unsigned(issue):
    with Receiver() as receiver:
        hook = issue(Kind.ENDPOINT_SECRET, url=receiver.url)
        lifecycle.version_revoke(actor=ACTOR, version=hook.version, reason="routine")
        receipt = send_test_ping(endpoint=hook.credential.endpoint, actor=ACTOR)
    assert receiver.requests == []
    assert not receipt.succeeded and receipt.signed_versions == []
    assert receipt.error == "not sent: no version of the endpoint's signing secret may sign now"
