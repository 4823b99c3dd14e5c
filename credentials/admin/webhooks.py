"""Deliveries and their receipts: read-only pages, and a "resend" action."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from .. import lifecycle
from ..audit import Actor
from ..models import Delivery, DeliveryReceipt
from .access import ReadOnly


@admin.register(DeliveryReceipt)
class DeliveryReceiptAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "started_at", "event_type", "endpoint_url", "attempt", "status_code", "ok",
        "latency_ms", "error", "signed_versions",
    )  # fmt: skip
    list_filter = ("ok", "delivery__message__event_type", "status_code")
    search_fields = ("delivery__endpoint__url", "delivery__message__message_id")
    list_select_related = ("delivery__message", "delivery__endpoint")
    date_hierarchy = "started_at"
    fields = (
        "delivery_link", "message_id", "event_type", "endpoint_url", "attempt", "started_at",
        "webhook_timestamp", "target_address", "status_code", "ok", "latency_ms", "error",
        "response_excerpt", "signed_versions", "sent_by",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Event", ordering="delivery__message__event_type")
    def event_type(self, receipt):
        return receipt.delivery.message.event_type

    @admin.display(description="Message id")
    def message_id(self, receipt):
        return receipt.delivery.message.message_id

    @admin.display(description="Endpoint")
    def endpoint_url(self, receipt):
        return receipt.delivery.endpoint.url

    @admin.display(description="Delivery")
    def delivery_link(self, receipt):
        url = reverse("admin:credentials_delivery_change", args=[receipt.delivery_id])
        return format_html(
            '<a href="{}">#{} ({})</a>',
            url, receipt.delivery_id, receipt.delivery.get_status_display(),
        )  # fmt: skip


class ReceiptInline(ReadOnly, admin.TabularInline):
    model = DeliveryReceipt
    fields = (
        "attempt", "started_at", "status_code", "ok", "latency_ms", "error", "signed_versions"
    )  # fmt: skip
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "pk", "event_type", "endpoint", "status", "attempts", "next_attempt_at", "created_at"
    )  # fmt: skip
    list_filter = ("status", "message__event_type", "retry")
    search_fields = ("endpoint__url", "message__message_id")
    list_select_related = ("message", "endpoint")
    fields = (
        "message_id", "event_type", "endpoint", "status", "attempts", "next_attempt_at",
        "lease_until", "last_attempt_at", "finished_at", "created_at", "body",
    )  # fmt: skip
    readonly_fields = fields
    inlines = [ReceiptInline]
    actions = ["resend_selected"]

    @admin.display(description="Event", ordering="message__event_type")
    def event_type(self, delivery):
        return delivery.message.event_type

    @admin.display(description="Message id")
    def message_id(self, delivery):
        return delivery.message.message_id

    @admin.display(description="Body sent")
    def body(self, delivery):
        return delivery.message.body

    def has_resend_permission(self, request):
        return request.user.has_perm("credentials.resend_delivery")

    @admin.action(
        description="Resend selected deliveries (same message id)", permissions=["resend"]
    )
    def resend_selected(self, request, queryset):
        actor = Actor.for_user(request.user, request)
        done = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                lifecycle.delivery_resend(actor=actor, delivery=delivery)
                done += 1
            except lifecycle.LifecycleError as error:
                messages.warning(request, str(error))
        if done:
            messages.success(request, f"Queued {done} delivery(ies) to be sent again.")
