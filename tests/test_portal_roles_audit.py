"""Changes to the role groups (what each role may do) are in the audit trail: who made them,
what the role held before and after, in the same transaction as the change."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from credentials.audit import verify_chain
from credentials.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 20)
    client.force_login(root)
    return client


def permission(dotted):
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def test_creating_a_role_is_audited_with_its_permissions(root_client):
    response = root_client.post(
        reverse("admin:auth_group_add"),
        {"name": "Rotators", "permissions": [permission("credentials.rotate_credential").pk]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="role.created")
    group = Group.objects.get(name="Rotators")
    assert (event.target_type, event.target_id) == ("group", str(group.pk))
    assert event.actor_label == "root"
    assert event.details["permissions"] == ["credentials.rotate_credential"]
    assert event.details["added"] == ["credentials.rotate_credential"]
    assert event.details["removed"] == []
    assert verify_chain().ok


def test_widening_narrowing_and_renaming_a_role_says_what_changed(root_client):
    auditors = Group.objects.get(name="Auditors")
    held = set(auditors.permissions.values_list("pk", flat=True))
    export = permission("credentials.export_audit")
    revoke = permission("credentials.revoke_credential")
    response = root_client.post(
        reverse("admin:auth_group_change", args=[auditors.pk]),
        {"name": "Reviewers", "permissions": sorted(held - {export.pk} | {revoke.pk})},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="role.updated")
    assert event.details["added"] == ["credentials.revoke_credential"]
    assert event.details["removed"] == ["credentials.export_audit"]
    assert event.details["renamed_from"] == "Auditors"
    assert sorted(event.details["changed"]) == ["name", "permissions"]
    assert "credentials.revoke_credential" in event.details["permissions"]
    assert "credentials.export_audit" not in event.details["permissions"]
    assert event.target_label == "Reviewers"


def test_saving_a_role_unchanged_is_still_recorded_as_saved_with_nothing_added(root_client):
    auditors = Group.objects.get(name="Auditors")
    held = sorted(auditors.permissions.values_list("pk", flat=True))
    root_client.post(
        reverse("admin:auth_group_change", args=[auditors.pk]),
        {"name": "Auditors", "permissions": held},
    )
    event = AuditEvent.objects.get(action="role.updated")
    assert (event.details["added"], event.details["removed"], event.details["changed"]) == (
        [],
        [],
        [],
    )
    assert "renamed_from" not in event.details


def test_deleting_a_role_is_audited_with_who_held_it(root_client, auditor_user):
    auditors = Group.objects.get(name="Auditors")
    response = root_client.post(
        reverse("admin:auth_group_delete", args=[auditors.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Group.objects.filter(name="Auditors").exists()
    event = AuditEvent.objects.get(action="role.deleted")
    assert event.details["member_ids"] == [auditor_user.pk]
    assert "credentials.export_audit" in event.details["permissions"]
    assert verify_chain().ok


def test_the_bulk_delete_audits_each_role(root_client):
    groups = list(Group.objects.filter(name__in=["Auditors", "Security staff"]))
    response = root_client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )
    assert response.status_code == 302
    deleted = AuditEvent.objects.filter(action="role.deleted")
    assert sorted(deleted.values_list("target_label", flat=True)) == ["Auditors", "Security staff"]


def test_an_administrator_cannot_change_a_role_and_nothing_is_recorded(client, admin_user):
    client.force_login(admin_user)
    auditors = Group.objects.get(name="Auditors")
    response = client.post(
        reverse("admin:auth_group_change", args=[auditors.pk]),
        {"name": "Auditors", "permissions": [permission("credentials.revoke_credential").pk]},
    )
    assert response.status_code == 403
    assert not auditors.permissions.filter(codename="revoke_credential").exists()
    assert not AuditEvent.objects.filter(action__startswith="role.").exists()
