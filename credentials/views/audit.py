"""Pages for auditors: a credential's timeline and the CSV export of the audit log."""

import csv
import json

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from .. import audit, crypto, selectors
from ..admin.access import object_for
from ..audit import Actor
from ..models import Credential
from . import render_admin
from .reveal import credential_url


def credential_history_view(request, object_id):
    """The audit events about one credential and its versions, a page at a time, oldest first
    within a page; ``?before=SEQ`` goes back in time."""
    credential = object_for(
        request, Credential, object_id, perm="credentials.view_audit",
        queryset=Credential.objects.select_related("app"),
    )  # fmt: skip
    raw = request.GET.get("before", "")
    before = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    page = selectors.timeline_page(credential, before=before)
    return render_admin(
        request,
        "admin/credentials/credential/history.html",
        {
            "credential": credential,
            "events": page.events,
            "older_than": page.older_than,
            "paged": before is not None,
            "credential_url": credential_url(credential),
        },
        title=f"Timeline of {credential.name}",
    )


_CSV_COLUMNS = (
    "seq", "created_at", "actor_type", "actor_id", "actor_label", "ip", "user_agent", "action",
    "target_type", "target_id", "target_label", "app_id", "credential_id", "details",
    "prev_hash", "hash",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a streaming body."""

    def write(self, value):
        return value


def _cell(value):
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True)
    elif value is None:
        return ""
    else:
        value = str(value)
    # A spreadsheet would run a cell starting like a formula; an apostrophe keeps it text.
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(request, queryset):
    """Stream ``queryset`` as CSV, oldest first, in bounded memory. The export is audited."""
    with transaction.atomic():
        audit.append(
            actor=Actor.for_user(request.user, request),
            action="audit.exported",
            target=request.user,
            details={"filters": crypto.redact(request.GET.urlencode())[:1000]},
        )
    writer = csv.writer(_Echo())
    rows = queryset.order_by("seq").values_list(*_CSV_COLUMNS).iterator(chunk_size=2000)

    def lines():
        yield writer.writerow(_CSV_COLUMNS)
        for row in rows:
            yield writer.writerow([_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="keyturn-audit-{stamp}.csv"'
    add_never_cache_headers(response)
    return response
