"""Administrators manage people; every change to a user is in the audit trail, no password."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from credentials.audit import verify_chain
from credentials.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-passphrase-42"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_creating_a_user_and_giving_a_role_is_audited_without_the_password(admin_client):
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD,
         "usable_password": "true"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    user = get_user_model().objects.get(username="newbie")
    created = AuditEvent.objects.get(action="user.created")
    assert created.actor_label == "adm" and created.target_id == str(user.pk)
    auditors = Group.objects.get(name="Auditors")
    admin_client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        {"username": "newbie", "is_active": "on", "is_staff": "on", "groups": [auditors.pk],
         "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"},
    )  # fmt: skip
    updated = AuditEvent.objects.get(action="user.updated")
    assert updated.details["groups"] == ["Auditors"] and "groups" in updated.details["changed"]
    admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": PASSWORD + "x", "password2": PASSWORD + "x", "usable_password": "true"},
    )
    assert AuditEvent.objects.filter(action="user.password_changed").count() == 1
    trail = " ".join(str(e.details) for e in AuditEvent.objects.all())
    assert PASSWORD not in trail and user.password.split("$")[-1] not in trail
    assert verify_chain().ok


@pytest.mark.parametrize("fixture", ["security_user", "auditor_user"])
def test_only_administrators_manage_users(request, client, fixture):
    client.force_login(request.getfixturevalue(fixture))
    assert client.get(reverse("admin:auth_user_add")).status_code == 403
    response = client.post(
        reverse("admin:auth_user_add"),
        {"username": "sneaky", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="sneaky").exists()
    # The test's own sign-in is the only event about a user.
    written = AuditEvent.objects.filter(action__startswith="user.")
    assert list(written.values_list("action", flat=True)) == ["user.signed_in"]


def test_an_administrator_cannot_make_a_superuser_or_touch_one(admin_client):
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    newbie = get_user_model().objects.create_user("newbie", password=PASSWORD, is_staff=True)
    form = admin_client.get(reverse("admin:auth_user_change", args=[newbie.pk])).content.decode()
    assert 'name="is_superuser"' not in form and 'name="user_permissions"' not in form
    admin_client.post(
        reverse("admin:auth_user_change", args=[newbie.pk]),
        {"username": "newbie", "is_active": "on", "is_staff": "on", "is_superuser": "on",
         "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"},
    )  # fmt: skip
    newbie.refresh_from_db()
    assert not newbie.is_superuser
    assert admin_client.get(reverse("admin:auth_user_change", args=[root.pk])).status_code == 302
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[root.pk]),
        {"password1": "x" + PASSWORD, "password2": "x" + PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 403
    root.refresh_from_db()
    assert root.check_password(PASSWORD)
