"""The Keyturn admin site: Django's admin, branded, with a home page of what needs attention."""

from django.contrib import admin
from django.urls import path
from django.utils import timezone

from credentials import selectors


class KeyturnAdminSite(admin.AdminSite):
    site_header = "Keyturn"
    site_title = "Keyturn"
    index_title = "What needs attention"
    index_template = "admin/keyturn/index.html"
    site_url = None  # there is no public site behind the portal

    def index(self, request, extra_context=None):
        context = dict(extra_context or {})
        if request.user.has_perm("credentials.view_credentialversion"):
            context["attention"] = selectors.dashboard(now=timezone.now())
            context["exposure_rotations"] = list(selectors.exposure_rotations_in_progress()[:20])
        return super().index(request, context)

    def get_urls(self):
        from credentials.views import two_factor
        from credentials.views.confirm_identity import confirm_identity_view

        view = self.admin_view
        return [
            path("confirm-identity/", view(confirm_identity_view), name="confirm_identity"),
            path("two-factor/", view(two_factor.enrol_view), name="two_factor_enrol"),
            path("two-factor/verify/", view(two_factor.verify_view), name="two_factor_verify"),
            path("two-factor/backup-codes/", view(two_factor.backup_codes_view),
                 name="two_factor_backup_codes"),
            *super().get_urls(),
        ]  # fmt: skip
