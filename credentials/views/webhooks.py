"""The endpoint page's "Send test event" button."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from ..admin.access import object_for
from ..audit import Actor
from ..models import Endpoint
from ..webhooks import send_test_ping


@require_POST
def test_event_view(request, object_id):
    """Send ``test.ping`` now and land on its receipt (security staff and administrators)."""
    endpoint = object_for(
        request,
        Endpoint,
        object_id,
        perm="credentials.send_test_event",
        queryset=Endpoint.objects.select_related("app"),
    )
    receipt = send_test_ping(endpoint=endpoint, actor=Actor.for_user(request.user, request))
    url = reverse("admin:credentials_deliveryreceipt_change", args=[receipt.pk])
    if receipt.succeeded:
        messages.success(
            request,
            format_html(
                'Test event accepted: {} answered {} in {} ms. <a href="{}">Receipt</a>',
                endpoint.url, receipt.status_code, receipt.latency_ms, url,
            ),
        )  # fmt: skip
    else:
        outcome = receipt.error or f"answered {receipt.status_code}"
        messages.error(
            request,
            format_html(
                'Test event not accepted: {} {}. <a href="{}">Receipt</a>',
                endpoint.url,
                outcome,
                url,
            ),
        )
    return redirect(url)
