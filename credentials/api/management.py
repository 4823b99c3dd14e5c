"""The management API under ``/api/v1/``: a django-ninja ``NinjaAPI`` and how its errors read.

Routes live in ``reads.py``, ``writes.py`` and ``github.py``; each names its scope with
``auth.needs``. The OpenAPI document is generated from them (``/api/v1/openapi.json``) and
browsable at ``/api/v1/docs`` (Swagger UI from the portal's own static files, no CDN).
"""

from __future__ import annotations

import logging

from csp.decorators import csp_update
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from .. import lifecycle
from .problems import CONTENT_TYPE, Problem, from_problem, problem_response

logger = logging.getLogger(__name__)


class KeyturnAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        # Error answers are problem+json; say so, so a client (or schemathesis) expects it.
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[CONTENT_TYPE] = content.pop("application/json")
        return schema

    def get_openapi_operation_id(self, operation) -> str:
        return operation.view_func.__name__


api = KeyturnAPI(
    title="Keyturn automation API",
    version="1",
    description=(
        "Rotate, revoke and audit Keyturn credentials from pipelines and scanners. "
        "Authenticate with a management key (an API key of the 'Keyturn automation API' app) "
        "as a bearer token; each operation names the scope it needs. Every POST takes an "
        "Idempotency-Key. Errors are RFC 9457 problem details."
    ),
    urls_namespace="api:management",
    openapi_url="/openapi.json",
    docs_url="/docs",
    # Swagger UI's stylesheet draws its icons as data: images; the rest of the portal's
    # Content-Security-Policy (portal/settings.py) holds on this page as everywhere else.
    docs_decorator=csp_update({"img-src": ["data:"]}),
)


@api.exception_handler(Problem)
def _problem(request, error: Problem):
    return from_problem(request, error)


@api.exception_handler(ValidationError)
def _validation(request, error: ValidationError):
    # Only where and what: pydantic's "input" would echo the request, which may hold a secret.
    errors = [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in error.errors
    ]
    return problem_response(
        request, "validation-error", "Some fields are missing or invalid.", errors=errors
    )


@api.exception_handler(lifecycle.InvalidRequest)
def _invalid(request, error):
    return problem_response(request, "invalid-request", str(error))


@api.exception_handler(lifecycle.TransitionRefused)
def _refused(request, error):
    return problem_response(request, "transition-refused", str(error))


@api.exception_handler(Http404)
def _not_found(request, error):
    return problem_response(request, "not-found", "There is no such resource.")


@api.exception_handler(HttpError)
def _http_error(request, error: HttpError):
    slug = {401: "unauthenticated", 404: "not-found", 405: "method-not-allowed"}
    return problem_response(
        request, slug.get(error.status_code, "invalid-request"), "The request was refused."
    )


@api.exception_handler(Exception)
def _unexpected(request, error):
    logger.exception("Unhandled error in the automation API", exc_info=error)
    return problem_response(request, "server-error", "The error has been logged.")


from . import github, reads, writes  # noqa: E402  (routes register themselves on `api`)

__all__ = ["api", "github", "reads", "writes"]
