"""Management keys are issued and rotated in the portal like any other key, then used."""

import pytest
from django.test import Client
from django.urls import reverse

from credentials.models import Credential
from tests.management_api import call, management_app
from tests.test_portal_show_once import ISSUE_URL, _rotate_url, _secret, _token

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, security_user):
    client.force_login(security_user)
    return client


def test_a_key_issued_in_the_portal_calls_the_api_and_a_rotation_there_retires_it(staff):
    page = staff.get(reverse(ISSUE_URL))
    issued = staff.post(
        reverse(ISSUE_URL),
        {"once": _token(page), "app": management_app().pk, "kind": "api_key",
         "name": "CI pipeline", "scopes": ["credentials:read"], "overlap_hours": "0"},
    )  # fmt: skip
    first_key = _secret(issued)
    api = Client()
    assert call(api, "get", "/api/v1/apps", first_key).status_code == 200

    credential = Credential.objects.get(name="CI pipeline")
    page = staff.get(_rotate_url(credential))
    rotated = staff.post(_rotate_url(credential), {"once": _token(page), "overlap_hours": "0"})
    second_key = _secret(rotated)

    assert call(api, "get", "/api/v1/apps", second_key).status_code == 200
    assert call(api, "get", "/api/v1/apps", first_key).status_code == 401
    # Its scopes are the credential's, kept across the rotation.
    assert call(api, "get", "/api/v1/audit", second_key).status_code == 403
