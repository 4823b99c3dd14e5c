"""The audit log: read-only for everyone, filterable, exportable, with the chain's health."""

from datetime import datetime, time

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from .. import audit
from ..audit import Actor
from ..models import App, AuditEvent, ChainVerification, Credential
from ..views.audit import export_csv
from .access import ReadOnly, as_id


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in audit.ACTIONS]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class ActorFilter(admin.SimpleListFilter):
    """People by name (the user table is small), or every system or API-key actor."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        people = get_user_model().objects.order_by("username").values_list("pk", "username")
        return [
            *((f"user:{pk}", username) for pk, username in people),
            ("system", "System (clock, commands)"),
            ("api_key", "API keys"),
        ]

    def queryset(self, request, queryset):
        value = self.value() or ""
        if value.startswith("user:") and as_id(value[5:]) is not None:
            return queryset.filter(actor_type="user", actor_id=str(as_id(value[5:])))
        if value in ("system", "api_key"):
            return queryset.filter(actor_type=value)
        return queryset


class AppFilter(admin.SimpleListFilter):
    title = "app"
    parameter_name = "app"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in App.objects.values_list("pk", "name")]

    def queryset(self, request, queryset):
        if as_id(self.value()) is not None:
            return queryset.filter(app_id=as_id(self.value()))
        return queryset


class CredentialFilter(admin.SimpleListFilter):
    """Offered from a credential's page (``?credential=ID``); not listed, there may be many."""

    title = "credential"
    parameter_name = "credential"
    template = "admin/credentials/auditevent/hidden_filter.html"

    def lookups(self, request, model_admin):
        if as_id(self.value()) is not None:
            found = Credential.objects.filter(pk=as_id(self.value())).first()
            if found is not None:
                return [(str(found.pk), found.name)]
        return []

    def queryset(self, request, queryset):
        if as_id(self.value()) is not None:
            return queryset.filter(credential_id=as_id(self.value()))
        return queryset


def _date(text):
    try:
        return parse_date(text or "")
    except ValueError:  # well-formed but impossible, such as 2024-02-30: no bound
        return None


class DateRangeFilter(admin.SimpleListFilter):
    """From and to dates (inclusive), typed into two date boxes."""

    title = "date range"
    parameter_name = "since"
    template = "admin/credentials/auditevent/date_range_filter.html"

    def __init__(self, request, params, model, model_admin):
        self.until = params.pop("until", [None])
        self.until = self.until[-1] if isinstance(self.until, list) else self.until
        super().__init__(request, params, model, model_admin)

    def expected_parameters(self):
        return ["since", "until"]

    def has_output(self):
        return True

    def lookups(self, request, model_admin):
        return []

    def queryset(self, request, queryset):
        since, until = _date(self.value()), _date(self.until)
        zone = timezone.get_current_timezone()
        if since:
            queryset = queryset.filter(
                created_at__gte=timezone.make_aware(datetime.combine(since, time.min), zone)
            )
        if until:
            queryset = queryset.filter(
                created_at__lte=timezone.make_aware(datetime.combine(until, time.max), zone)
            )
        return queryset

    def choices(self, changelist):
        keep = []
        for key, values in changelist.params.items():
            if key in ("since", "until", "p"):
                continue
            for value in values if isinstance(values, list) else [values]:
                keep.append((key, value))
        yield {"since": self.value() or "", "until": self.until or "", "keep": keep}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("seq", "created_at", "actor_label", "action", "target_label", "ip")
    list_filter = (
        ActionFilter,
        ActorFilter,
        AppFilter,
        CredentialFilter,
        DateRangeFilter,
    )
    search_fields = ("actor_label", "target_label", "=action")
    list_per_page = 50
    show_full_result_count = False  # counting a million rows on every page is not free
    change_list_template = "admin/credentials/auditevent/change_list.html"
    fields = (
        "seq", "created_at", "actor_type", "actor_label", "ip", "user_agent", "action",
        "target_type", "target_id", "target_label", "app_id", "credential_id", "details",
        "prev_hash", "hash",
    )  # fmt: skip
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("credentials.view_audit")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("export.csv", view(self.export_view), name="credentials_auditevent_export"),
            path("verify/", view(self.verify_view), name="credentials_auditevent_verify"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "chain_check": ChainVerification.objects.order_by("-checked_at").first(),
            "can_export": request.user.has_perm("credentials.export_audit"),
            "export_query": request.GET.urlencode(),
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def export_view(self, request):
        """Stream the filtered log as CSV; the export itself is an audit event.

        A POST (with the filters in its query string), so another site cannot make a
        signed-in auditor's browser run a full export, and write to the trail, with a link.
        """
        if not request.user.has_perm("credentials.export_audit"):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        changelist = self.get_changelist_instance(request)
        return export_csv(request, changelist.get_queryset(request))

    @staticmethod
    @require_POST
    def verify_view(request):
        if not request.user.has_perm("credentials.view_audit"):
            raise PermissionDenied
        actor = Actor.for_user(request.user, request)
        report = audit.verify_chain()  # outside the transaction: a long walk blocks no writer
        with transaction.atomic():
            check = audit.record_verification(report, checked_by=actor.label)
            audit.append(
                actor=actor,
                action="audit.verified",
                target=check,
                details={"ok": check.ok, "checked": check.checked, "broken_seq": check.broken_seq},
            )
        if check.ok:
            messages.success(request, f"Audit chain intact: {check.checked} event(s) verified.")
        else:
            messages.error(request, f"Audit chain BROKEN at event #{check.broken_seq}: "
                                    f"{check.problem}.")  # fmt: skip
        back = reverse("admin:credentials_auditevent_changelist")
        query = request.GET.urlencode()  # the filters the button was pressed under
        return HttpResponseRedirect(f"{back}?{query}" if query else back)
