"""Anything but a form with one token gets a clear 400 (or 405 for the method), never a 500."""

import json

import pytest

from credentials.api.introspection import MAX_BODY_BYTES
from credentials.models import Kind
from tests.introspection import FORM, URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth(caller_key):
    return {"HTTP_AUTHORIZATION": f"Bearer {caller_key}"}


@pytest.fixture
def token(issue):
    return issue(Kind.API_KEY, name="Presented").plaintext


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_a_method_other_than_post_is_405(client, auth, method):
    response = getattr(client, method)(URL, **auth)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def post(client, auth, body, content_type=FORM):
    return client.post(URL, body, content_type=content_type, **auth)


def assert_invalid_request(response):
    assert response.status_code == 400
    assert response["Cache-Control"] == "no-store"
    answer = json.loads(response.content)
    assert answer["error"] == "invalid_request"
    assert answer["error_description"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"token": "ktak_x"}', "application/json"),
        ("token=ktak_x", "text/plain"),
        ("token=ktak_x", ""),
        ("token=ktak_x", "multipart/form-data; boundary=x"),
        ("token=ktak_x", FORM + "; charset=latin-1"),
    ],
    ids=["json", "text", "no-type", "multipart", "latin-1"],
)
def test_a_body_that_is_not_a_utf8_form_is_400(client, auth, body, content_type):
    assert_invalid_request(post(client, auth, body, content_type))


@pytest.mark.parametrize(
    "body",
    [
        b"token=%ff%fe%fd",  # percent-escaped bytes that are not UTF-8
        "token=ktak_é".encode("latin-1"),  # raw bytes that are not ASCII
        b"token=\xc3\x28",
    ],
    ids=["escaped", "latin-1-bytes", "raw-invalid-utf8"],
)
def test_a_form_that_is_not_valid_utf8_is_400(client, auth, body):
    assert_invalid_request(post(client, auth, body))


def test_a_huge_body_is_400_without_reading_it_all(client, auth, token):
    assert_invalid_request(post(client, auth, f"token={token}&pad=" + "x" * MAX_BODY_BYTES))
    assert_invalid_request(post(client, auth, "x" * 10_000_000))


@pytest.mark.parametrize(
    "body",
    ["", "token=", "tokens=ktak_x", "token_type_hint=api_key", "&&&"],
    ids=["empty", "blank", "misspelt", "hint-only", "separators"],
)
def test_a_form_without_a_token_is_400(client, auth, body):
    assert_invalid_request(post(client, auth, body))


def test_a_token_given_twice_is_400(client, auth, token):
    assert_invalid_request(post(client, auth, f"token={token}&token={token}"))


def test_a_form_with_too_many_fields_is_400(client, auth, token):
    assert_invalid_request(post(client, auth, f"token={token}&" + "&".join(["a=1"] * 20)))


def test_a_well_formed_request_next_to_these_still_works(client, auth, token):
    assert post(client, auth, f"token={token}").json()["active"] is True
