"""Pages that mint a secret and show it exactly once: issue, rotate now, add an endpoint.

The secret is rendered in the response to the POST that made it, never redirected to, never
put in a message, session or URL, with ``Cache-Control: no-store``. Re-sending the form shows
"already displayed" and the last four characters (see ``credentials/once.py``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import crypto, lifecycle, once, sudo
from ..admin.access import object_for, require
from ..audit import Actor
from ..forms import EndpointForm, IssueForm, RotateForm
from ..models import VERIFYING_STATES, Credential, CredentialVersion, Kind
from . import render_admin

STALE_FORM = (
    "This form is out of date (over an hour old) or was made for another page. Nothing was "
    "changed: check the values and submit again."
)


def credential_url(credential: Credential) -> str:
    return reverse("admin:credentials_credential_change", args=[credential.pk])


@sensitive_variables("issued")
def _mint_once(request, form, *, purpose: str, target: str, mint):
    """Claim the form's one-time token and mint, in one transaction.

    Returns ``(response, error)``: the reveal or "already displayed" response, or a message to
    show on the form (nothing was changed then).
    """
    try:
        nonce = once.check(
            form.cleaned_data["once"], user=request.user, purpose=purpose, target=target
        )
    except once.InvalidToken:
        return None, STALE_FORM
    actor = Actor.for_user(request.user, request)
    try:
        with transaction.atomic():
            claimed = once.claim(nonce, user=request.user, purpose=purpose)
            issued = mint(actor)
            once.attach(claimed, issued.version)
            if issued.plaintext is not None:
                lifecycle.version_record_reveal(
                    actor=actor, version=issued.version, channel="portal"
                )
    except once.AlreadyUsed as used:
        return already_displayed(request, used.version), None
    except lifecycle.LifecycleError as error:
        return None, str(error)
    return _reveal(request, issued), None


@sensitive_variables("issued")
def _reveal(request, issued: lifecycle.Issued):
    version = issued.version
    return render_admin(
        request,
        "admin/credentials/reveal.html",
        {
            "version": version,
            "credential": version.credential,
            "plaintext": issued.plaintext,
            "credential_url": credential_url(version.credential),
        },
        title=f"{version.credential.name}: version {version.number}",
    )


def already_displayed(request, version: CredentialVersion | None):
    """What a reload, back button or re-sent form gets: the facts, never the secret."""
    return render_admin(
        request,
        "admin/credentials/already_displayed.html",
        {
            "version": version,
            "credential_url": credential_url(version.credential) if version else None,
        },
        title="Already displayed",
        status=409,
    )


def _fresh(form_class, request, *, purpose: str, target: str, data=None, **kwargs):
    """A form carrying a new one-time token (also after a failed submission changed nothing)."""
    token = once.new_token(user=request.user, purpose=purpose, target=target)
    if data is not None:
        data = data.copy()
        data["once"] = token
        for name, value in data.items():
            if crypto.looks_secret(value):
                data[name] = ""  # never echo a pasted secret or private key back into the page
        return form_class(data, **kwargs)
    return form_class(initial={"once": token, **kwargs.pop("initial", {})}, **kwargs)


def _once_page(
    request,
    *,
    form_class,
    purpose,
    target,
    mint,
    template,
    title,
    initial=None,
    context=None,
    shape=None,
):
    """The shape every minting page shares: a form with a one-time token; on a valid POST,
    mint once and reveal; on anything else, the form again with a fresh token and the errors.

    ``mint(actor, cleaned_data)`` calls the lifecycle and returns ``lifecycle.Issued``.
    """
    if request.method == "POST":
        form = form_class(request.POST)
        error = None
        if form.is_valid():
            response, error = _mint_once(
                request, form, purpose=purpose, target=target,
                mint=lambda actor: mint(actor, form.cleaned_data),
            )  # fmt: skip
            if response is not None:
                return response
        elif "once" in form.errors:
            error = STALE_FORM
        form = _fresh(form_class, request, purpose=purpose, target=target, data=request.POST)
        form.is_valid()
        if error:
            form.add_error(None, error)
    else:
        form = _fresh(form_class, request, purpose=purpose, target=target, initial=initial or {})
    if shape is not None:
        shape(form)
    return render_admin(request, template, {"form": form, **(context or {})}, title=title)


def _hours(data) -> int:
    return int(data["overlap_hours"] * 3600)


def issue_view(request):
    """Issue a new credential (API key, client secret or service-account key)."""
    require(request, "credentials.add_credential")
    if (asked := sudo.confirm_first(request)) is not None:
        return asked

    def mint(actor, data):
        is_key = data["kind"] == Kind.SERVICE_ACCOUNT_KEY
        return lifecycle.credential_issue(
            actor=actor,
            app=data["app"],
            kind=data["kind"],
            name=data["name"],
            scopes=data["scopes"],
            lifetime_days=data["lifetime_days"],
            overlap_seconds=_hours(data),
            public_key_pem=(data["public_key"] or None) if is_key else None,
        )

    return _once_page(
        request, form_class=IssueForm, purpose="issue", target="new", mint=mint,
        template="admin/credentials/issue.html", title="Issue a credential",
        initial={"app": request.GET.get("app"), "overlap_hours": 24},
    )  # fmt: skip


def rotate_view(request, object_id):
    """Rotate now: a new version at once, the old one retiring for the overlap (or revoked)."""
    credential = object_for(
        request, Credential, object_id, perm="credentials.rotate_credential",
        queryset=Credential.objects.select_related("app"),
    )  # fmt: skip
    if (asked := sudo.confirm_first(request)) is not None:
        return asked
    is_key = credential.kind == Kind.SERVICE_ACCOUNT_KEY

    def mint(actor, data):
        return lifecycle.credential_rotate(
            actor=actor,
            credential=credential,
            overlap_seconds=_hours(data),
            public_key_pem=(data["public_key"] or None) if is_key else None,
        )

    def shape(form):
        if not is_key:
            form.fields.pop("public_key", None)

    recent = (
        credential.versions.filter(created_at__gte=timezone.now() - timedelta(hours=1))
        .order_by("-number")
        .first()
    )
    return _once_page(
        request, form_class=RotateForm, purpose="rotate", target=f"credential:{credential.pk}",
        mint=mint, template="admin/credentials/rotate.html", title=f"Rotate {credential.name}",
        initial={"overlap_hours": round(credential.overlap_seconds / 3600, 2)}, shape=shape,
        context={
            "credential": credential,
            "live_versions": credential.versions.filter(state__in=VERIFYING_STATES),
            "recent": recent,
            "next_number": (credential.versions.aggregate(top=Max("number"))["top"] or 0) + 1,
            "credential_url": credential_url(credential),
        },
    )  # fmt: skip


def endpoint_add_view(request):
    """Add a webhook endpoint; its signing secret is generated and shown once."""
    require(request, "credentials.add_endpoint")
    if (asked := sudo.confirm_first(request)) is not None:
        return asked

    def mint(actor, data):
        return lifecycle.endpoint_create(
            actor=actor, app=data["app"], url=data["url"],
            event_types=data["event_types"], name=data["name"],
        )  # fmt: skip

    return _once_page(
        request, form_class=EndpointForm, purpose="endpoint", target="new", mint=mint,
        template="admin/credentials/endpoint_add.html", title="Add an endpoint",
        initial={"app": request.GET.get("app")},
    )  # fmt: skip
