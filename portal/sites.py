"""The Keyturn admin site: Django's admin, branded, with a home page of what needs attention."""

from django.contrib import admin
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
