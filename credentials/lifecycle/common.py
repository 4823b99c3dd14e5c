"""Errors, the result type and the checks and locks every transition shares."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils import timezone

from .. import crypto
from ..models import (
    SCOPES,
    App,
    Credential,
    CredentialVersion,
    Kind,
)
from ..webhooks.sender import refusal

MAX_OVERLAP_SECONDS = 30 * 24 * 3600


MAX_NOTE_LENGTH = 2000


class LifecycleError(Exception):
    """Base of the errors a transition raises; ``str(error)`` is fit to show a person."""


class TransitionRefused(LifecycleError):
    """The state machine does not allow this change now."""


class InvalidRequest(LifecycleError):
    """The request itself is malformed (unknown reason, bad scope, missing note...)."""


@dataclass(frozen=True)
class Issued:
    """A new version and, for generated secrets, its plaintext: shown once, then dropped."""

    version: CredentialVersion
    plaintext: str | None = field(default=None, repr=False)

    @property
    def credential(self) -> Credential:
        return self.version.credential


def _apply(instance, **values) -> dict:
    """Set the values that differ; return {field: {"from": old, "to": new}} for the audit."""
    changes = {}
    for field_name, new in values.items():
        old = getattr(instance, field_name)
        if old != new:
            changes[field_name] = {"from": old, "to": new}
            setattr(instance, field_name, new)
    return changes


def _check_email(address: str) -> None:
    try:
        validate_email(address)
    except ValidationError:
        raise InvalidRequest("Enter a valid contact email address.") from None


def _check_lifetime(days: int | None) -> None:
    if days is not None and not 1 <= days <= settings.PORTAL_MAX_LIFETIME_DAYS:
        raise InvalidRequest(
            f"Lifetime must be between 1 and {settings.PORTAL_MAX_LIFETIME_DAYS} days."
        )


_url_validator = URLValidator(schemes=["https", "http"])


def check_endpoint_url(url: str) -> None:
    """Raise InvalidRequest unless ``url`` is an http(s) URL of at most 2048 characters.

    A literal non-public address (``http://10.0.0.5/``) is refused here already, unless
    PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS is on; host names are judged when each delivery is
    sent, on the address they resolve to then (a name can change where it points).
    """
    if len(url) > 2048:
        raise InvalidRequest("The endpoint URL is longer than 2048 characters.")
    try:
        _url_validator(url)
    except ValidationError:
        raise InvalidRequest("Enter a full http:// or https:// URL for the endpoint.") from None
    if "@" in urlsplit(url).netloc:
        raise InvalidRequest(
            "Leave user names and passwords out of the URL: the signing secret authenticates "
            "Keyturn's events."
        )
    _refuse_secret("URL", url)
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    why = refusal(address)
    if why and not settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS:
        raise InvalidRequest(
            f"{host} is {why}. Keyturn delivers events only to public internet addresses."
        )


def _lock_app(app: App) -> App:
    app = App.objects.select_for_update().get(pk=app.pk)
    if app.archived_at is not None:
        raise TransitionRefused(f"{app.name} is archived; it cannot get new credentials.")
    return app


def _lock_credential(credential: Credential) -> Credential:
    # Every transition locks the credential row first: the one lock order that keeps two
    # processes rotating and revoking the same credential from deadlocking or interleaving.
    return (
        Credential.objects.select_for_update(of=("self",))
        .select_related("app")
        .get(pk=credential.pk)
    )


def _lock_version(version: CredentialVersion) -> CredentialVersion:
    return (
        CredentialVersion.objects.select_for_update(of=("self",))
        .select_related("credential")
        .get(pk=version.pk)
    )


def _required_text(label: str, value: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidRequest(f"Enter a {label}.")
    if len(value) > limit:
        raise InvalidRequest(f"Keep the {label} under {limit} characters.")
    _refuse_secret(label, value)
    return value


def _refuse_secret(label: str, value: str) -> None:
    if crypto.looks_secret(value):
        raise InvalidRequest(
            f"The {label} contains something shaped like a secret or a private key. Never put "
            "a secret there; if it is a real one, treat it as exposed."
        )


def free_text(value: str, limit: int = 2000) -> str:
    """A note or description: trimmed, capped, and with anything secret-shaped redacted, so
    that mentioning a leaked value never blocks the revoke it explains."""
    value = crypto.redact((value or "").strip())
    if len(value) > limit:
        raise InvalidRequest(f"Keep the text under {limit} characters.")
    return value


def _valid_scopes(kind: str, scopes) -> list[str]:
    scopes = list(dict.fromkeys(scopes or ()))
    if scopes and kind == Kind.ENDPOINT_SECRET:
        raise InvalidRequest("Endpoint signing secrets do not carry scopes.")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise InvalidRequest(f"Unknown scope: {', '.join(map(str, unknown))}.")
    return scopes


def _check_overlap(seconds: int) -> None:
    if not isinstance(seconds, int) or not 0 <= seconds <= MAX_OVERLAP_SECONDS:
        raise InvalidRequest("The overlap must be between 0 seconds and 30 days.")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _clock(moment: datetime | None) -> str:
    if moment is None:
        return "the moment of the revoke"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def check_credential_policy(
    *, kind: str, name: str, scopes, lifetime_days: int | None, overlap_seconds: int
) -> tuple[str, list[str]]:
    """Validate a credential's name and policy as the lifecycle will; return (name, scopes).

    For forms, so a refusal is a form error on the field, before anything is saved.
    """
    name = _required_text("name", name, 120)
    scopes = _valid_scopes(kind, scopes)
    _check_lifetime(lifetime_days)
    _check_overlap(overlap_seconds)
    return name, scopes
