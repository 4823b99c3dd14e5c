"""Credentials and their versions: the pages security staff and auditors live in.

States are never form fields. Every change goes through a confirmation page that calls the
lifecycle; bulk actions go through the same confirmation as single ones.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .. import lifecycle, selectors
from ..audit import Actor
from ..forms import SCOPE_CHOICES, RevokeForm
from ..models import VERIFYING_STATES, Credential, CredentialVersion, State
from ..sudo import SudoActions
from ..views import audit as audit_views
from ..views import reveal, rotations, versions
from .access import NoSaveAsNew, ReadOnly, as_id


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return State.choices

    def queryset(self, request, queryset):
        if self.value() in State.values:
            return queryset.filter(versions__state=self.value()).distinct()
        return queryset


class ExpiresWithinFilter(admin.SimpleListFilter):
    title = "expires within"
    parameter_name = "expires_within"
    DAYS = (7, 30, 90)

    def lookups(self, request, model_admin):
        return [(str(days), f"{days} days") for days in self.DAYS]

    def queryset(self, request, queryset):
        if as_id(self.value()) in self.DAYS:
            return selectors.credentials_expiring_within(
                queryset, now=timezone.now(), days=int(self.value())
            )
        return queryset


class LastFourSearch:
    """Search also matches a version's last four characters exactly (with or without ••••)."""

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().lstrip("•").strip()
        if len(term) == 4:
            field = "versions__last_four" if self.model is Credential else "last_four"
            results = results | queryset.filter(**{field: term})
            duplicates = True
        return results, duplicates


class CredentialChangeForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Credential
        fields = ("name", "scopes", "lifetime_days", "overlap_seconds")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            lifecycle.check_credential_policy(
                kind=self.instance.kind,
                name=data.get("name", ""),
                scopes=data.get("scopes", []),
                lifetime_days=data.get("lifetime_days"),
                overlap_seconds=data.get("overlap_seconds", 0),
            )
        except lifecycle.InvalidRequest as error:
            raise forms.ValidationError(str(error)) from None
        return data


@admin.register(Credential)
class CredentialAdmin(NoSaveAsNew, LastFourSearch, admin.ModelAdmin):
    form = CredentialChangeForm
    list_display = ("name", "app", "kind", "live_versions_display", "expires_display")
    list_filter = ("kind", StateFilter, ("app__owner_team", admin.AllValuesFieldListFilter),
                   ExpiresWithinFilter)  # fmt: skip
    search_fields = ("name", "app__name", "=app__client_id")
    readonly_fields = ("app", "kind", "endpoint")
    fields = ("app", "kind", "endpoint", "name", "scopes", "lifetime_days", "overlap_seconds")
    change_form_template = "admin/credentials/credential/change_form.html"
    change_list_template = "admin/credentials/credential/change_list.html"

    def get_queryset(self, request):
        return selectors.credentials_for_changelist(super().get_queryset(request))

    @admin.display(description="Live versions")
    def live_versions_display(self, credential):
        if not credential.live_versions:
            return "none"
        return format_html_join(
            " ",
            '<span class="kt-badge kt-{}">{} {}</span>',
            ((v.state, v.get_state_display(), v.masked) for v in credential.live_versions),
        )

    @admin.display(description="Active version expires")
    def expires_display(self, credential):
        active = [v for v in credential.live_versions if v.state == State.ACTIVE]
        if not active or active[0].expires_at is None:
            return "—"
        return timezone.localtime(active[0].expires_at).strftime("%Y-%m-%d")

    def has_add_permission(self, request):
        return request.user.has_perm("credentials.add_credential")

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:credentials_credential_issue"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("issue/", view(reveal.issue_view), name="credentials_credential_issue"),
            path("<path:object_id>/rotate/", view(reveal.rotate_view),
                 name="credentials_credential_rotate"),
            path("<path:object_id>/timeline/", view(audit_views.credential_history_view),
                 name="credentials_credential_timeline"),
            path("<path:object_id>/guided-rotation/", view(rotations.rotation_start_view),
                 name="credentials_credential_rotation_start"),
            path("rotations/<str:rotation_id>/", view(rotations.rotation_view),
                 name="credentials_rotation"),
            path("rotations/<str:rotation_id>/abandon/", view(rotations.rotation_abandon_view),
                 name="credentials_rotation_abandon"),
            path("rotations/<str:rotation_id>/activity/", view(rotations.rotation_activity_view),
                 name="credentials_rotation_activity"),
            *super().get_urls(),
        ]  # fmt: skip

    def change_view(self, request, object_id, form_url="", extra_context=None):
        credential = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if credential is not None:
            user = request.user
            extra.update(
                versions=selectors.versions_for_credential(credential),
                now=timezone.now(),
                can_rotate=user.has_perm("credentials.rotate_credential")
                and credential.app.archived_at is None,
                can_revoke=user.has_perm("credentials.revoke_credential"),
                can_reactivate=user.has_perm("credentials.reactivate_credential"),
                can_expose=user.has_perm("credentials.report_exposure"),
                can_audit=user.has_perm("credentials.view_audit"),
                rotation_in_progress=credential.rotations.filter(state="in_progress").first(),
                exposable=credential.versions.filter(state=State.ACTIVE).first(),
            )
        return super().change_view(request, object_id, form_url, extra)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["show_save_and_add_another"] = False  # new credentials come from "Issue"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            lifecycle.credential_update(
                actor=Actor.for_user(request.user, request),
                credential=obj,
                name=data["name"],
                scopes=data["scopes"],
                lifetime_days=data["lifetime_days"],
                overlap_seconds=data["overlap_seconds"],
            )
        except lifecycle.LifecycleError as error:
            messages.error(request, str(error))
        obj.refresh_from_db()


@admin.register(CredentialVersion)
class CredentialVersionAdmin(ReadOnly, SudoActions, LastFourSearch, admin.ModelAdmin):
    list_display = ("credential", "app_name", "number", "state_badge", "masked", "expires_at",
                    "last_used_at", "revoke_reason")  # fmt: skip
    list_display_links = None
    list_filter = ("state", "credential__kind", "revoke_reason")
    search_fields = ("credential__name", "credential__app__name", "=credential__app__client_id")
    list_select_related = ("credential__app",)
    actions = ["revoke_selected", "report_selected_exposed"]
    sudo_actions = frozenset(actions)

    @admin.display(description="App", ordering="credential__app__name")
    def app_name(self, version):
        return version.credential.app.name

    @admin.display(description="State", ordering="state")
    def state_badge(self, version):
        return format_html(
            '<span class="kt-badge kt-{}">{}</span>', version.state, version.get_state_display()
        )

    @admin.display(description="Secret")
    def masked(self, version):
        url = reverse("admin:credentials_credential_change", args=[version.credential_id])
        return format_html('<a href="{}"><code>{}</code></a>', url, version.masked)

    # Digests, ciphertexts and key material are never shown, searched or filtered on: a
    # filter such as ?digest__startswith=ab would leak them one character at a time.
    HIDDEN_FIELDS = frozenset({"digest", "digest_key_id", "ciphertext", "public_key_pem"})

    def lookup_allowed(self, lookup, value, request=None):
        if lookup.split("__", 1)[0] in self.HIDDEN_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A version has no page of its own: it lives in its credential's version table.
        version = self.get_object(request, object_id)
        if version is None or not self.has_view_permission(request, version):
            raise Http404
        return HttpResponseRedirect(
            reverse("admin:credentials_credential_change", args=[version.credential_id])
        )

    def has_revoke_permission(self, request):
        return request.user.has_perm("credentials.revoke_credential")

    def has_expose_permission(self, request):
        return request.user.has_perm("credentials.report_exposure")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/revoke/", view(versions.revoke_view),
                 name="credentials_credentialversion_revoke"),
            path("<path:object_id>/reactivate/", view(versions.reactivate_view),
                 name="credentials_credentialversion_reactivate"),
            path("<path:object_id>/expose/", view(versions.expose_view),
                 name="credentials_credentialversion_expose"),
            *super().get_urls(),
        ]  # fmt: skip

    @admin.action(description="Revoke selected versions…", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        return self._bulk(
            request,
            queryset.filter(state__in=VERIFYING_STATES),
            form=RevokeForm(request.POST if "apply" in request.POST else None),
            title="Revoke versions",
            run=lambda actor, version, data: lifecycle.version_revoke(
                actor=actor, version=version, reason=data["reason"], note=data["note"]
            ),
            verb="Revoked",
        )

    @admin.action(description="Report selected versions as exposed…", permissions=["expose"])
    def report_selected_exposed(self, request, queryset):
        from ..forms import ExposureForm

        return self._bulk(
            request,
            queryset.filter(~Q(revoke_reason="exposed")),
            form=ExposureForm(request.POST if "apply" in request.POST else None),
            title="Report versions as exposed",
            run=lambda actor, version, data: lifecycle.exposure_report(
                actor=actor, version=version, note=data["note"]
            ),
            verb="Reported as exposed",
        )

    def _bulk(self, request, queryset, *, form, title, run, verb):
        """The confirmation page for a bulk action, then one lifecycle call per version."""
        selected = list(queryset.select_related("credential__app"))
        if not selected:
            messages.warning(request, "None of the selected versions can take that action.")
            return None
        if "apply" in request.POST and form.is_valid():
            actor = Actor.for_user(request.user, request)
            done, refused = [], []
            for version in selected:
                try:
                    run(actor, version, form.cleaned_data)
                    done.append(version.masked)
                except lifecycle.LifecycleError as error:
                    refused.append(str(error))
            if done:
                messages.success(request, f"{verb}: {', '.join(done)}.")
            for reason in refused:
                messages.error(request, reason)
            return None
        return TemplateResponse(
            request,
            "admin/credentials/bulk_confirm.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "versions": selected,
                "form": form,
                "action": request.POST.get("action"),
                "opts": self.model._meta,
                "window_minutes": int(selectors.reactivation_window() / timedelta(minutes=1)),
            },
        )
