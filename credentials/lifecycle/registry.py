"""Apps, endpoints and credential policy: the descriptive side of the lifecycle."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import audit
from ..audit import Actor
from ..models import (
    App,
    Credential,
    Endpoint,
    Kind,
)
from .common import (
    Issued,
    TransitionRefused,
    _apply,
    _check_email,
    _check_lifetime,
    _check_overlap,
    _lock_app,
    _lock_credential,
    _required_text,
    _valid_scopes,
    check_endpoint_url,
    free_text,
)
from .versions import credential_issue


def app_create(
    *, actor: Actor, name: str, owner_team: str, contact_email: str, description: str = ""
) -> App:
    """Register an integration. Audited as ``app.created``."""
    name, owner_team = (
        _required_text("name", name, 120),
        _required_text("owner team", owner_team, 120),
    )
    _check_email(contact_email)
    description = free_text(description, 5000)
    with transaction.atomic():
        app = App.objects.create(
            name=name, owner_team=owner_team, contact_email=contact_email, description=description
        )
        audit.append(
            actor=actor,
            action="app.created",
            target=app,
            app_id=app.pk,
            details={"client_id": app.client_id, "owner_team": owner_team},
        )
    return app


def app_update(
    *, actor: Actor, app: App, name: str, owner_team: str, contact_email: str, description: str = ""
) -> App:
    """Change an app's descriptive fields. Audited as ``app.updated`` with the changed fields."""
    name, owner_team = (
        _required_text("name", name, 120),
        _required_text("owner team", owner_team, 120),
    )
    _check_email(contact_email)
    description = free_text(description, 5000)
    with transaction.atomic():
        app = App.objects.select_for_update().get(pk=app.pk)
        changes = _apply(
            app,
            name=name,
            owner_team=owner_team,
            contact_email=contact_email,
            description=description,
        )
        if changes:
            app.save(update_fields=list(changes))
            audit.append(
                actor=actor, action="app.updated", target=app, app_id=app.pk, details=changes
            )
    return app


def app_archive(*, actor: Actor, app: App) -> App:
    """Archive an app: no new credentials or rotations; existing versions keep their state.

    Archiving does not revoke anything, so it can never cause an outage by itself; revoke the
    app's versions first if it should stop working. Audited as ``app.archived``.
    """
    with transaction.atomic():
        app = App.objects.select_for_update().get(pk=app.pk)
        if app.archived_at is not None:
            raise TransitionRefused(f"{app.name} is already archived.")
        app.archived_at = timezone.now()
        app.save(update_fields=["archived_at"])
        audit.append(actor=actor, action="app.archived", target=app, app_id=app.pk)
    return app


@sensitive_variables("issued")
def endpoint_create(
    *,
    actor: Actor,
    app: App,
    url: str,
    event_types: list[str] | tuple[str, ...] = (),
    name: str = "",
) -> Issued:
    """Add a webhook endpoint together with its signing-secret credential and first version.

    Both rows commit together, so an endpoint never exists without its one secret.
    """
    check_endpoint_url(url)
    with transaction.atomic():
        app = _lock_app(app)
        endpoint = Endpoint.objects.create(app=app, url=url, event_types=list(event_types))
        audit.append(
            actor=actor,
            action="endpoint.created",
            target=endpoint,
            app_id=app.pk,
            details={"url": url, "event_types": list(event_types)},
        )
        issued = credential_issue(
            actor=actor,
            app=app,
            kind=Kind.ENDPOINT_SECRET,
            name=(name.strip() or f"Signing secret for {url}")[:120],
            endpoint=endpoint,
        )
    return issued


def endpoint_update(
    *, actor: Actor, endpoint: Endpoint, url: str, event_types, enabled: bool
) -> Endpoint:
    """Change where an endpoint receives events and which. Audited as ``endpoint.updated``.

    Enabling a disabled endpoint clears its run of failures, so it gets a fresh start.
    """
    check_endpoint_url(url)
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        changes = _apply(endpoint, url=url, event_types=list(event_types), enabled=bool(enabled))
        if changes:
            fields = list(changes)
            if enabled and "enabled" in changes:
                endpoint.consecutive_failures, endpoint.disabled_reason = 0, ""
                fields += ["consecutive_failures", "disabled_reason"]
            endpoint.save(update_fields=fields)
            audit.append(
                actor=actor,
                action="endpoint.updated",
                target=endpoint,
                app_id=endpoint.app_id,
                details=changes,
            )
    return endpoint


def credential_update(
    *,
    actor: Actor,
    credential: Credential,
    name: str,
    scopes,
    lifetime_days: int | None,
    overlap_seconds: int,
) -> Credential:
    """Change a credential's policy. Applies to versions made from now on; audited."""
    name = _required_text("name", name, 120)
    scopes = _valid_scopes(credential.kind, scopes)
    _check_lifetime(lifetime_days)
    _check_overlap(overlap_seconds)
    with transaction.atomic():
        credential = _lock_credential(credential)
        changes = _apply(
            credential,
            name=name,
            scopes=scopes,
            lifetime_days=lifetime_days,
            overlap_seconds=overlap_seconds,
        )
        if changes:
            credential.save(update_fields=list(changes))
            audit.append(
                actor=actor,
                action="credential.updated",
                target=credential,
                app_id=credential.app_id,
                credential_id=credential.pk,
                details=changes,
            )
    return credential
