"""Apps and endpoints: create, edit and archive through the lifecycle."""

from django import forms
from django.contrib import admin, messages
from django.urls import path, reverse
from django.utils.html import format_html

from .. import lifecycle
from ..audit import Actor
from ..forms import EVENT_TYPES
from ..models import App, Endpoint
from ..views import reveal
from ..views import webhooks as webhook_views
from .access import NoSaveAsNew


@admin.register(App)
class AppAdmin(NoSaveAsNew, admin.ModelAdmin):
    list_display = ("name", "client_id", "owner_team", "contact_email", "status")
    list_filter = ("owner_team", ("archived_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "client_id", "owner_team")
    fields = ("name", "owner_team", "contact_email", "description", "client_id", "archived_at")
    readonly_fields = ("client_id", "archived_at")
    actions = ["archive_selected"]
    change_form_template = "admin/credentials/app/change_form.html"

    @admin.display(description="Status")
    def status(self, app):
        return "Archived" if app.archived_at else "Active"

    def has_delete_permission(self, request, obj=None):
        return False  # apps are archived, never deleted: their history must stay

    def save_model(self, request, obj, form, change):
        actor = Actor.for_user(request.user, request)
        values = {f: form.cleaned_data[f] for f in ("name", "owner_team", "contact_email")}
        values["description"] = form.cleaned_data.get("description", "")
        try:
            if change:
                lifecycle.app_update(actor=actor, app=obj, **values)
            else:
                obj.pk = lifecycle.app_create(actor=actor, **values).pk
        except lifecycle.LifecycleError as error:
            # The form validated the same rules; a refusal here means the app changed meanwhile.
            messages.error(request, str(error))
        if obj.pk:
            obj.refresh_from_db()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        app = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if app is not None:
            extra["endpoints"] = app.endpoints.select_related("credential")
            extra["app_credentials"] = app.credentials.prefetch_related("versions")
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(description="Archive selected apps (no new credentials)", permissions=["change"])
    def archive_selected(self, request, queryset):
        actor = Actor.for_user(request.user, request)
        done = 0
        for app in queryset:
            try:
                lifecycle.app_archive(actor=actor, app=app)
                done += 1
            except lifecycle.LifecycleError as error:
                messages.warning(request, str(error))
        if done:
            messages.success(request, f"Archived {done} app(s). Their versions keep working.")


class EndpointChangeForm(forms.ModelForm):
    url = forms.URLField(max_length=2048, assume_scheme="https", label="URL")
    event_types = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENT_TYPES], required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Endpoint
        fields = ("url", "event_types", "enabled")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            lifecycle.check_endpoint_url(url)
        except lifecycle.InvalidRequest as error:
            raise forms.ValidationError(str(error)) from None
        return url


@admin.register(Endpoint)
class EndpointAdmin(NoSaveAsNew, admin.ModelAdmin):
    form = EndpointChangeForm
    list_display = ("url", "app", "enabled", "signing_secret", "created_at")
    list_filter = ("enabled", "app__owner_team")
    search_fields = ("url", "app__name", "app__client_id")
    list_select_related = ("app", "credential")
    fields = ("app", "url", "event_types", "enabled", "disabled_reason", "consecutive_failures")
    readonly_fields = ("app", "disabled_reason", "consecutive_failures")
    change_form_template = "admin/credentials/endpoint/change_form.html"

    @admin.display(description="Signing secret")
    def signing_secret(self, endpoint):
        credential = getattr(endpoint, "credential", None)
        if credential is None:
            return "—"
        url = reverse("admin:credentials_credential_change", args=[credential.pk])
        return format_html('<a href="{}">{}</a>', url, credential.name)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("add/", self.admin_site.admin_view(reveal.endpoint_add_view),
                 name="credentials_endpoint_add"),
            path("<path:object_id>/test-event/",
                 self.admin_site.admin_view(webhook_views.test_event_view),
                 name="credentials_endpoint_test_event"),
            *super().get_urls(),
        ]  # fmt: skip

    def change_view(self, request, object_id, form_url="", extra_context=None):
        endpoint = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if endpoint is not None:
            extra["deliveries"] = (
                endpoint.deliveries.select_related("message")
                .prefetch_related("receipts")
                .order_by("-created_at")[:20]
            )
            extra["can_send_test_event"] = request.user.has_perm("credentials.send_test_event")
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        try:
            lifecycle.endpoint_update(
                actor=Actor.for_user(request.user, request),
                endpoint=obj,
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                enabled=form.cleaned_data["enabled"],
            )
        except lifecycle.LifecycleError as error:
            messages.error(request, str(error))
        obj.refresh_from_db()
