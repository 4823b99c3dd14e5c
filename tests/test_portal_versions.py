"""Revoke, reactivate and report exposure from the portal: confirm first, then the lifecycle."""

from datetime import timedelta

import pytest
from django.urls import reverse

from credentials.models import AuditEvent, CredentialVersion, Kind, RevokeReason, State
from credentials.verification import verify_bearer
from tests.states import make_version

pytestmark = pytest.mark.django_db


def _url(name, version):
    return reverse(f"admin:credentials_credentialversion_{name}", args=[version.pk])


@pytest.fixture
def staff(client, security_user):
    client.force_login(security_user)
    return client


def test_the_revoke_page_names_the_version_and_the_window_before_the_click(staff, issue):
    version = issue(Kind.API_KEY).version
    body = staff.get(_url("revoke", version)).content.decode()
    assert f"Revoke ••••{version.last_four} now" in body
    assert "reactivate it for 60 minutes" in body
    version.refresh_from_db()
    assert version.state == State.ACTIVE  # looking changes nothing


def test_revoking_with_a_reason_stops_the_key_and_says_until_when_it_can_return(staff, issue):
    issued = issue(Kind.API_KEY)
    response = staff.post(
        _url("revoke", issued.version), {"reason": "offboarding", "note": "vendor gone"},
        follow=True,
    )  # fmt: skip
    assert response.redirect_chain[-1][0].endswith(f"/credential/{issued.credential.pk}/change/")
    assert "It stopped working now; it can be reactivated until" in response.content.decode()
    assert verify_bearer(issued.plaintext) is None
    event = AuditEvent.objects.get(action="credential.revoked")
    assert (event.actor_label, event.details["reason"]) == ("sec", "offboarding")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"reason": "other", "note": ""}, "Say why in the note"),
        ({"reason": "exposed"}, "Select a valid choice"),
        ({"reason": "rotated"}, "Select a valid choice"),
        ({}, "This field is required"),
    ],
    ids=["other-without-note", "exposed-is-not-offered", "rotated-is-not-offered", "no-reason"],
)
def test_a_revoke_without_a_proper_reason_is_refused_on_the_page(staff, issue, form, message):
    version = issue(Kind.API_KEY).version
    response = staff.post(_url("revoke", version), form)
    assert message in response.content.decode()
    version.refresh_from_db()
    assert version.state == State.ACTIVE


def test_a_second_revoke_of_the_same_version_is_refused_not_repeated(staff, issue):
    version = issue(Kind.API_KEY).version
    staff.post(_url("revoke", version), {"reason": "routine"})
    again = staff.post(_url("revoke", version), {"reason": "routine"})
    assert again.status_code == 409 and "already revoked" in again.content.decode()
    assert AuditEvent.objects.filter(action="credential.revoked").count() == 1


def test_reactivating_inside_the_window_brings_the_key_back(staff, issue):
    issued = issue(Kind.API_KEY)
    staff.post(_url("revoke", issued.version), {"reason": "routine"})
    page = staff.get(_url("reactivate", issued.version)).content.decode()
    assert 'class="kt-countdown"' in page and "Reactivate ••••" in page
    response = staff.post(_url("reactivate", issued.version), follow=True)
    assert "is active again" in response.content.decode()
    assert verify_bearer(issued.plaintext) is not None


def test_a_late_reactivation_click_gets_a_clear_refusal(staff, issue):
    version = make_version(issue, "revoked")
    page = staff.get(_url("reactivate", version))  # opened while the window was open
    assert "Reactivate ••••" in page.content.decode()
    CredentialVersion.objects.filter(pk=version.pk).update(
        reactivation_deadline=version.revoked_at - timedelta(seconds=1)
    )  # ...and the clock moves past the deadline before the click
    late = staff.post(_url("reactivate", version))
    assert late.status_code == 409
    assert "reactivation window for version 1 closed" in late.content.decode()
    version.refresh_from_db()
    assert version.state == State.REVOKED


def test_an_exposed_version_offers_no_reactivation(staff, issue):
    version = make_version(issue, "exposed")
    body = staff.get(_url("reactivate", version)).content.decode()
    assert "an exposed secret never comes back" in body
    assert 'type="submit"' not in body.split('id="content-main"')[1]


def test_report_exposure_says_there_is_no_way_back_and_needs_the_tick(client, admin_user, issue):
    client.force_login(admin_user)
    issued = issue(Kind.API_KEY)
    page = client.get(_url("expose", issued.version)).content.decode()
    assert "for good" in page and "no reactivation window" in page
    unticked = client.post(_url("expose", issued.version), {"note": "gist"})
    assert "This field is required" in unticked.content.decode()
    assert verify_bearer(issued.plaintext) is not None
    client.post(_url("expose", issued.version), {"note": "gist", "confirm": "on"})
    issued.version.refresh_from_db()
    assert issued.version.revoke_reason == RevokeReason.EXPOSED
    assert verify_bearer(issued.plaintext) is None


def test_security_staff_cannot_report_exposure(staff, issue):
    version = issue(Kind.API_KEY).version
    assert staff.get(_url("expose", version)).status_code == 403
    assert staff.post(_url("expose", version), {"confirm": "on"}).status_code == 403
    version.refresh_from_db()
    assert version.state == State.ACTIVE


def test_the_credential_page_shows_versions_with_last_four_and_no_state_field(staff, issue):
    issued = issue(Kind.API_KEY)
    staff.post(_url("revoke", issued.version), {"reason": "routine"})
    body = staff.get(
        reverse("admin:credentials_credential_change", args=[issued.credential.pk])
    ).content.decode()
    assert f"<code>••••{issued.version.last_four}</code>" in body
    assert 'class="kt-countdown"' in body
    assert 'name="state"' not in body
    assert issued.plaintext not in body and issued.version.digest not in body


def test_bulk_revoke_goes_through_the_same_confirmation(staff, issue):
    versions = [issue(Kind.API_KEY).version for _ in range(3)]
    changelist = reverse("admin:credentials_credentialversion_changelist")
    selection = {"action": "revoke_selected", "_selected_action": [v.pk for v in versions]}
    confirm = staff.post(changelist, selection)
    body = confirm.content.decode()
    assert all(f"<code>••••{v.last_four}</code>" in body for v in versions)
    assert CredentialVersion.objects.filter(state=State.REVOKED).count() == 0
    staff.post(changelist, {**selection, "apply": "1", "reason": "other", "note": ""})
    assert CredentialVersion.objects.filter(state=State.REVOKED).count() == 0  # note required
    staff.post(changelist, {**selection, "apply": "1", "reason": "routine"})
    assert CredentialVersion.objects.filter(state=State.REVOKED).count() == 3
    assert AuditEvent.objects.filter(action="credential.revoked").count() == 3


def test_searching_by_last_four_finds_the_credential(staff, issue):
    wanted = issue(Kind.API_KEY)
    issue(Kind.API_KEY, name="another")
    for query in (wanted.version.last_four, f"••••{wanted.version.last_four}"):
        body = staff.get(
            reverse("admin:credentials_credential_changelist"), {"q": query}
        ).content.decode()
        assert wanted.credential.name in body and "another" not in body


@pytest.mark.parametrize(
    "lookup", ["digest__startswith", "digest", "ciphertext__startswith", "public_key_pem"]
)
def test_the_version_list_refuses_filters_on_secret_columns(staff, issue, lookup):
    issue(Kind.API_KEY)
    staff.raise_request_exception = False
    response = staff.get(reverse("admin:credentials_credentialversion_changelist"), {lookup: "a"})
    assert response.status_code == 400


def test_a_version_url_leads_to_its_credential_page_and_shows_no_digest(staff, issue):
    issued = issue(Kind.API_KEY)
    response = staff.get(
        reverse("admin:credentials_credentialversion_change", args=[issued.version.pk]),
        follow=True,
    )
    assert response.redirect_chain[-1][0].endswith(f"/credential/{issued.credential.pk}/change/")
    assert issued.version.digest not in response.content.decode()


@pytest.mark.parametrize(
    ("name", "args", "params"),
    [
        ("admin:credentials_credential_rotate", ["²"], {}),
        ("admin:credentials_credentialversion_revoke", ["1x"], {}),
        ("admin:credentials_auditevent_changelist", [], {"since": "2024-02-30"}),
        ("admin:credentials_auditevent_changelist", [], {"app": "²"}),
        ("admin:credentials_credential_changelist", [], {"expires_within": "٣٠"}),
    ],
    ids=["superscript-id", "letter-in-id", "impossible-date", "superscript-app", "arabic-days"],
)
def test_odd_input_in_urls_is_a_clean_answer_not_a_server_error(staff, name, args, params):
    staff.raise_request_exception = False
    response = staff.get(reverse(name, args=args), params)
    assert response.status_code in (200, 404)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"overlap_seconds": "99999999"}, "overlap must be between"),
        ({"lifetime_days": "99999"}, "Lifetime must be between"),
        ({"name": "ktak_" + "A" * 46}, "shaped like a secret"),
    ],
)
def test_a_refused_policy_edit_is_a_form_error_not_a_false_success(staff, issue, changes, message):
    credential = issue(Kind.API_KEY).credential
    form = {"name": credential.name, "overlap_seconds": "60", **changes}
    response = staff.post(
        reverse("admin:credentials_credential_change", args=[credential.pk]), form
    )
    body = response.content.decode()
    assert response.status_code == 200 and message in body
    assert "was changed successfully" not in body
    credential.refresh_from_db()
    assert credential.overlap_seconds != 60
