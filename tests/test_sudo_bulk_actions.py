"""Sudo mode on admin bulk actions: a stale window keeps the selection (keys only), and after
the password the person continues from it, still clicking the action's own final button."""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from credentials import sudo
from credentials.models import AuditEvent, CredentialVersion, Kind, RevokeReason, State

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def stale(client):
    session = client.session
    session[sudo.SESSION_KEY] = int(time.time()) - settings.PORTAL_SUDO_SECONDS - 1
    session.save()


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


def continue_form(page) -> dict:
    """What the resume page's form sends (its hidden fields, CSRF token aside)."""
    form = page.content.decode().split('id="content-main"')[1]
    data: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(form):
        if name != "csrfmiddlewaretoken":
            data.setdefault(name, []).append(value)
    return data


@dataclass
class Bulk:
    name: str
    who: str
    model: str  # "app_label_modelname", as in the admin's URL names
    action: str
    prepare: Callable  # request -> the objects to select
    apply: dict  # what the action's own confirmation page sends to carry it out
    happened: Callable  # objects -> whether the action was carried out on all of them
    audit: str  # the event each object gets


def _versions(request):
    issue = request.getfixturevalue("issue")
    return [issue(Kind.API_KEY, name=f"bulk {n}").version for n in range(3)]


def _people(request):
    return [get_user_model().objects.create_user(f"leaver{n}", password=PASSWORD) for n in range(2)]


def _states(objects, **wanted):
    found = CredentialVersion.objects.filter(pk__in=[o.pk for o in objects], **wanted)
    return found.count() == len(objects)


BULK = [
    Bulk("revoke selected versions", "security_user", "credentials_credentialversion",
         "revoke_selected", _versions, {"apply": "1", "reason": "routine"},
         lambda objects: _states(objects, state=State.REVOKED), "credential.revoked"),
    Bulk("report selected versions as exposed", "admin_user", "credentials_credentialversion",
         "report_selected_exposed", _versions, {"apply": "1", "confirm": "on", "note": "gist"},
         lambda objects: _states(objects, revoke_reason=RevokeReason.EXPOSED),
         "credential.exposed"),
    Bulk("delete selected people", "superuser", "auth_user", "delete_selected", _people,
         {"post": "yes"},
         lambda objects: not get_user_model().objects.filter(
             pk__in=[o.pk for o in objects]).exists(), "user.deleted"),
]  # fmt: skip


@pytest.fixture
def superuser(db, admin_user):
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.mark.parametrize("bulk", BULK, ids=lambda bulk: bulk.name)
def test_a_stale_bulk_action_keeps_only_the_selection_and_resumes_after_confirming(
    client, request, bulk
):
    client.force_login(request.getfixturevalue(bulk.who))
    objects = bulk.prepare(request)
    changelist = reverse(f"admin:{bulk.model}_changelist")
    resume = reverse(f"admin:{bulk.model}_resume_action")
    selection = {"action": bulk.action, "_selected_action": [o.pk for o in objects], "index": 0}
    stale(client)
    before = actions()

    asked = client.post(changelist, selection)
    assert (asked.status_code, asked["Location"]) == (302, sudo.confirm_url(resume))
    pending = client.session[sudo.PENDING_ACTION_KEY]
    assert set(pending) == {"model", "action", "pks"}  # keys and a name, nothing typed
    assert (pending["model"], pending["action"]) == (bulk.model.replace("_", ".", 1), bulk.action)
    assert sorted(pending["pks"]) == sorted(str(o.pk) for o in objects)
    # Straight to the action's final button with a stale window: refused the same way.
    final = {k: v for k, v in selection.items() if k != "index"} | bulk.apply
    assert client.post(changelist, final)["Location"] == sudo.confirm_url(resume)
    assert not bulk.happened(objects) and actions() == before

    back = client.post(reverse("admin:confirm_identity"), {"password": PASSWORD, "next": resume})
    assert back["Location"] == resume
    page = client.get(resume)
    assert page.status_code == 200
    assert all(str(o) in page.content.decode() for o in objects)
    resumed = client.post(changelist, continue_form(page))
    assert resumed.status_code == 200  # the action's own confirmation page: nothing done yet
    assert not bulk.happened(objects)
    client.post(changelist, final)
    assert bulk.happened(objects)
    assert actions()[len(before) :].count(bulk.audit) == len(objects)
    assert sudo.PENDING_ACTION_KEY not in client.session


def test_the_resume_page_offers_nothing_the_person_may_no_longer_do(client, security_user, issue):
    from django.contrib.auth.models import Group

    client.force_login(security_user)
    version = issue(Kind.API_KEY).version
    changelist = reverse("admin:credentials_credentialversion_changelist")
    resume = reverse("admin:credentials_credentialversion_resume_action")
    stale(client)
    client.post(changelist, {"action": "revoke_selected", "_selected_action": [version.pk]})
    client.post(reverse("admin:confirm_identity"), {"password": PASSWORD, "next": resume})
    security_user.groups.remove(Group.objects.get(name="Security staff"))
    security_user.groups.add(Group.objects.get(name="Auditors"))
    response = client.get(resume)
    assert response.status_code == 302 and response["Location"] == changelist
    version.refresh_from_db()
    assert version.state == State.ACTIVE


@pytest.mark.parametrize(
    "pending",
    [
        None,
        {"model": "auth.user", "action": "revoke_selected", "pks": ["1"]},
        {"model": "credentials.credentialversion", "action": "no_such_action", "pks": ["1"]},
        {"model": "credentials.credentialversion", "action": "revoke_selected",
         "pks": ["1 OR 1=1", "../2", None, "999999"]},
    ],
    ids=["nothing pending", "another model", "unknown action", "junk and missing keys"],
)  # fmt: skip
def test_a_resume_with_nothing_sensible_pending_goes_back_to_the_list(
    client, security_user, pending
):
    client.force_login(security_user)
    if pending is not None:
        session = client.session
        session[sudo.PENDING_ACTION_KEY] = pending
        session.save()
    response = client.get(reverse("admin:credentials_credentialversion_resume_action"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:credentials_credentialversion_changelist")
    assert sudo.PENDING_ACTION_KEY not in client.session


def test_the_resume_page_needs_a_fresh_window_itself(client, security_user, issue):
    client.force_login(security_user)
    stale(client)
    resume = reverse("admin:credentials_credentialversion_resume_action")
    assert client.get(resume)["Location"] == sudo.confirm_url(resume)


def test_continuing_from_the_resume_page_still_needs_the_csrf_token(security_user, issue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(security_user)
    version = issue(Kind.API_KEY).version
    session = client.session
    session[sudo.PENDING_ACTION_KEY] = {
        "model": "credentials.credentialversion", "action": "revoke_selected",
        "pks": [str(version.pk)],
    }  # fmt: skip
    session.save()
    page = client.get(reverse("admin:credentials_credentialversion_resume_action"))
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    changelist = reverse("admin:credentials_credentialversion_changelist")
    forged = client.post(changelist, {**continue_form(page), "apply": "1", "reason": "routine"})
    assert forged.status_code == 403
    version.refresh_from_db()
    assert version.state == State.ACTIVE


def test_a_huge_stale_selection_is_not_kept(client, security_user, issue, monkeypatch):
    monkeypatch.setattr(sudo, "MAX_PENDING_ROWS", 2)
    client.force_login(security_user)
    versions = [issue(Kind.API_KEY, name=f"many {n}").version for n in range(3)]
    stale(client)
    changelist = reverse("admin:credentials_credentialversion_changelist")
    response = client.post(
        changelist, {"action": "revoke_selected", "_selected_action": [v.pk for v in versions]}
    )
    assert response["Location"] == sudo.confirm_url(changelist)
    assert sudo.PENDING_ACTION_KEY not in client.session
    assert CredentialVersion.objects.filter(state=State.REVOKED).count() == 0
