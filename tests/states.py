"""Build versions in every state of the state machine, the way production gets them there."""

from datetime import timedelta

from django.utils import timezone

from credentials import lifecycle
from credentials.audit import Actor
from credentials.models import CredentialVersion, Kind, RevokeReason

ACTOR = Actor.system("tests")


class Clock:
    """A controllable `timezone.now` for tests that need time to pass."""

    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


def make_version(issue, state: str, kind=Kind.API_KEY) -> CredentialVersion:
    """A version of a fresh credential in the named situation.

    `active`, `retiring` (the old version of an overlapping rotation), `revoked` (routine, its
    window open), `revoked_from_retiring`, `exposed`, `expired`.
    """
    issued = issue(kind)
    version = issued.version
    if state == "active":
        return version
    if state in ("retiring", "revoked_from_retiring"):
        lifecycle.credential_rotate(
            actor=ACTOR, credential=version.credential, overlap_seconds=3600
        )
        version.refresh_from_db()
        if state == "retiring":
            return version
        return lifecycle.version_revoke(actor=ACTOR, version=version, reason=RevokeReason.ROUTINE)
    if state == "revoked":
        return lifecycle.version_revoke(actor=ACTOR, version=version, reason=RevokeReason.ROUTINE)
    if state == "exposed":
        return lifecycle.version_report_exposure(actor=ACTOR, version=version)
    if state == "expired":
        lifecycle.versions_expire(now=version.expires_at)
        version.refresh_from_db()
        return version
    raise ValueError(state)
