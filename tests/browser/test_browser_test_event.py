"""The endpoint page's "Send test event" button in a real browser: it sends a signed
test.ping and lands on the receipt; receipts and deliveries render for every role."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from credentials import lifecycle
from credentials.models import DeliveryReceipt
from tests.receiver import Receiver
from tests.states import ACTOR


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def test_security_sends_a_test_event_and_reads_its_receipt(
    login, live_server, console_errors, security_user, app, receiver
):
    hook = lifecycle.endpoint_create(actor=ACTOR, app=app, url=receiver.url)
    endpoint = hook.credential.endpoint
    page = login(security_user.username)
    page.goto(live_server.url + reverse("admin:credentials_endpoint_change", args=[endpoint.pk]))
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator(".messagelist")).to_contain_text("Test event accepted")
    receipt = DeliveryReceipt.objects.get()
    expect(page).to_have_url(
        re.compile(
            re.escape(reverse("admin:credentials_deliveryreceipt_change", args=[receipt.pk]))
        )
    )
    expect(page.locator("#content-main")).to_contain_text(receipt.delivery.message.message_id)
    assert len(receiver.requests) == 1
    assert receiver.requests[0].headers["webhook-id"] == receipt.delivery.message.message_id
    for name, args in [
        ("admin:credentials_deliveryreceipt_changelist", []),
        ("admin:credentials_delivery_changelist", []),
        ("admin:credentials_delivery_change", [receipt.delivery_id]),
    ]:
        assert page.goto(live_server.url + reverse(name, args=args)).status == 200, name
    assert console_errors == []


def test_auditors_are_not_offered_the_button(login, live_server, auditor_user, app):
    hook = lifecycle.endpoint_create(actor=ACTOR, app=app, url="https://hooks.example.com/k")
    page = login(auditor_user.username)
    page.goto(
        live_server.url
        + reverse("admin:credentials_endpoint_change", args=[hook.credential.endpoint_id])
    )
    expect(page.locator("#kt-deliveries")).to_be_visible()
    expect(page.get_by_role("button", name="Send test event")).to_have_count(0)
