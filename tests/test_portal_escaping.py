"""Names are data, never markup: HTML typed into a name shows as text on every page."""

import pytest
from django.urls import reverse

from credentials import lifecycle
from credentials.models import Kind, RevokeReason
from tests.states import ACTOR

pytestmark = pytest.mark.django_db

EVIL = '<script>alert("kt")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def hostile(app):
    lifecycle.app_update(
        actor=ACTOR, app=app, name=EVIL[:120], owner_team=EVIL[:120],
        contact_email=app.contact_email, description=EVIL,
    )  # fmt: skip
    issued = lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.API_KEY, name=EVIL[:120])
    lifecycle.version_revoke(
        actor=ACTOR, version=issued.version, reason=RevokeReason.OTHER, note=EVIL
    )
    return issued


def test_html_in_names_and_notes_is_escaped_on_every_page(client, admin_user, hostile):
    client.force_login(admin_user)
    credential, version = hostile.credential, hostile.version
    pages = [
        reverse("admin:index"),
        reverse("admin:credentials_app_changelist"),
        reverse("admin:credentials_app_change", args=[credential.app_id]),
        reverse("admin:credentials_credential_changelist"),
        reverse("admin:credentials_credential_change", args=[credential.pk]),
        reverse("admin:credentials_credential_rotate", args=[credential.pk]),
        reverse("admin:credentials_credential_timeline", args=[credential.pk]),
        reverse("admin:credentials_credentialversion_changelist"),
        reverse("admin:credentials_credentialversion_reactivate", args=[version.pk]),
        reverse("admin:credentials_credentialversion_expose", args=[version.pk]),
        reverse("admin:credentials_auditevent_changelist"),
    ]
    for url in pages:
        body = client.get(url).content.decode()
        assert "<script>alert(" not in body, url
        assert "onerror=alert(1)>" not in body, url
        assert "&lt;script&gt;" in body, url
