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


def test_a_leaked_old_version_is_marked_exposed_without_touching_a_rotation_in_progress(issue):
    issued = issue(Kind.API_KEY)
    old = issued.version
    routine, _ = lifecycle.rotation_start(actor=ACTOR, credential=issued.credential)
    rotated = lifecycle.credential_rotate(
        actor=ACTOR, credential=issued.credential, overlap_seconds=0, rotation=routine
    )
    old.refresh_from_db()
    assert old.state == State.REVOKED  # replaced by the rotation, still inside its window

    assert lifecycle.exposure_report(actor=ACTOR, version=old, note="old commit") is None

    assert _exposed(old) and old.reactivation_deadline is None
    routine.refresh_from_db()
    assert routine.state == "in_progress"
    rotated.version.refresh_from_db()
    assert rotated.version.state == State.ACTIVE  # the key in use keeps working
    assert Rotation.objects.count() == 1


def test_a_leaked_expired_version_opens_no_rotation(issue):
    from datetime import timedelta

    from django.utils import timezone

    issued = issue(Kind.API_KEY, lifetime_days=1)
    lifecycle.versions_expire(now=timezone.now() + timedelta(days=2))
    issued.version.refresh_from_db()
    assert issued.version.state == State.EXPIRED

    assert lifecycle.exposure_report(actor=ACTOR, version=issued.version) is None
    assert not Rotation.objects.exists()
