"""Errors of the automation API as RFC 9457 problem details (``application/problem+json``).

Every error the API answers with, whoever raises it (a handler, the framework's validation,
the URL resolver, an unexpected exception), leaves through ``problem_response`` with one of
the types below. A type is a stable URN: clients branch on it, never on the wording of
``detail``, which is written for a person and may change.
"""

from __future__ import annotations

import functools
import json
import logging

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
_PREFIX = "urn:keyturn:problem:"

# slug -> (status, title). The slug is the stable part of the type URI.
TYPES = {
    "unauthenticated": (401, "Authenticate with a management key"),
    "not-a-management-key": (403, "This key is not a management key"),
    "missing-scope": (403, "The key lacks a scope this operation needs"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed here"),
    "idempotency-key-missing": (400, "Idempotency-Key header required"),
    "idempotency-key-invalid": (400, "Idempotency-Key header malformed"),
    "idempotency-key-reused": (422, "Idempotency-Key already used for another request"),
    "idempotency-in-flight": (409, "The first request with this Idempotency-Key is still running"),
    "idempotency-answer-unreadable": (409, "The stored answer for this key can no longer be read"),
    "invalid-request": (422, "The request is not valid"),
    "validation-error": (422, "The request failed validation"),
    "invalid-cursor": (400, "The cursor is not one this API handed out"),
    "transition-refused": (409, "The state machine refuses this change now"),
    "body-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Send JSON"),
    "rate-limited": (429, "Too many requests"),
    "signature-missing": (401, "The report is not signed"),
    "signature-invalid": (401, "The report's signature does not verify"),
    "malformed-report": (400, "The report is not a secret-scanning payload"),
    "server-error": (500, "Something went wrong on our side"),
}


def type_uri(slug: str) -> str:
    return _PREFIX + slug


class Problem(Exception):
    """Raise anywhere under the API to answer with this problem. ``detail`` is shown as is,
    so it must be fit for a person and never hold a secret."""

    def __init__(self, slug: str, detail: str, *, headers: dict | None = None, **extra):
        if slug not in TYPES:
            raise ValueError(f"unknown problem type {slug!r}")
        super().__init__(detail)
        self.slug, self.detail, self.headers, self.extra = slug, detail, headers or {}, extra


def problem_response(
    request: HttpRequest | None,
    slug: str,
    detail: str,
    *,
    headers: dict | None = None,
    **extra,
) -> HttpResponse:
    status, title = TYPES[slug]
    body = {"type": type_uri(slug), "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.path
    body.update(extra)
    response = HttpResponse(json.dumps(body).encode(), status=status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def from_problem(request: HttpRequest, error: Problem) -> HttpResponse:
    return problem_response(request, error.slug, error.detail, headers=error.headers, **error.extra)


def known_error(request: HttpRequest, error: Exception) -> HttpResponse | None:
    """The problem answer for an error the API expects (ours, the lifecycle's, a 404), or None."""
    from django.http import Http404

    from ..lifecycle import InvalidRequest, TransitionRefused

    if isinstance(error, Problem):
        return from_problem(request, error)
    if isinstance(error, InvalidRequest):
        return problem_response(request, "invalid-request", str(error))
    if isinstance(error, TransitionRefused):
        return problem_response(request, "transition-refused", str(error))
    if isinstance(error, Http404):
        return problem_response(request, "not-found", "There is no such resource.")
    return None


def boundary(view):
    """Wrap a view of the API so that nothing leaves it as anything but problem+json: an
    unexpected exception becomes a logged 500, and the framework's plain-text 405 is
    rewritten (keeping its ``Allow`` header)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            response = view(request, *args, **kwargs)
        except Problem as error:
            return from_problem(request, error)
        except Exception:
            # The traceback goes through the error-report filter, which masks sensitive
            # variables; the client learns only that it was our fault.
            logger.exception("Unhandled error in the automation API")
            return problem_response(request, "server-error", "The error has been logged.")
        if response.status_code == 405 and response.get("Content-Type") != CONTENT_TYPE:
            allow = response.get("Allow", "")
            return problem_response(
                request,
                "method-not-allowed",
                f"{request.method} is not allowed here; use {allow or 'another method'}.",
                headers={"Allow": allow},
            )
        return response

    return wrapped


def not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Everything under /api/v1/ that no route claims."""
    return problem_response(request, "not-found", "There is nothing at this address.")
