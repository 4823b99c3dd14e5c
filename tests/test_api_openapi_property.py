"""A property-based run of the management API against the OpenAPI document it serves.

schemathesis reads ``/api/v1/openapi.json`` from the WSGI application in-process, generates
requests for every operation from it (valid and invalid ones), sends them with a management
key holding every scope, and checks each answer: never a 5xx, and always a documented status
code and content type with a body that matches the documented schema. Bounded in examples so
the run takes seconds.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from credentials import lifecycle
from credentials.models import Kind, RevokeReason
from portal.wsgi import application
from tests.management_api import ALL_SCOPES, management_key
from tests.states import ACTOR

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Fetched from the running application at collection (the document needs no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def same_connection():
    """Keep the test's database connection across requests to the real WSGI application.

    Django's own test client does this for its requests; schemathesis calls the application
    directly, whose request signals would close the connection (and with it the test's
    transaction) after every request on PostgreSQL.
    """
    from django.core import signals
    from django.db import close_old_connections

    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def world(db, settings, app, same_connection):
    """A key with every scope, and a few things for the generated ids to find."""
    settings.PORTAL_API_RATE = 0
    key = management_key(*ALL_SCOPES).plaintext
    lifecycle.endpoint_create(actor=ACTOR, app=app, url="https://hooks.example.com/k")
    for kind in (Kind.API_KEY, Kind.CLIENT_SECRET):
        issued = lifecycle.credential_issue(actor=ACTOR, app=app, kind=kind, name=f"{kind}")
        lifecycle.credential_rotate(actor=ACTOR, credential=issued.credential, overlap_seconds=60)
    revoked = lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.API_KEY, name="r")
    lifecycle.version_revoke(actor=ACTOR, version=revoked.version, reason=RevokeReason.ROUTINE)
    return key


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(case, world):
    case.call_and_validate(headers={"Authorization": f"Bearer {world}"}, checks=CHECKS)
