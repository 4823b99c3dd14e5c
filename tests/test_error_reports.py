"""A traceback never shows a secret: not on the DEBUG page, not in an e-mailed report."""

import sys

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from credentials import crypto
from credentials.models import Kind

pytestmark = pytest.mark.django_db


def _report_for(function, request=None):
    try:
        function()
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        return reporter.get_traceback_html() + reporter.get_traceback_text()
    raise AssertionError("the function was meant to fail")


@pytest.mark.parametrize("debug", [True, False])
def test_locals_holding_secrets_are_hidden_whatever_debug_says(settings, debug):
    settings.DEBUG = debug
    token = crypto.generate_token("api_key")
    hash_key = settings.PORTAL_TOKEN_HASH_KEYS.current[1]

    def handler_that_crashes():
        presented = token  # noqa: F841 (read by the report)
        key = hash_key  # noqa: F841
        innocently_named = f"log line with {token}"  # noqa: F841
        raise RuntimeError("boom")

    report = _report_for(handler_that_crashes)
    assert token not in report
    assert repr(hash_key)[2:20] not in report
    assert "boom" in report  # the report itself is still useful


def test_posted_public_keys_and_notes_are_hidden(settings, issue):
    pasted = "-----BEGIN " + "PRIVATE KEY-----MC4CAQAwBQYDK2VwBCIEI"  # split: not in the source
    request = RequestFactory().post("/admin/", {"public_key": pasted, "note": "x", "name": "n"})
    issued = issue(Kind.API_KEY)

    def view_that_crashes():
        plaintext = issued.plaintext  # noqa: F841
        raise RuntimeError("boom")

    report = _report_for(view_that_crashes, request)
    assert pasted not in report and issued.plaintext not in report
