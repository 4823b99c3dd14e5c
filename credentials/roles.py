"""The three roles and what each may do, as data, and a way to (re)create them.

Migration 0002 created them first; ``ensure_roles`` restores them on a database that was
emptied since (a flushed test database, a restored partial dump).
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

VIEW_ALL = [
    "credentials.view_app",
    "credentials.view_endpoint",
    "credentials.view_credential",
    "credentials.view_credentialversion",
    "credentials.view_audit",
    "credentials.view_delivery",
    "credentials.view_deliveryreceipt",
]
SECURITY = [
    *VIEW_ALL,
    "credentials.add_app",
    "credentials.change_app",
    "credentials.add_endpoint",
    "credentials.change_endpoint",
    "credentials.add_credential",
    "credentials.change_credential",
    "credentials.rotate_credential",
    "credentials.revoke_credential",
    "credentials.reactivate_credential",
    "credentials.send_test_event",
    "credentials.resend_delivery",
]
ROLES = {
    "Security staff": SECURITY,
    "Auditors": [*VIEW_ALL, "credentials.export_audit"],
    "Administrators": [
        *SECURITY,
        "credentials.export_audit",
        "credentials.report_exposure",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
    ],
}


def ensure_roles() -> None:
    """Create any missing role group or permission link. Idempotent."""
    for label in ("auth", "credentials"):
        create_permissions(global_apps.get_app_config(label), verbosity=0)
    for name, dotted_names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [_permission(dotted) for dotted in dotted_names]
        group.permissions.add(*wanted)


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)
