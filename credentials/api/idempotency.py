"""``Idempotency-Key`` for every POST of the management API: a retried request is answered
with the original response, and never acts twice.

A key (1 to 255 visible ASCII characters) belongs to the calling management key and lives 24
hours. The first request claims it in a transaction of its own (so a concurrent duplicate sees
it in flight and gets 409), then runs the operation and stores its response in one
transaction: the change and the stored answer commit together, or neither does. A replay of
the same method, path and body gets the stored status and body back, with
``Idempotency-Replayed: true``; the same key with another request is a 422.

The stored response may carry a newly minted secret (a rotation's answer), so it is encrypted
with ``crypto.encrypt`` under ``PORTAL_ENCRYPTION_KEYS``, bound to its row, caller and request,
and deleted after 24 hours by ``prune``. This is the only place a secret outlives the response
that shows it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import crypto
from ..models import IdempotencyRecord
from .problems import Problem, known_error

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
# A claim whose request has not finished after this long died with its process: its
# transaction rolled back, so nothing was changed and the key can be claimed again.
_ABANDONED_AFTER = timedelta(minutes=5)
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")

OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": True,
    "description": "1 to 255 visible ASCII characters, unique per request you mean, kept 24 "
    "hours. A retry with the same key and the same request gets the first answer back.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"},
}


def idempotent(handler):
    """Decorate a POST handler that returns an ``HttpResponse`` (after authentication)."""

    @functools.wraps(handler)
    @sensitive_variables("response", "stored")
    def wrapped(request: HttpRequest, *args, **kwargs):
        key = _key_from(request)
        request_hash = _request_hash(request)
        record, replay = _claim(request.auth.version, key, request_hash)
        if replay is not None:
            return replay
        try:
            with transaction.atomic():
                try:
                    response = handler(request, *args, **kwargs)
                except Exception as error:
                    # A refusal is an answer like any other: stored, and replayed as such.
                    response = known_error(request, error)
                    if response is None:
                        raise
                if response.status_code >= 500:
                    raise _DoNotStore(response)
                _complete(record, response)
        except _DoNotStore as failure:
            _release(record)
            return failure.response
        except BaseException:
            _release(record)
            raise
        return response

    wrapped.idempotent = True
    return wrapped


class _DoNotStore(Exception):
    """A 5xx: roll the operation back and let the client retry with the same key."""

    def __init__(self, response: HttpResponse):
        self.response = response


def _key_from(request: HttpRequest) -> str:
    key = request.headers.get(HEADER)
    if key is None:
        raise Problem(
            "idempotency-key-missing",
            f"Send an {HEADER} header with every POST, so a retry can never act twice.",
        )
    if not _KEY_RE.fullmatch(key):
        raise Problem(
            "idempotency-key-invalid",
            f"The {HEADER} must be 1 to 255 visible ASCII characters (no spaces).",
        )
    if crypto.looks_secret(key):
        raise Problem(
            "idempotency-key-invalid",
            f"The {HEADER} looks like a secret. Use a random value, never a secret.",
        )
    return key


def _request_hash(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _claim(caller, key: str, request_hash: str) -> tuple[IdempotencyRecord, HttpResponse | None]:
    """Claim ``key`` for this request, or return the answer an earlier request left."""
    now = timezone.now()
    for _ in range(3):  # a claim can vanish (expired, released) between our two statements
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    caller=caller,
                    key=key,
                    request_hash=request_hash,
                    claim=secrets.token_hex(16),
                    created_at=now,
                )
            return record, None
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
        if record is None:
            continue
        expired = record.created_at <= now - RETENTION
        abandoned = record.completed_at is None and record.created_at <= now - _ABANDONED_AFTER
        if expired or abandoned:
            # Conditional on the row as we read it: of two requests racing to reuse the key,
            # one deletes and claims, the other finds the new claim on its next turn.
            IdempotencyRecord.objects.filter(pk=record.pk, claim=record.claim).delete()
            continue
        if record.request_hash != request_hash:
            raise Problem(
                "idempotency-key-reused",
                f"This {HEADER} was used for a different request in the last 24 hours. Use a "
                "new key for a new request.",
            )
        if record.completed_at is None:
            raise Problem(
                "idempotency-in-flight",
                "The first request with this key is still being processed; retry shortly.",
                headers={"Retry-After": "1"},
            )
        return record, _replay(record)
    raise Problem("idempotency-in-flight", "This key is contended; retry shortly.")


@sensitive_variables("stored", "payload")
def _complete(record: IdempotencyRecord, response: HttpResponse) -> None:
    payload = json.dumps(
        {
            "status": response.status_code,
            "content_type": response["Content-Type"],
            "body": base64.b64encode(response.content).decode("ascii"),
        }
    ).encode()
    stored = crypto.encrypt(
        payload, keyring=settings.PORTAL_ENCRYPTION_KEYS, associated_data=record.associated_data
    )
    updated = IdempotencyRecord.objects.filter(pk=record.pk, claim=record.claim).update(
        completed_at=timezone.now(), status=response.status_code, response=stored
    )
    if updated != 1:
        # Our claim was taken over as abandoned: undo the operation rather than act twice.
        raise Problem("idempotency-in-flight", "This request took too long; retry it.")


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(
        pk=record.pk, claim=record.claim, completed_at__isnull=True
    ).delete()


@sensitive_variables("payload")
def _replay(record: IdempotencyRecord) -> HttpResponse:
    try:
        payload = json.loads(
            crypto.decrypt(
                record.response,
                keyring=settings.PORTAL_ENCRYPTION_KEYS,
                associated_data=record.associated_data,
            )
        )
    except crypto.CryptoError:
        # Its key was dropped from PORTAL_ENCRYPTION_KEYS within the 24 hours (or the row was
        # tampered with). Never run the request again: it may have minted a secret already.
        raise Problem(
            "idempotency-answer-unreadable",
            "The answer to this request was stored under an encryption key that has since been "
            "retired. It may have acted; check its state, then use a new Idempotency-Key.",
        ) from None
    response = HttpResponse(
        base64.b64decode(payload["body"]),
        status=payload["status"],
        content_type=payload["content_type"],
    )
    response["Cache-Control"] = "no-store"
    response["Idempotency-Replayed"] = "true"
    return response


def prune(*, now: datetime | None = None) -> int:
    """Delete every stored response older than 24 hours; return how many. For the clock
    (``manage.py prune_idempotency``): expired rows are never replayed anyway, this removes
    the ciphertext of secrets that no one may see again."""
    cutoff = (now or timezone.now()) - RETENTION
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lte=cutoff).delete()
    return deleted
