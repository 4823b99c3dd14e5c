"""Signing in to the portal: the second-factor gate, the sign-in record, and the hooks
django-axes calls.

``TwoFactorMiddleware`` keeps a session that passed the password but not the second factor
inside the verify or enrol page (and logout): no other admin page, not even a reveal URL,
runs for it. Each sign-in is recorded in the audit trail once, when the session gets in
(``note_sign_in``). The rest is what ``settings`` names for axes: the client address
(REMOTE_ADDR alone), the lockout page, and the audit record when a lock begins.
"""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.signals import user_locked_out
from django.contrib import admin
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from . import crypto
from .audit import Actor
from .lifecycle import lockout
from .lifecycle.two_factor import second_factor_step, sign_in_record
from .models import AuditEvent

# What a session still owing its second factor may open, by what it owes.
_OPEN_WHILE = {
    "verify": {"two_factor_verify", "logout", "login"},
    "enrol": {"two_factor_enrol", "logout", "login"},
}


class TwoFactorMiddleware:
    """Send a signed-in but unverified session to its verify or enrol page (after
    django-otp's OTPMiddleware, which tells whether the session is verified)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or "admin" not in match.namespaces:
            return None  # the API authenticates with keys, never with a session
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        step = second_factor_step(user)
        if step is None or match.url_name in _OPEN_WHILE[step]:
            return None
        target = reverse(f"admin:two_factor_{step}")
        if request.method in ("GET", "HEAD"):
            # Back to the page asked for once verified; a form post is never replayed.
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)


def safe_next(request, default: str) -> str:
    """The ``next`` the sign-in pages carry, if it stays on this site; else ``default``."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if wanted and allowed else default


def client_ip(request) -> str | None:
    """The address lockouts count by: REMOTE_ADDR, never a header the client could set. Behind
    a trusted reverse proxy, middleware rewrites REMOTE_ADDR before this is read."""
    return request.META.get("REMOTE_ADDR") or None


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out sign-in gets: 429, in the admin's look, saying for how long."""
    cool_off = get_cool_off(request)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed sign-ins",
        "cool_off_minutes": minutes,
        "failure_limit": get_failure_limit(request, credentials),
    }
    return render(request, "admin/keyturn/locked_out.html", context, status=429)


def record_failed_code(request, username: str) -> bool:
    """Count a wrong second-factor code as a failed sign-in (axes listens for Django's
    ``user_login_failed``). True if that failure locked the account or address."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
    return bool(getattr(request, "axes_locked_out", False))


def is_locked_out(request, username: str) -> bool:
    """True while the username or the client's address is locked out."""
    return not AxesProxyHandler.is_allowed(request, {"username": username})


# Set in a session once its sign-in is in the audit trail. It lives as long as that person's
# session: signing out, or in as someone else, starts a new one (Django flushes it), while a
# session that gets its second factor back after a reset, or in which the same person types
# the password again, is not signing in again.
_SIGN_IN_RECORDED = "_keyturn_sign_in_recorded"


def note_sign_in(request, user, *, second_factor: str | None) -> None:
    """Record the sign-in of ``request``'s session, unless it is recorded already: at the
    password when no second factor is owed, else when the code is accepted (the two-factor
    pages call this after every accepted code; only a session's first counts)."""
    session = getattr(request, "session", None)
    if session is not None and session.get(_SIGN_IN_RECORDED):
        return
    sign_in_record(actor=Actor.for_user(user, request), user=user, second_factor=second_factor)
    if session is not None:
        session[_SIGN_IN_RECORDED] = True


@receiver(user_logged_in, dispatch_uid="keyturn.signin.note_password_sign_in")
def _note_password_sign_in(sender, request, user, **kwargs):
    # A sign-in that owes a second factor is not in yet: the verify or enrol page notes it.
    if second_factor_step(user) is None:
        note_sign_in(request, user, second_factor=None)


@receiver(user_locked_out)
def _audit_lockout(sender, request, username, ip_address, **kwargs):
    # Axes sends this on the failure that reaches the limit and again on every refused try
    # while locked; only the first is a new lock (the count equals the limit exactly then,
    # and stays unset for refused tries, which axes does not count).
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None or failures != get_failure_limit(request, None):
        return
    actor = Actor(
        AuditEvent.ActorType.SYSTEM,
        "",
        "sign-in lockout",
        client_ip(request),
        crypto.redact(request.META.get("HTTP_USER_AGENT", ""))[:300],
    )
    lockout.lockout_record(actor=actor, username=username, ip_address=ip_address)
