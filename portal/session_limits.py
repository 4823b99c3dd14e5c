"""Signed-in sessions end after a spell without activity and after a fixed lifetime.

``PORTAL_SESSION_IDLE_MINUTES`` (30 by default) ends a session nobody used for that long;
``PORTAL_SESSION_MAX_HOURS`` (12) ends any session that long after its sign-in, however busy.
Both are enforced here, on the server, from two timestamps kept in the session itself, so a
stolen cookie stops working on the same schedule as the browser it came from. The person is
signed out, the audit trail says why, and the sign-in page they land on says so too.
"""

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone

from credentials import audit
from credentials.audit import Actor

SIGNED_IN_AT = "_keyturn_signed_in_at"
SEEN_AT = "_keyturn_seen_at"
# Requests a page makes on its own (rotation.js refreshing its activity panel) send this
# header: they are not a person's activity, so they must not keep an idle session alive.
BACKGROUND_HEADER = "Keyturn-Background"
# The last-seen time is written at most this often, so a busy person does not cost a session
# write per request; an idle session may so end up to this much before the full idle time.
SEEN_RESOLUTION_SECONDS = 60


def _now() -> int:
    return int(timezone.now().timestamp())


def _stamped(session) -> bool:
    return isinstance(session.get(SIGNED_IN_AT), int) and isinstance(session.get(SEEN_AT), int)


def _stamp(session, now: int) -> None:
    session[SIGNED_IN_AT] = now
    session[SEEN_AT] = now


def expiry_reason(session, now: int) -> str | None:
    """``"idle"``, ``"lifetime"`` or None: whether a signed-in session has run out, and why.

    A session without its timestamps has not run out: the middleware stamps it instead."""
    if not _stamped(session):
        return None
    if now - session[SIGNED_IN_AT] >= settings.PORTAL_SESSION_MAX_HOURS * 3600:
        return "lifetime"
    if now - session[SEEN_AT] >= settings.PORTAL_SESSION_IDLE_MINUTES * 60:
        return "idle"
    return None


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


def _message(reason: str) -> str:
    if reason == "idle":
        idle = _count(settings.PORTAL_SESSION_IDLE_MINUTES, "minute")
        return f"You were signed out after {idle} without activity. Sign in again to continue."
    lifetime = _count(settings.PORTAL_SESSION_MAX_HOURS, "hour")
    return (
        f"You were signed out because your session reached its limit of {lifetime}. "
        "Sign in again to continue."
    )


def _sign_out(request, reason: str) -> None:
    # request.user is a lazy wrapper (and may be wrapped again): record the user row itself.
    user = get_user_model()._default_manager.get(pk=request.user.pk)
    # The audit event and the end of the session commit together: no audit, no sign-out, and
    # a failure here is an error page, never a session that goes on.
    with transaction.atomic():
        audit.append(
            actor=Actor.for_user(user, request),
            action="user.session_expired",
            target=user,
            details={"reason": reason},
        )
        auth.logout(request)
    messages.warning(request, _message(reason))


def _treat_as_signed_out(request) -> None:
    # A background request cannot show the message, so it leaves the session for the next
    # page the person opens to end (with the message); it is refused like a signed-out one.
    anonymous = AnonymousUser()
    request.user = anonymous

    async def auser():
        return anonymous

    request.auser = auser


class SessionLimitsMiddleware:
    """Ends signed-in sessions that were idle too long or are too old. Must come after
    AuthenticationMiddleware and MessageMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Only a request that brings a session cookie can be signed in: the API's bearer-key
        # calls never load a session here.
        if settings.SESSION_COOKIE_NAME in request.COOKIES and request.user.is_authenticated:
            self._check(request)
        response = self.get_response(request)
        # A sign-in made by this very request (the sign-in form's POST, which changes the
        # session) starts both clocks.
        session = request.session
        if session.modified and request.user.is_authenticated and not _stamped(session):
            _stamp(session, _now())
        return response

    def _check(self, request) -> None:
        now = _now()
        session = request.session
        background = BACKGROUND_HEADER in request.headers
        reason = expiry_reason(session, now)
        if reason and background:
            _treat_as_signed_out(request)
        elif reason:
            _sign_out(request, reason)
        elif not _stamped(session):
            # Signed in some other way than through this middleware (a session from before it
            # was deployed): the clocks start now.
            _stamp(session, now)
        elif not background and now - session[SEEN_AT] >= SEEN_RESOLUTION_SECONDS:
            session[SEEN_AT] = now
