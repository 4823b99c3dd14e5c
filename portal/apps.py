from django.contrib.admin.apps import AdminConfig


class KeyturnAdminConfig(AdminConfig):
    """Django's admin app with Keyturn's site as the default `admin.site`."""

    default_site = "portal.sites.KeyturnAdminSite"
