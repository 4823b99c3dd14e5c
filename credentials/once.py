"""One-time form tokens: why a re-sent form never mints a second secret.

A page that mints a secret (issue, rotate, add an endpoint) puts a fresh signed token in its
form, bound to the user, the purpose and the object. The POST claims the token in the same
transaction that mints. A second POST of that form (reload, back button, double click, a
replay from another tab) finds the token claimed and is shown the version the first one made,
by its last four characters only. Two simultaneous POSTs race on a unique index: the loser
waits for the winner's commit and then sees the claim.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import CredentialVersion, OneTimeSubmission

_SALT = "keyturn.once"
MAX_AGE_SECONDS = 3600


class InvalidToken(Exception):
    """The token is forged, too old, or was made for another user, purpose or object."""


class AlreadyUsed(Exception):
    """The token was claimed before; ``version`` is what that first request made (or None)."""

    def __init__(self, submission: OneTimeSubmission):
        super().__init__("this form was already submitted")
        self.submission = submission

    @property
    def version(self) -> CredentialVersion | None:
        return self.submission.version


def new_token(*, user, purpose: str, target: str) -> str:
    """A token for one form, valid for an hour, for this user, purpose and object only."""
    payload = {"u": user.pk, "p": purpose, "t": target, "n": secrets.token_urlsafe(18)}
    return signing.dumps(payload, salt=_SALT, compress=False)


def check(token: str, *, user, purpose: str, target: str) -> str:
    """Return the token's nonce if it is genuine, fresh and meant for this form; else raise."""
    try:
        payload = signing.loads(token or "", salt=_SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        raise InvalidToken from None
    if payload.get("u") != user.pk or payload.get("p") != purpose or payload.get("t") != target:
        raise InvalidToken
    return str(payload["n"])


def claim(nonce: str, *, user, purpose: str) -> OneTimeSubmission:
    """Claim a nonce inside the caller's transaction, or raise AlreadyUsed with the first claim."""
    token_hash = hashlib.sha256(nonce.encode()).hexdigest()
    try:
        with transaction.atomic():  # a savepoint: losing the race must not poison the caller
            return OneTimeSubmission.objects.create(
                token_hash=token_hash, user=user, purpose=purpose
            )
    except IntegrityError:
        first = OneTimeSubmission.objects.select_related("version__credential").get(
            token_hash=token_hash
        )
        raise AlreadyUsed(first) from None


def attach(submission: OneTimeSubmission, version: CredentialVersion) -> None:
    """Record which version the claiming request made, for the 'already displayed' page."""
    submission.version = version
    submission.save(update_fields=["version"])


def prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete claims older than any token could be (tokens live an hour). Returns a count."""
    cutoff = timezone.now() - older_than
    deleted, _ = OneTimeSubmission.objects.filter(created_at__lt=cutoff).delete()
    return deleted
