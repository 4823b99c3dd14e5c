"""People and roles: Django's user and group pages, with every change written to the audit trail.

Every page that changes a person or a role group (add, change, delete, password, the bulk
delete) needs the sudo window open (``credentials/sudo.py``); the lists themselves do not.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from .. import audit, sudo
from ..audit import Actor
from ..lifecycle import two_factor

User = get_user_model()


# django.contrib.auth registered its own pages first (it comes before us in INSTALLED_APPS).
admin.site.unregister(User)
admin.site.unregister(Group)


class SudoPages(sudo.SudoActions):
    """Adding, changing and deleting need the sudo window, for showing the form as for saving.

    Only people who may change something are asked: the others get the admin's own answer
    (403, or a read-only page) without a password prompt first.
    """

    sudo_actions = frozenset({"delete_selected"})

    def _sudo_asks(self, request):
        may_change = (
            self.has_add_permission(request)
            or self.has_change_permission(request)
            or self.has_delete_permission(request)
        )
        return sudo.confirm_first(request) if may_change else None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if (asked := self._sudo_asks(request)) is not None:
            return asked
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if (asked := self._sudo_asks(request)) is not None:
            return asked
        return super().delete_view(request, object_id, extra_context)


class AuditedDeletes:
    """Deleting, one object or through the bulk action, writes an audit event per object in
    the transaction of the delete: no record, no delete."""

    def deleted_event(self, obj) -> tuple[str, dict]:
        """The action and details to record for ``obj``, read before it goes."""
        raise NotImplementedError

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._audit_deleted(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self._audit_deleted(request, obj)
            super().delete_queryset(request, queryset)

    def _audit_deleted(self, request, obj):
        action, details = self.deleted_event(obj)
        audit.append(
            actor=Actor.for_user(request.user, request), action=action, target=obj, details=details
        )


def _permission_names(group: Group) -> set[str]:
    """The group's permissions as ``app_label.codename``, the form ``roles.ROLES`` uses."""
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


@admin.register(Group)
class KeyturnGroupAdmin(SudoPages, AuditedDeletes, GroupAdmin):
    """The role groups: what each role may do. Only superusers may change them.

    Each change is audited with the permissions the role held before and after it, in the
    transaction the admin saves it in, so an auditor can tell who widened a role and when.
    """

    def save_model(self, request, obj, form, change):
        # Read before the form saves the permissions (in save_related), with the row locked
        # (the admin's transaction is open): two superusers saving one role at once would
        # otherwise both read the same "before", and one record would miss a change.
        stored = Group.objects.select_for_update().get(pk=obj.pk) if change else None
        request._keyturn_group_change = {
            "before": _permission_names(stored) if stored else set(),
            "name_before": stored.name if stored else None,
        }
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        group = form.instance
        record = request._keyturn_group_change  # save_model, just before, left it
        before, after = record["before"], _permission_names(group)
        details = {
            "changed": sorted(form.changed_data),
            "permissions": sorted(after),
            "added": sorted(after - before),
            "removed": sorted(before - after),
        }
        if record["name_before"] not in (None, group.name):
            details["renamed_from"] = record["name_before"]
        audit.append(
            actor=Actor.for_user(request.user, request),
            action="role.updated" if change else "role.created",
            target=group,
            details=details,
        )

    def deleted_event(self, group):
        return "role.deleted", {
            "permissions": sorted(_permission_names(group)),
            # Ids, not usernames: the trail refuses any text shaped like a secret.
            "member_ids": sorted(group.user_set.values_list("pk", flat=True)),
        }


@admin.register(User)
class KeyturnUserAdmin(SudoPages, AuditedDeletes, UserAdmin):
    """Who may sign in and with which role. Password hashes never reach the audit trail.

    Administrators manage people through the role groups. Only a superuser may make or touch
    a superuser, or hand out single permissions: otherwise "manage users" would be a way to
    grant oneself everything.
    """

    list_display = (*UserAdmin.list_display, "two_factor")
    actions = ["reset_two_factor"]
    sudo_actions = frozenset({"delete_selected", "reset_two_factor"})

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        hidden = {"is_superuser", "user_permissions"}
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in fieldsets
        ]

    def get_queryset(self, request):
        users = (
            super()
            .get_queryset(request)
            .annotate(
                has_authenticator=Exists(
                    TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
                ),
                has_backup_codes=Exists(
                    StaticDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
                ),
            )
        )
        return users if request.user.is_superuser else users.filter(is_superuser=False)

    @admin.display(description="Two-factor")
    def two_factor(self, user):
        if user.has_authenticator:
            return "app"
        return "backup codes" if user.has_backup_codes else "—"

    @admin.action(description="Reset two-factor sign-in (they set it up again)",
                  permissions=["change"])  # fmt: skip
    def reset_two_factor(self, request, queryset):
        """Remove the selected people's second factors (a lost phone); audited per person."""
        actor = Actor.for_user(request.user, request)
        people = list(queryset)  # already without superusers for a non-superuser
        for user in people:
            two_factor.two_factor_reset(actor=actor, user=user)
        self.message_user(
            request,
            f"Two-factor sign-in reset for {len(people)} user(s); "
            "they set it up again at their next sign-in.",
        )

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser and User.objects.filter(pk=id, is_superuser=True).exists():
            raise PermissionDenied
        if (asked := self._sudo_asks(request)) is not None:
            return asked
        return self._audited_password_change(request, id, form_url)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        request._keyturn_user_change = {  # completed in save_related, once groups are saved
            "created": not change,
            "fields": sorted(name for name in form.changed_data if "password" not in name),
        }

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user = form.instance
        change_record = getattr(request, "_keyturn_user_change", {"created": False, "fields": []})
        audit.append(
            actor=Actor.for_user(request.user, request),
            action="user.created" if change_record["created"] else "user.updated",
            target=user,
            details={
                "changed": change_record["fields"],
                "groups": sorted(user.groups.values_list("name", flat=True)),
                "is_active": user.is_active,
                "is_staff": user.is_staff,
                "is_superuser": user.is_superuser,
            },
        )

    def deleted_event(self, user):
        return "user.deleted", {"groups": sorted(user.groups.values_list("name", flat=True))}

    def _audited_password_change(self, request, id, form_url):
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                audit.append(
                    actor=Actor.for_user(request.user, request),
                    action="user.password_changed",
                    target=User.objects.get(pk=id),
                )
        return response
