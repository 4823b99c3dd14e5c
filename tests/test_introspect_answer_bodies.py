"""An active answer's JSON is made once per distinct row (``introspection._active_body``): a
row that changed in any way the answer shows gets a new answer at once, the memo holds no
secret, and it stays bounded."""

from datetime import timedelta

import pytest

from credentials import lifecycle
from credentials.api import introspection
from credentials.models import Credential, CredentialVersion, Kind, RevokeReason
from credentials.verification import verify_bearer
from tests.introspection import introspect
from tests.states import ACTOR

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_memo():
    introspection._bodies.clear()
    yield
    introspection._bodies.clear()


def test_the_same_row_gets_the_same_bytes_without_encoding_again(
    client, issue, caller_key, monkeypatch
):
    issued = issue(Kind.API_KEY)
    first = introspect(client, issued.plaintext, caller_key)
    encoded = []
    real = introspection._describe
    monkeypatch.setattr(introspection, "_describe", lambda found: encoded.append(1) or real(found))
    second = introspect(client, issued.plaintext, caller_key)
    assert second.content == first.content
    assert encoded == []


def test_an_edit_to_the_row_is_answered_at_once(client, issue, caller_key):
    issued = issue(Kind.API_KEY, scopes=["orders:read"])
    assert introspect(client, issued.plaintext, caller_key).json()["scope"] == "orders:read"

    Credential.objects.filter(pk=issued.version.credential_id).update(scopes=["orders:write"])
    assert introspect(client, issued.plaintext, caller_key).json()["scope"] == "orders:write"

    sooner = issued.version.expires_at - timedelta(days=1)
    CredentialVersion.objects.filter(pk=issued.version.pk).update(expires_at=sooner)
    assert introspect(client, issued.plaintext, caller_key).json()["exp"] == int(sooner.timestamp())

    lifecycle.credential_rotate(
        actor=ACTOR, credential=issued.version.credential, overlap_seconds=3600
    )
    retiring = introspect(client, issued.plaintext, caller_key).json()
    assert retiring["keyturn_state"] == "retiring"

    old = CredentialVersion.objects.get(pk=issued.version.pk)
    lifecycle.version_revoke(actor=ACTOR, version=old, reason=RevokeReason.ROUTINE)
    assert introspect(client, issued.plaintext, caller_key).json() == {"active": False}


def test_the_memo_holds_no_secret_and_stays_bounded(issue):
    issued = issue(Kind.API_KEY)
    found = verify_bearer(issued.plaintext)
    introspection._active_body(found)
    assert issued.plaintext not in repr(introspection._bodies)
    for number in range(1, 1100):  # rows that differ only in their version number
        introspection._active_body(found._replace(number=number))
    assert 0 < len(introspection._bodies) <= 1024
    assert introspection._active_body(found) == introspection._active_body(found)
