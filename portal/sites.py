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
        from credentials.views.confirm_identity import confirm_identity_view

        return [
            path(
                "confirm-identity/",
                self.admin_view(confirm_identity_view),
                name="confirm_identity",
            ),
            *super().get_urls(),
        ]
