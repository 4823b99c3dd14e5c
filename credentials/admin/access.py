"""Who may see and do what, written once: outsiders get 404, read-only users get 403."""

import re

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

_ID = re.compile(r"[0-9]{1,18}", re.ASCII)


def as_id(text) -> int | None:
    """A primary key from untrusted text ("12"), or None for anything else ("1x", "²", "")."""
    text = str(text or "")
    return int(text) if _ID.fullmatch(text) else None


def object_for(request, model, pk, *, perm: str | None = None, queryset=None):
    """Fetch ``model`` ``pk`` for this user.

    Without the view permission the object does not exist for them (404); with it but
    without ``perm`` they may look but not act (403).
    """
    if not request.user.has_perm(f"credentials.view_{model._meta.model_name}"):
        raise Http404
    if as_id(pk) is None:
        raise Http404  # "1x" in a URL is a missing object, not a server error
    found = get_object_or_404(queryset if queryset is not None else model, pk=pk)
    if perm is not None and not request.user.has_perm(perm):
        raise PermissionDenied
    return found


def require(request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


class NoSaveAsNew:
    """Refuse Django's "save as new" POST flag, which the admin honours even with
    ``save_as = False``: new apps, endpoints and credentials come only from their own pages."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_saveasnew" in request.POST:
            raise PermissionDenied
        return super().changeform_view(request, object_id, form_url, extra_context)


class ReadOnly:
    """For admin pages whose rows only Keyturn's own code writes (the audit trail, versions,
    deliveries, lockouts): nobody adds, edits or deletes them through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
