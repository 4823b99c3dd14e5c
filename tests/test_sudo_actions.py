"""Sudo mode on every dangerous page: a stale window asks first and does nothing, and after the
password the action goes on from where it was started.

Each case starts signed in (which opens the window), fetches its form while the window is
open, then moves the window's start back past ``PORTAL_SUDO_SECONDS``. The stale GET and POST
must both land on the confirm page and change nothing (database and audit trail); after
confirming, the very same form goes through, so nothing was used up by the detour.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from credentials import sudo
from credentials.lifecycle.rotations import current_step
from credentials.models import (
    AuditEvent,
    Credential,
    CredentialVersion,
    Endpoint,
    Kind,
    RevokeReason,
    Rotation,
    State,
)
from tests.states import make_version
from tests.test_portal_rotations import fields_for, form_of, start, step_post

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # what tests/conftest.py gives every role user
NEW_PASSWORD = "a-long-enough-passphrase-42"
HOOK = "https://hooks.example.com/sudo"


def stale(client, seconds_ago=None):
    """Move the window's start back, as if the password was entered that long ago."""
    session = client.session
    ago = settings.PORTAL_SUDO_SECONDS + 1 if seconds_ago is None else seconds_ago
    session[sudo.SESSION_KEY] = int(time.time()) - ago
    session.save()


def confirm(client, next_url, password=PASSWORD, **extra):
    return client.post(
        reverse("admin:confirm_identity"), {"password": password, "next": next_url, **extra}
    )


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


def once_token(client, url) -> str:
    return re.search(r'name="once" value="([^"]+)"', client.get(url).content.decode()).group(1)


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    name: str
    who: str
    prepare: Callable  # (client, request) -> world: dict
    url: Callable  # world -> the page's URL
    form: Callable  # (client, world) -> what the page's form sends (window open)
    happened: Callable  # world -> whether the action was carried out
    audit: str | None
    options: dict = field(default_factory=dict)


def _credential(client, request):
    return {"issued": request.getfixturevalue("issue")(Kind.API_KEY)}


def _version_in(state):
    def prepare(client, request):
        return {"version": make_version(request.getfixturevalue("issue"), state)}

    return prepare


def _refreshed(version):
    version.refresh_from_db()
    return version


def _rotation_at(kind):
    """A routine API-key rotation walked (window open) to its first step of ``kind``."""

    def prepare(client, request):
        old = request.getfixturevalue("issue")(Kind.API_KEY).version
        rotation = start(client, old.credential)
        while current_step(rotation).kind != kind:
            response, _ = step_post(client, rotation)
            assert response.status_code in (200, 302), response.content.decode()[:2000]
            rotation.refresh_from_db()
        return {"rotation": rotation, "old": old}

    return prepare


def _rotation_step_form(client, world):
    rotation = world["rotation"]
    return {**form_of(client, rotation), **fields_for(rotation)}


def _abandonable(client, request):
    world = _rotation_at("confirm")(client, request)
    rotation = world["rotation"]
    step_post(client, rotation)  # the plan
    step_post(client, rotation)  # generate: the old version now retires
    rotation.refresh_from_db()
    assert rotation.new_version is not None and rotation.in_progress
    return world


def _a_person(client, request):
    return {
        "person": get_user_model().objects.create_user(
            "newbie", password=PASSWORD + "!", is_staff=True
        )
    }


def _person_form(client, world):
    return {
        "username": "newbie", "is_active": "on", "is_staff": "on",
        "groups": [Group.objects.get(name="Auditors").pk],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
    }  # fmt: skip


def _version_url(name):
    return lambda w: reverse(f"admin:credentials_credentialversion_{name}", args=[w["version"].pk])


CASES = [
    Case("issue a credential", "security_user", lambda c, r: {"app": r.getfixturevalue("app")},
         lambda w: reverse("admin:credentials_credential_issue"),
         lambda c, w: {"once": once_token(c, reverse("admin:credentials_credential_issue")),
                       "app": w["app"].pk, "kind": Kind.API_KEY, "name": "Sudo bot",
                       "scopes": ["orders:read"], "overlap_hours": "24"},
         lambda w: Credential.objects.filter(name="Sudo bot").exists(), "credential.revealed"),
    Case("rotate now", "security_user", _credential,
         lambda w: reverse("admin:credentials_credential_rotate",
                           args=[w["issued"].credential.pk]),
         lambda c, w: {"once": once_token(c, reverse("admin:credentials_credential_rotate",
                                                     args=[w["issued"].credential.pk])),
                       "overlap_hours": "2"},
         lambda w: w["issued"].credential.versions.count() == 2, "credential.rotated"),
    Case("add an endpoint (reveals its signing secret)", "security_user",
         lambda c, r: {"app": r.getfixturevalue("app")},
         lambda w: reverse("admin:credentials_endpoint_add"),
         lambda c, w: {"once": once_token(c, reverse("admin:credentials_endpoint_add")),
                       "app": w["app"].pk, "url": HOOK, "event_types": ["test.ping"]},
         lambda w: Endpoint.objects.filter(url=HOOK).exists(), "credential.revealed"),
    Case("revoke a version", "security_user", _version_in("active"), _version_url("revoke"),
         lambda c, w: {"reason": "routine"},
         lambda w: _refreshed(w["version"]).state == State.REVOKED, "credential.revoked"),
    Case("reactivate a version", "security_user", _version_in("revoked"),
         _version_url("reactivate"), lambda c, w: {},
         lambda w: _refreshed(w["version"]).state == State.ACTIVE, "credential.reactivated"),
    Case("report an exposure", "admin_user", _version_in("active"), _version_url("expose"),
         lambda c, w: {"note": "pasted in a gist", "confirm": "on"},
         lambda w: _refreshed(w["version"]).revoke_reason == RevokeReason.EXPOSED,
         "credential.exposed"),
    Case("guided rotation: generate the new secret", "security_user", _rotation_at("generate"),
         lambda w: reverse("admin:credentials_rotation", args=[w["rotation"].pk]),
         _rotation_step_form,
         lambda w: Rotation.objects.get(pk=w["rotation"].pk).new_version_id is not None,
         "credential.revealed"),
    Case("guided rotation: revoke the old version", "security_user", _rotation_at("revoke"),
         lambda w: reverse("admin:credentials_rotation", args=[w["rotation"].pk]),
         _rotation_step_form,
         lambda w: _refreshed(w["old"]).state == State.REVOKED, "credential.revoked"),
    Case("guided rotation: abandon, bringing the old version back", "security_user",
         _abandonable,
         lambda w: reverse("admin:credentials_rotation_abandon", args=[w["rotation"].pk]),
         lambda c, w: {"confirm": "on", "note": "wrong credential"},
         lambda w: _refreshed(w["old"]).state == State.ACTIVE, "rotation.abandoned"),
    Case("add a person", "admin_user", lambda c, r: {},
         lambda w: reverse("admin:auth_user_add"),
         lambda c, w: {"username": "newbie", "password1": NEW_PASSWORD,
                       "password2": NEW_PASSWORD, "usable_password": "true"},
         lambda w: get_user_model().objects.filter(username="newbie").exists(), "user.created"),
    Case("change a person's group membership", "admin_user", _a_person,
         lambda w: reverse("admin:auth_user_change", args=[w["person"].pk]), _person_form,
         lambda w: w["person"].groups.filter(name="Auditors").exists(), "user.updated"),
    Case("change someone else's password", "admin_user", _a_person,
         lambda w: reverse("admin:auth_user_password_change", args=[w["person"].pk]),
         lambda c, w: {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
                       "usable_password": "true"},
         lambda w: get_user_model().objects.get(pk=w["person"].pk).check_password(NEW_PASSWORD),
         "user.password_changed"),
    Case("delete a person", "superuser", _a_person,
         lambda w: reverse("admin:auth_user_delete", args=[w["person"].pk]),
         lambda c, w: {"post": "yes"},
         lambda w: not get_user_model().objects.filter(pk=w["person"].pk).exists(),
         "user.deleted"),
    Case("change a role group", "superuser", lambda c, r: {"group": Group.objects.get(
             name="Auditors")},
         lambda w: reverse("admin:auth_group_change", args=[w["group"].pk]),
         lambda c, w: {"name": "Auditors (renamed)", "permissions": []},
         lambda w: Group.objects.filter(name="Auditors (renamed)").exists(), None),
]  # fmt: skip


@pytest.fixture
def superuser(db, admin_user):  # admin_user: the role groups exist before we look them up
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_stale_window_asks_first_changes_nothing_and_the_action_resumes_after_confirming(
    client, request, case
):
    client.force_login(request.getfixturevalue(case.who))
    world = case.prepare(client, request)
    url = case.url(world)
    data = case.form(client, world)
    stale(client)
    before = actions()
    asked = client.get(url)
    assert (asked.status_code, asked["Location"]) == (302, sudo.confirm_url(url))
    refused = client.post(url, data)
    assert (refused.status_code, refused["Location"]) == (302, sudo.confirm_url(url))
    assert not case.happened(world)
    assert actions() == before

    back = confirm(client, url)
    assert (back.status_code, back["Location"]) == (302, url)
    assert actions() == [*before, "user.reauthenticated"]
    assert client.get(url).status_code == 200
    done = client.post(url, data)  # the same form: the detour used nothing up
    assert done.status_code in (200, 302), done.content.decode()[:2000]
    assert case.happened(world)
    if case.audit:
        assert case.audit in actions()[len(before) + 1 :]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_window_opened_at_sign_in_lets_the_action_through_at_once(client, request, case):
    client.force_login(request.getfixturevalue(case.who))
    world = case.prepare(client, request)
    stale(client, seconds_ago=settings.PORTAL_SUDO_SECONDS - 30)  # nearly, but not yet, over
    response = client.post(case.url(world), case.form(client, world))
    assert response.status_code in (200, 302)
    assert not response.get("Location", "").startswith(reverse("admin:confirm_identity"))
    assert case.happened(world)


def test_a_session_that_never_proved_its_identity_is_asked(client, security_user, issue):
    client.force_login(security_user)
    session = client.session
    del session[sudo.SESSION_KEY]
    session.save()
    version = issue(Kind.API_KEY).version
    url = reverse("admin:credentials_credentialversion_revoke", args=[version.pk])
    assert client.post(url, {"reason": "routine"})["Location"] == sudo.confirm_url(url)
    assert _refreshed(version).state == State.ACTIVE


def test_a_window_stamped_in_the_future_counts_as_no_window(client, security_user, issue):
    client.force_login(security_user)
    stale(client, seconds_ago=-3600)
    version = issue(Kind.API_KEY).version
    url = reverse("admin:credentials_credentialversion_revoke", args=[version.pk])
    assert client.post(url, {"reason": "routine"})["Location"] == sudo.confirm_url(url)
    assert _refreshed(version).state == State.ACTIVE


def test_an_expired_window_asks_again_after_it_was_confirmed(client, security_user, issue):
    client.force_login(security_user)
    first, second = issue(Kind.API_KEY).version, issue(Kind.API_KEY, name="second").version
    url = reverse("admin:credentials_credentialversion_revoke", args=[first.pk])
    stale(client)
    confirm(client, url)
    client.post(url, {"reason": "routine"})
    assert _refreshed(first).state == State.REVOKED
    stale(client)  # ten minutes and a second later
    again = reverse("admin:credentials_credentialversion_revoke", args=[second.pk])
    assert client.post(again, {"reason": "routine"})["Location"] == sudo.confirm_url(again)
    assert _refreshed(second).state == State.ACTIVE


def test_the_window_length_is_a_setting(client, security_user, issue, settings):
    settings.PORTAL_SUDO_SECONDS = 120
    client.force_login(security_user)
    version = issue(Kind.API_KEY).version
    url = reverse("admin:credentials_credentialversion_revoke", args=[version.pk])
    stale(client, seconds_ago=121)
    assert client.get(url)["Location"] == sudo.confirm_url(url)
    stale(client, seconds_ago=100)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    ("who", "name", "status"),
    [
        ("outsider_user", "admin:credentials_credentialversion_revoke", 404),
        ("auditor_user", "admin:credentials_credentialversion_revoke", 403),
        ("security_user", "admin:credentials_credentialversion_expose", 403),
        ("auditor_user", "admin:credentials_credential_rotate", 403),
        ("security_user", "admin:auth_user_add", 403),
        ("security_user", "admin:auth_user_password_change", 403),
        ("admin_user", "admin:auth_group_change", 200),  # administrators only look at groups
    ],
)
def test_people_who_may_not_act_get_their_refusal_not_a_password_prompt(
    client, request, issue, who, name, status
):
    version = issue(Kind.API_KEY).version
    args = {
        "admin:credentials_credential_rotate": [version.credential_id],
        "admin:auth_user_add": [],
        "admin:auth_user_password_change": [request.getfixturevalue("admin_user").pk],
        "admin:auth_group_change": [Group.objects.get(name="Auditors").pk],
    }.get(name, [version.pk])
    client.force_login(request.getfixturevalue(who))
    stale(client)
    assert client.get(reverse(name, args=args)).status_code == status


def test_steps_that_only_ask_or_check_need_no_fresh_window(client, security_user, issue):
    client.force_login(security_user)
    rotation = start(client, issue(Kind.API_KEY).version.credential)
    assert current_step(rotation).kind == "confirm"
    stale(client)
    response, _ = step_post(client, rotation)
    assert response.status_code == 302 and response["Location"].endswith(f"/{rotation.pk}/")
    rotation.refresh_from_db()
    assert current_step(rotation).kind == "generate"
    assert client.get(reverse("admin:credentials_rotation", args=[rotation.pk]))[
        "Location"
    ].startswith(reverse("admin:confirm_identity"))


def test_an_auditor_reads_a_rotation_at_its_generate_step_without_being_asked(
    client, security_user, auditor_user, issue
):
    client.force_login(security_user)
    rotation = start(client, issue(Kind.API_KEY).version.credential)
    step_post(client, rotation)
    client.force_login(auditor_user)
    stale(client)
    page = client.get(reverse("admin:credentials_rotation", args=[rotation.pk]))
    assert page.status_code == 200


def test_an_abandon_that_changes_no_version_needs_no_fresh_window(client, security_user, issue):
    client.force_login(security_user)
    rotation = start(client, issue(Kind.API_KEY).version.credential)
    stale(client)
    url = reverse("admin:credentials_rotation_abandon", args=[rotation.pk])
    client.post(url, {"confirm": "on"})
    rotation.refresh_from_db()
    assert rotation.state == Rotation.Status.ABANDONED


def test_the_api_is_never_asked_for_a_password(client, security_user, issue):
    from tests.management_api import call, management_key

    client.force_login(security_user)
    stale(client)  # even beside a browser session whose window has run out
    key = management_key("credentials:rotate")
    target = issue(Kind.API_KEY)
    response = call(
        client, "post", f"/api/v1/credentials/{target.credential.pk}/rotations", key.plaintext,
        body={"overlap_seconds": 0},
    )  # fmt: skip
    assert response.status_code == 201, response.content.decode()[:500]
    assert CredentialVersion.objects.filter(credential=target.credential).count() == 2
