"""`exposure_report`: a leaked version is revoked for good at once, and a rotation follows."""

import pytest
from django.urls import reverse

from credentials import lifecycle
from credentials.models import AuditEvent, Kind, RevokeReason, Rotation, State
from tests.states import ACTOR


def _exposed(version):
    version.refresh_from_db()
    return version.state == State.REVOKED and version.revoke_reason == RevokeReason.EXPOSED


def test_a_report_revokes_for_good_and_opens_an_exposure_rotation(issue):
    issued = issue(Kind.API_KEY)

    rotation = lifecycle.exposure_report(actor=ACTOR, version=issued.version, note="in a log")

    assert _exposed(issued.version)
    assert issued.version.reactivation_deadline is None
    assert (rotation.mode, rotation.state) == ("exposure", "in_progress")
    assert rotation.old_version_id == issued.version.pk
    assert AuditEvent.objects.filter(action="credential.exposed").count() == 1


def test_an_archived_apps_leaked_key_is_still_revoked_though_nothing_can_rotate(app, issue):
    issued = issue(Kind.API_KEY)
    lifecycle.app_archive(actor=ACTOR, app=app)

    rotation = lifecycle.exposure_report(actor=ACTOR, version=issued.version)

    assert rotation is None
    assert _exposed(issued.version)
    assert not Rotation.objects.exists()
    assert AuditEvent.objects.filter(action="credential.exposed").count() == 1


def test_reporting_the_same_version_twice_is_refused_and_changes_nothing(issue):
    issued = issue(Kind.API_KEY)
    lifecycle.exposure_report(actor=ACTOR, version=issued.version)
    events = AuditEvent.objects.count()

    with pytest.raises(lifecycle.TransitionRefused, match="already reported as exposed"):
        lifecycle.exposure_report(actor=ACTOR, version=issued.version)

    assert AuditEvent.objects.count() == events
    assert Rotation.objects.count() == 1


def test_the_admin_reports_an_archived_apps_key_and_lands_on_the_credential(
    client, admin_user, app, issue
):
    issued = issue(Kind.API_KEY)
    lifecycle.app_archive(actor=ACTOR, app=app)
    client.force_login(admin_user)
    url = reverse("admin:credentials_credentialversion_expose", args=[issued.version.pk])

    response = client.post(url, {"confirm": "on", "note": "pasted in chat"}, secure=True)

    assert response.status_code == 302, response.content.decode()[:500]
    assert (
        reverse("admin:credentials_credential_change", args=[issued.credential.pk])
        in (response["Location"])
    )
    assert _exposed(issued.version)
