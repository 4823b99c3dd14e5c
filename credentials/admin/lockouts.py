"""Sign-in lockouts for administrators: who or which address is locked, and an audited unlock.

Axes' own admin pages are off (AXES_ENABLE_ADMIN): they show the form data of failed requests
and let anyone with model rights edit or delete attempts. This list is read-only; the one
way to change it is the unlock action, which goes through ``lifecycle.lockout``.
"""

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Subquery, Sum
from django.utils import timezone

from .. import sudo
from ..audit import Actor
from ..lifecycle import lockout
from .access import ReadOnly


@admin.register(AccessAttempt)
class LockoutAdmin(ReadOnly, sudo.SudoActions, admin.ModelAdmin):
    list_display = ("account", "ip_address", "failures_since_start", "attempt_time", "locked")
    list_filter = ("attempt_time",)
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    # Never the recorded form data (get_data, post_data), nor the username as typed (below):
    # keep the detail page to these.
    fields = ("account", "ip_address", "user_agent", "path_info", "failures_since_start",
              "attempt_time")  # fmt: skip
    readonly_fields = fields
    actions = ["unlock"]
    sudo_actions = frozenset({"unlock"})  # managing people: the password again first

    # Who sees this: those who may see people; who unlocks: those who may change them.
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("auth.view_user")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_unlock_permission(self, request):
        return request.user.has_perm("auth.change_user")

    def get_queryset(self, request):
        # Locks count by username and by address over every recent row: sum them per row in
        # the query, so the page costs the same for ten rows and a thousand.
        recent = AccessAttempt.objects.filter(
            attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME
        )

        def total(field):
            same = recent.filter(**{field: OuterRef(field)}).order_by().values(field)
            return Subquery(same.annotate(n=Sum("failures_since_start")).values("n")[:1])

        accounts = get_user_model().objects.filter(
            **{get_user_model().USERNAME_FIELD: OuterRef("username")}
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                user_failures=total("username"),
                address_failures=total("ip_address"),
                is_account=Exists(accounts),
            )
        )

    @admin.display(description="Username", ordering="username")
    def account(self, attempt):
        # What was typed as a username is shown only when it names an account: people type
        # their password into the wrong box, and this page must not show it.
        return attempt.username if attempt.is_account else "(not an account)"

    @admin.display(boolean=True, description="Locked now")
    def locked(self, attempt):
        limit = settings.AXES_FAILURE_LIMIT
        return max(attempt.user_failures or 0, attempt.address_failures or 0) >= limit

    @admin.action(description="Unlock: lift the lock on these usernames and addresses",
                  permissions=["unlock"])  # fmt: skip
    def unlock(self, request, queryset):
        removed = lockout.lockout_unlock(
            actor=Actor.for_user(request.user, request), attempts=queryset.values("pk")
        )
        self.message_user(request, f"Unlocked. {removed} failure record(s) removed.")
