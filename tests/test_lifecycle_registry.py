"""Apps, endpoints and credential policy change through audited lifecycle functions."""

import pytest

from credentials import lifecycle
from credentials.models import AuditEvent, Kind
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


def _last(action):
    return AuditEvent.objects.filter(action=action).first()


def test_app_update_records_only_what_changed(app):
    lifecycle.app_update(
        actor=ACTOR, app=app, name="Shop", owner_team=app.owner_team,
        contact_email=app.contact_email, description="",
    )  # fmt: skip
    app.refresh_from_db()
    assert app.name == "Shop"
    assert _last("app.updated").details == {"name": {"from": "Storefront", "to": "Shop"}}


def test_app_update_with_nothing_changed_writes_no_event(app):
    lifecycle.app_update(
        actor=ACTOR, app=app, name=app.name, owner_team=app.owner_team,
        contact_email=app.contact_email, description=app.description,
    )  # fmt: skip
    assert _last("app.updated") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("name", " ", "Enter a name"), ("contact_email", "nobody", "valid contact email")],
)
def test_app_update_with_bad_input_changes_nothing(app, field, value, message):
    values = {"name": app.name, "owner_team": app.owner_team, "contact_email": app.contact_email}
    with pytest.raises(lifecycle.InvalidRequest, match=message):
        lifecycle.app_update(actor=ACTOR, app=app, **{**values, field: value})
    app.refresh_from_db()
    assert getattr(app, field) != value


def test_an_archived_app_keeps_its_versions_working_but_gets_nothing_new(issue, app):
    from credentials.verification import verify_bearer

    issued = issue(Kind.API_KEY)
    lifecycle.app_archive(actor=ACTOR, app=app)
    assert verify_bearer(issued.plaintext) is not None
    with pytest.raises(lifecycle.TransitionRefused, match="archived"):
        issue(Kind.API_KEY)
    with pytest.raises(lifecycle.TransitionRefused, match="already archived"):
        lifecycle.app_archive(actor=ACTOR, app=app)
    assert AuditEvent.objects.filter(action="app.archived").count() == 1


def test_endpoint_update_validates_the_url_and_audits_changes(issue):
    endpoint = issue(Kind.ENDPOINT_SECRET).credential.endpoint
    with pytest.raises(lifecycle.InvalidRequest, match="http"):
        lifecycle.endpoint_update(
            actor=ACTOR, endpoint=endpoint, url="file:///etc/passwd", event_types=[], enabled=True
        )
    lifecycle.endpoint_update(
        actor=ACTOR, endpoint=endpoint, url=endpoint.url, event_types=["test.ping"], enabled=False
    )
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.event_types) == (False, ["test.ping"])
    assert set(_last("endpoint.updated").details) == {"enabled", "event_types"}


def test_credential_update_changes_policy_for_future_versions(issue):
    issued = issue(Kind.API_KEY, lifetime_days=90)
    credential = lifecycle.credential_update(
        actor=ACTOR, credential=issued.credential, name="renamed", scopes=["introspect"],
        lifetime_days=10, overlap_seconds=0,
    )  # fmt: skip
    assert (credential.name, credential.scopes) == ("renamed", ["introspect"])
    issued.version.refresh_from_db()
    assert (issued.version.expires_at - issued.version.activated_at).days == 90
    rotated = lifecycle.credential_rotate(actor=ACTOR, credential=credential)
    assert (rotated.version.expires_at - rotated.version.activated_at).days == 10
    assert set(_last("credential.updated").details) == {
        "name", "scopes", "lifetime_days", "overlap_seconds",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scopes": ["admin"]}, "Unknown scope"),
        ({"lifetime_days": 0}, "Lifetime"),
        ({"overlap_seconds": -1}, "overlap"),
    ],
)
def test_credential_update_with_bad_policy_changes_nothing(issue, changes, message):
    credential = issue(Kind.API_KEY).credential
    values = {"name": "x", "scopes": [], "lifetime_days": None, "overlap_seconds": 60}
    with pytest.raises(lifecycle.InvalidRequest, match=message):
        lifecycle.credential_update(actor=ACTOR, credential=credential, **{**values, **changes})
    assert _last("credential.updated") is None
