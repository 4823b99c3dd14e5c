"""A credential's timeline: every event about it, a page at a time, by one index range."""

import pytest
from django.db import transaction
from django.urls import reverse

from credentials import audit, lifecycle
from credentials.models import AuditEvent, Kind
from credentials.selectors import TIMELINE_PAGE
from tests.states import ACTOR


@pytest.fixture
def auditor(client, auditor_user):
    client.force_login(auditor_user)
    return client


def _reveal(version, times):
    for _ in range(times):
        with transaction.atomic():
            audit.append(
                actor=ACTOR, action="credential.revealed", target=version,
                app_id=version.credential.app_id, credential_id=version.credential_id,
            )  # fmt: skip


def _timeline(client, credential, **params):
    url = reverse("admin:credentials_credential_timeline", args=[credential.pk])
    response = client.get(url, params, secure=True)
    assert response.status_code == 200
    return response


def test_a_long_history_is_shown_newest_page_first_and_pages_back_to_the_start(auditor, issue):
    version = issue(Kind.API_KEY).version
    _reveal(version, 2 * TIMELINE_PAGE + 10)  # one "issued" event, then the reveals
    mine = list(
        AuditEvent.objects.filter(credential_id=version.credential_id)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert len(mine) == 2 * TIMELINE_PAGE + 11

    pages, params = [], {}
    while True:
        response = _timeline(auditor, version.credential, **params)
        pages.append([event.seq for event in response.context["events"]])
        if response.context["older_than"] is None:
            break
        assert "Older events" in response.content.decode()
        params = {"before": response.context["older_than"]}

    assert [len(page) for page in pages] == [TIMELINE_PAGE, TIMELINE_PAGE, 11]
    assert all(page == sorted(page) for page in pages)  # oldest first within a page
    assert [seq for page in reversed(pages) for seq in page] == mine  # nothing lost or repeated
    assert "Older events" not in response.content.decode()


def test_the_timeline_includes_changes_to_the_credential_itself(auditor, issue):
    credential = issue(Kind.API_KEY).credential
    lifecycle.credential_update(
        actor=ACTOR, credential=credential, name="Renamed key", scopes=[],
        lifetime_days=None, overlap_seconds=60,
    )  # fmt: skip
    actions = [e.action for e in _timeline(auditor, credential).context["events"]]
    assert actions == ["credential.issued", "credential.updated"]


def test_another_credentials_events_never_appear(auditor, issue):
    mine, other = issue(Kind.API_KEY, name="Mine"), issue(Kind.API_KEY, name="Other")
    _reveal(other.version, 3)
    events = _timeline(auditor, mine.credential).context["events"]
    assert {event.credential_id for event in events} == {mine.credential.pk}


@pytest.mark.parametrize("before", ["", "abc", "-5", "1e9", "٣", "9" * 40])
def test_a_garbled_page_marker_shows_the_newest_page(auditor, issue, before):
    version = issue(Kind.API_KEY).version
    _reveal(version, 2)
    events = _timeline(auditor, version.credential, before=before).context["events"]
    assert len(events) == 3


def test_an_event_about_a_credential_cannot_name_another_credential(issue):
    first, second = issue(Kind.API_KEY), issue(Kind.API_KEY)
    with pytest.raises(ValueError, match="credential_id"), transaction.atomic():
        audit.append(
            actor=ACTOR, action="credential.updated", target=first.credential,
            credential_id=second.credential.pk,
        )  # fmt: skip
