"""``POST /api/v1/introspect``: token introspection (RFC 7662) for the services that trust Keyturn.

A plain function view, kept free of any framework because it is the hot path: one query
that looks up both the caller's key and the presented token (``verify_bearers``, which reads
the database on every call so that a revoke counts at once), then the caller's rate limit and
the uses of both keys (``ratelimit.seconds_to_wait`` with ``uses``): on Redis most requests
spend a place in the window that this process reserved earlier and queue their uses, with no
round trip; one request per block reserves the next block (one Lua script).
No session or cookie is ever consulted: the caller authenticates with
``Authorization: Bearer <key>`` alone, so the view is exempt from CSRF.

What an active answer means (the fields RFC 7662 leaves to the server):

- ``token_type``: the Keyturn kind of the presented secret, ``api_key`` or ``client_secret``;
- ``sub``: the credential the secret belongs to, ``credential:<id>``, the same across rotations;
- ``jti``: the version's public id (a UUID): this one secret, never reused;
- ``client_id``: the app holding the credential; ``scope``: its scopes, space-separated;
- ``iat``: when the version became active; ``exp``: when it stops verifying (its expiry, or the
  end of its overlap while retiring, whichever is sooner), both in seconds since the epoch;
- ``keyturn_version``: the version number; ``keyturn_state``: ``active`` or ``retiring``.

Anything not active (unknown, malformed, revoked, expired, past its overlap, of a kind that
cannot be presented) is exactly ``{"active": false}``, with nothing that tells the cases apart.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .. import ratelimit, usage
from ..verification import VerifiedKey, verify_bearers

logger = logging.getLogger(__name__)

REQUIRED_SCOPE = "introspect"
MAX_BODY_BYTES = 4096  # a token is under 80 characters; anything near this is not a request
_MAX_FIELDS = 8
_REALM = 'Bearer realm="keyturn"'
_INACTIVE = b'{"active": false}'


class BadRequest(Exception):
    """A request we answer with 400 ``invalid_request``; the message is safe to send back."""


@csrf_exempt  # authenticated by a bearer key in a header, never by a cookie
@sensitive_post_parameters("token")
def introspect(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = _json(405, {"error": "invalid_request", "error_description": "Use POST."})
        response["Allow"] = "POST"
        return response
    return _introspect(request)


@sensitive_variables("key", "presented")
def _introspect(request: HttpRequest) -> HttpResponse:
    key = _bearer_key(request.META.get("HTTP_AUTHORIZATION"))
    if key is None:
        return _unauthorised(_REALM)  # no bearer credentials: RFC 6750 asks for no error code

    # The form is read before the caller is verified so that both secrets are looked up in
    # one query; an unauthenticated caller still gets 401 first, and learns nothing else.
    problem, presented = None, None
    try:
        presented = _form_fields(request).get("token") or None
    except BadRequest as bad_form:
        problem = str(bad_form)
    if presented is None and problem is None:
        problem = "The token parameter is missing."
    # token_type_hint is optional and only a hint (RFC 7662, 2.1): every kind is searched
    # anyway, since the token's own prefix says which kind it claims to be.
    caller, found = verify_bearers([key, presented])

    if caller is None:
        return _unauthorised(
            f'{_REALM}, error="invalid_token", '
            'error_description="The key is unknown, malformed, revoked or expired."'
        )
    return _answer(caller, found, problem)


def _answer(caller: VerifiedKey, found: VerifiedKey | None, problem: str | None) -> HttpResponse:
    """The answer to a verified caller. The caller's key counts as used whatever the answer;
    a presented key that verified counts too, unless the caller is over its rate limit."""
    if REQUIRED_SCOPE not in caller.scopes:
        usage.record_uses([caller.version_id])
        # RFC 6750 would answer 403 here; the issue asks for 401, and a service that gets
        # either must stop and fix its key, so nothing is lost by following it.
        challenge = (
            f'{_REALM}, error="insufficient_scope", scope="{REQUIRED_SCOPE}", '
            'error_description="This key does not carry the introspect scope."'
        )
        return _unauthorised(challenge)
    # Per credential, so rotating a key does not reset its budget. The uses ride along with
    # the request's count: one round trip to the cache for all three.
    retry_after = ratelimit.seconds_to_wait(
        f"introspect:{caller.credential_id}",
        settings.PORTAL_INTROSPECT_RATE,
        uses=[caller.version_id],
        uses_if_allowed=[found.version_id] if found is not None else None,
    )
    if retry_after:
        response = _json(429, {"error": "rate_limited", "error_description": "Slow down."})
        response["Retry-After"] = str(retry_after)
        return response
    if problem:
        return _json(400, {"error": "invalid_request", "error_description": problem})
    if found is None:
        return _no_store(HttpResponse(_INACTIVE, content_type="application/json"))
    return _no_store(HttpResponse(_active_body(found), content_type="application/json"))


_bodies: dict[VerifiedKey, bytes] = {}  # the JSON answer for a verified row, made once


def _active_body(found: VerifiedKey) -> bytes:
    """The JSON of ``_describe(found)``, encoded once per distinct row.

    The answer is a function of the row alone (every field of ``found`` is the database's, read
    by this request's lookup), so a row that is unchanged since the last request gets the same
    bytes, and a changed one (revoked, retiring, expiry moved, scopes edited) is a new key. It
    holds what the answer holds, public ids and scopes, never a secret or a digest; bounded,
    so that many distinct keys cannot grow it without end."""
    body = _bodies.get(found)
    if body is None:
        body = json.dumps(_describe(found)).encode()
        if len(_bodies) >= 1024:
            _bodies.clear()
        _bodies[found] = body
    return body


def _describe(found: VerifiedKey) -> dict:
    ends = [moment for moment in (found.expires_at, found.retire_at) if moment is not None]
    answer = {
        "active": True,
        "scope": " ".join(found.scopes),
        "client_id": found.client_id,
        "token_type": found.kind,
        "exp": _epoch(min(ends)) if ends else None,
        "iat": _epoch(found.activated_at),
        "sub": f"credential:{found.credential_id}",
        "jti": str(found.public_id),
        "keyturn_version": found.number,
        "keyturn_state": found.state,
    }
    if answer["exp"] is None:
        del answer["exp"]  # never expires: RFC 7662 makes exp optional
    return answer


@sensitive_variables("authorization")
def _bearer_key(authorization: str | None) -> str | None:
    """What follows ``Bearer`` in the Authorization header (possibly ""), or None if the
    header is missing or names another scheme."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip()


def introspection_fast_path(get_response):
    """Middleware: answer an introspection request from a machine here, with the view itself,
    instead of passing it down the rest of the middleware.

    A machine's request is a POST to the view's path that carries none of the portal's own
    cookies (``_carries_portal_cookie``). Everything below this middleware in ``MIDDLEWARE``
    serves people signed in with a session: CSRF (the view is exempt), authentication,
    two-factor, messages, session limits, X-Frame-Options (the view sets it on its own
    answers), the two-factor gate and lockouts. None of it reads or changes anything for a
    request without those cookies, and running it, with the URL resolution, cost about a
    sixth of the request's CPU (docs/benchmarks.md). So middleware placed below this one does
    not see these requests: put anything that must see every request above it. A request
    with a portal cookie, another method or another path goes down the whole stack as any
    other; so does every request while ``ATOMIC_REQUESTS`` is on, so that the view runs in
    its transaction.

    Just below CommonMiddleware, which has refused a host the portal does not serve by then,
    and so below the HTTPS redirect, static files, the security headers and the session
    middleware (which has nothing to save for a request without a session cookie).
    """
    path = []  # the view's path_info, looked up at the first request (the URLconf is loaded)

    def middleware(request: HttpRequest) -> HttpResponse:
        if not path:
            path.append(_path_info_of("api:introspect"))
        if (
            request.path_info == path[0]
            and request.method == "POST"
            and not _carries_portal_cookie(request.META.get("HTTP_COOKIE"))
            and not _atomic_requests()
        ):
            return introspect(request)
        return get_response(request)

    return middleware


def _carries_portal_cookie(header: str | None) -> bool:
    """Whether a Cookie header may hold a cookie that the middleware below the fast path
    reads: the session's (sign-in, two-factor, session limits), CSRF's, or the messages'.

    Any other cookie changes nothing below (a load balancer's stickiness cookie, say), so a
    machine's request that carries one still takes the fast path. A name found anywhere in
    the header counts, even inside another cookie's name or value: a false match costs only
    the whole stack, and the answer is the same."""
    if not header:
        return False
    names = (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME, CookieStorage.cookie_name)
    return any(name in header for name in names)


def _atomic_requests() -> bool:
    """Whether any database wraps each view in a transaction (``ATOMIC_REQUESTS``): Django's
    handler does that below the middleware, so such requests take the whole stack."""
    return any(database.get("ATOMIC_REQUESTS") for database in connections.settings.values())


def _path_info_of(view_name: str) -> str | None:
    try:
        # reverse() puts the script prefix (a deployment under /some/path) in front.
        return "/" + reverse(view_name).removeprefix(get_script_prefix())
    except NoReverseMatch:  # a URLconf without the view (some tests): nothing to answer here
        return None


@sensitive_variables("body", "fields")
def _form_fields(request: HttpRequest) -> dict[str, str]:
    """The form's fields, each at most once (RFC 6749, 3.1), or BadRequest saying what is wrong."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("Send the token form-encoded (application/x-www-form-urlencoded).")
    charset = request.content_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise BadRequest("The form must be encoded in UTF-8.")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("The Content-Length header is not a number.") from None
    if declared > MAX_BODY_BYTES:
        raise BadRequest(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The form is not valid UTF-8 form encoding.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRequest(f"The {name[:40]} parameter is given more than once.")
        fields[name] = value
    return fields


def _unauthorised(challenge: str) -> HttpResponse:
    body = {"error": "invalid_token"}
    if 'error="insufficient_scope"' in challenge:
        body = {"error": "insufficient_scope"}
    elif "error=" not in challenge:
        body = {"error": "invalid_request", "error_description": "Authenticate with a bearer key."}
    response = _json(401, body)
    response["WWW-Authenticate"] = challenge
    return response


def _json(status: int, payload: dict) -> HttpResponse:
    return _no_store(
        HttpResponse(json.dumps(payload).encode(), status=status, content_type="application/json")
    )


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    # What XFrameOptionsMiddleware would add: introspection_fast_path answers without it.
    response["X-Frame-Options"] = "DENY"
    return response


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
