"""Create the three role groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_ALL = [
    "credentials.view_app",
    "credentials.view_endpoint",
    "credentials.view_credential",
    "credentials.view_credentialversion",
    "credentials.view_audit",
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


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make them exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
