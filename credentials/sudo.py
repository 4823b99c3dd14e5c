"""Sudo mode: dangerous actions need the password (and second factor) entered recently.

Revealing, rotating, revoking, reactivating, reporting an exposure and managing users are
allowed only within ``PORTAL_SUDO_SECONDS`` of the person last proving who they are: at
sign-in, or on the confirm page (``credentials/views/confirm_identity.py``). The session keeps
only the time of that proof, never anything that was typed.

A page with a stale window sends the person to the confirm page and back. A GET comes back to
the same page; a POST does nothing and comes back to the page that starts it (the GET of its
own URL), so a show-once secret is never minted, and so never burned, by the redirect. An admin
bulk action keeps its selection (primary keys and the action's name, nothing else) in the
session and comes back to a page that asks for the click again (``SudoActions``).

The automation API (``/api/v1/``) is machine authentication and never passes through here.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_format_dict
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

SESSION_KEY = "keyturn_sudo_at"
PENDING_ACTION_KEY = "keyturn_sudo_action"
# More than this many selected rows are not carried through the confirm page: select again.
MAX_PENDING_ROWS = 500


def _now() -> float:
    return time.time()


def is_fresh(request) -> bool:
    """Whether this session proved its identity within ``PORTAL_SUDO_SECONDS``."""
    started = request.session.get(SESSION_KEY)
    if not isinstance(started, int | float):
        return False
    age = _now() - started
    # A time ahead of the clock was not written by ``start``: treat it as no proof at all.
    return -5 <= age <= settings.PORTAL_SUDO_SECONDS


def start(request) -> None:
    """Open the window now: call right after the person entered their password and code."""
    request.session[SESSION_KEY] = int(_now())


def end(request) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.pop(PENDING_ACTION_KEY, None)


def confirm_url(next_url: str) -> str:
    return f"{reverse('admin:confirm_identity')}?{urlencode({'next': next_url})}"


def safe_next(request, candidate: str | None) -> str:
    """``candidate`` if it is a path on this site (never another host or scheme), else home."""
    home = reverse("admin:index")
    if not candidate or not candidate.startswith("/") or candidate.startswith("/\\"):
        return home
    if not url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return home
    if candidate.split("?", 1)[0] == reverse("admin:confirm_identity"):
        return home  # never a loop back to the confirm page itself
    return candidate


def ask(request, *, next_url: str | None = None) -> HttpResponseRedirect:
    """Send the person to the confirm page, to come back to ``next_url`` (default: this page).

    A POST is not carried over: it comes back to its page, where the person submits again.
    """
    if request.method not in ("GET", "HEAD"):
        messages.info(request, "Nothing was done yet. Confirm it is you, then do it again.")
    return HttpResponseRedirect(confirm_url(next_url or request.get_full_path()))


def confirm_first(request) -> HttpResponseRedirect | None:
    """None if the window is open; otherwise the redirect to the confirm page.

    Views call it after their permission checks, so an outsider still gets their 404 or 403
    rather than a password prompt: ``if (asked := sudo.confirm_first(request)): return asked``.
    """
    return None if is_fresh(request) else ask(request)


@receiver(user_logged_in, dispatch_uid="keyturn.sudo.start_at_sign_in")
def _start_at_sign_in(sender, request, user, **kwargs):
    """Signing in is proving identity: the window opens then, unless a second factor was due
    and not given (a sign-in flow that asks for the code after ``login`` opens the window
    itself, by calling ``start`` once the code is verified)."""
    if request is None or not hasattr(request, "session"):
        return
    if getattr(user, "otp_device", None) is None and has_second_factor(user):
        return
    start(request)


@receiver(user_logged_out, dispatch_uid="keyturn.sudo.end_at_sign_out")
def _end_at_sign_out(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        end(request)


def has_second_factor(user) -> bool:
    from django_otp import user_has_device

    return user_has_device(user, confirmed=True)


# --------------------------------------------------------------------------- admin actions


class SudoActions:
    """ModelAdmin mixin: the actions named in ``sudo_actions`` need the window open.

    With a stale window the action does nothing: the selected primary keys and the action's
    name go into the session, and after the confirm page the person lands on a page listing
    that selection with one button that starts the action again (its own confirmation page,
    if it has one, follows). Permissions, visibility and CSRF are checked afresh on the way.
    """

    sudo_actions: frozenset[str] = frozenset()

    def get_actions(self, request):
        actions = super().get_actions(request)
        for name in self.sudo_actions & actions.keys():
            func, action_name, description = actions[name]
            actions[name] = (self._sudo_wrapped(func, action_name), action_name, description)
        return actions

    def _sudo_wrapped(self, func, action_name):
        @wraps(func)
        def wrapper(modeladmin, request, queryset):
            if is_fresh(request):
                return func(modeladmin, request, queryset)
            pks = [str(pk) for pk in queryset.values_list("pk", flat=True)[: MAX_PENDING_ROWS + 1]]
            if len(pks) > MAX_PENDING_ROWS:
                messages.warning(
                    request,
                    f"Nothing was done. Confirm it is you, then select at most "
                    f"{MAX_PENDING_ROWS} rows and try again.",
                )
                return ask(request, next_url=self._changelist_url())
            request.session[PENDING_ACTION_KEY] = {
                "model": self.model._meta.label_lower,
                "action": action_name,
                "pks": pks,
            }
            opts = self.model._meta
            resume = reverse(f"admin:{opts.app_label}_{opts.model_name}_resume_action")
            return ask(request, next_url=resume)

        return wrapper

    def _changelist_url(self) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "resume-action/",
                self.admin_site.admin_view(self.resume_action_view),
                name=f"{opts.app_label}_{opts.model_name}_resume_action",
            ),
            *super().get_urls(),
        ]

    def resume_action_view(self, request):
        """The selection an action was started on, with one button to start it again."""
        if (asked := confirm_first(request)) is not None:
            return asked
        pending = request.session.pop(PENDING_ACTION_KEY, None) or {}
        actions = self.get_actions(request)  # what this person may do now, not then
        name = pending.get("action")
        if pending.get("model") != self.model._meta.label_lower or name not in actions:
            return redirect(self._changelist_url())
        pks = [pk for pk in pending.get("pks", []) if isinstance(pk, str) and pk.isdigit()]
        selected = list(self.get_queryset(request).filter(pk__in=pks))
        if not selected:
            messages.warning(request, "None of the selected rows is there any more.")
            return redirect(self._changelist_url())
        return TemplateResponse(
            request,
            "admin/keyturn/resume_action.html",
            {
                **self.admin_site.each_context(request),
                "title": "Continue where you left off",
                "opts": self.model._meta,
                "action": name,
                "description": str(actions[name][2]) % model_format_dict(self.model._meta),
                "selected": selected,
                "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "changelist_url": self._changelist_url(),
            },
        )
