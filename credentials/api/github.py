"""``POST /api/v1/exposures/github``: GitHub secret-scanning reports of leaked Keyturn keys.

GitHub signs each report instead of presenting a key: an ECDSA P-256 / SHA-256 signature over
the raw body, base64 DER in ``Github-Public-Key-Signature``, made with the key named by
``Github-Public-Key-Identifier``. The public keys come from ``PORTAL_GITHUB_SCANNING_KEYS``
(loaded from a file the operator saves; never fetched). The body is a JSON array of
``{token, type, url, source}``. Each token that is a Keyturn secret is handled as an exposure
(revoked for good, exposure rotation started) and answered ``true_positive``; the rest
``false_positive``. Nothing is revoked unless the signature verifies over the exact bytes.

The answer names tokens by ``token_hash`` (SHA-256), which GitHub's partner format accepts in
place of ``token_raw``: no answer of this API ever carries a secret it did not mint.
"""

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import logging

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.debug import sensitive_variables

from .. import crypto, lifecycle, ratelimit
from ..audit import Actor
from ..models import AuditEvent, CredentialVersion
from . import exposures, schemas
from .auth import check_body_size
from .management import api
from .problems import Problem

logger = logging.getLogger(__name__)

MAX_REPORT_BYTES = 256 * 1024
MAX_MATCHES = 1000
_FIELD_LIMIT = 2048

_ERRORS = {code: schemas.ProblemOut for code in (400, 401, 413, 429)}
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "maxItems": MAX_MATCHES,
                    "items": schemas.GitHubMatch.model_json_schema(),
                }
            }
        },
    },
    "parameters": [
        {"in": "header", "name": "Github-Public-Key-Identifier", "required": True,
         "schema": {"type": "string"}},
        {"in": "header", "name": "Github-Public-Key-Signature", "required": True,
         "schema": {"type": "string"}, "description": "base64 DER ECDSA P-256 signature"},
    ],
}  # fmt: skip


@api.post(
    "/exposures/github",
    auth=None,
    response={200: list[schemas.GitHubVerdict], **_ERRORS},
    tags=["exposures"],
    openapi_extra=_REQUEST_BODY,
)
@sensitive_variables("body", "matches")
def github_secret_scanning(request: HttpRequest):
    """Intake for GitHub's secret-scanning partner reports (signed by GitHub, not by a key)."""
    source = request.META.get("REMOTE_ADDR") or "unknown"
    retry_after = ratelimit.seconds_to_wait(
        f"github:{source}", settings.PORTAL_EXPOSURE_INTAKE_RATE
    )
    if retry_after:
        raise Problem(
            "rate-limited", "Too many reports from this address.",
            headers={"Retry-After": str(retry_after)},
        )  # fmt: skip
    check_body_size(request, MAX_REPORT_BYTES)
    body = request.read(MAX_REPORT_BYTES + 1)
    if len(body) > MAX_REPORT_BYTES:
        raise Problem("body-too-large", f"Keep a report under {MAX_REPORT_BYTES} bytes.")
    identifier = _verify(request, body)
    matches = _parse(body)
    actor = Actor(
        type=AuditEvent.ActorType.SYSTEM,
        id="github-secret-scanning",
        label=f"GitHub secret scanning (key {identifier[:16]})",
        ip=request.META.get("REMOTE_ADDR"),
    )
    verdicts = [_judge(match, actor) for match in matches]
    response = HttpResponse(json.dumps(verdicts).encode(), content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _verify(request: HttpRequest, body: bytes) -> str:
    identifier = request.headers.get("Github-Public-Key-Identifier", "")
    signature = request.headers.get("Github-Public-Key-Signature", "")
    if not identifier or not signature:
        raise Problem("signature-missing", "Sign the report as GitHub's partner program does.")
    pem = settings.PORTAL_GITHUB_SCANNING_KEYS.get(identifier)
    if pem is None:
        raise Problem("signature-invalid", "The signing key is not one this portal trusts.")
    try:
        der = base64.b64decode(signature, validate=True)
        _public_key(pem).verify(der, body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature, UnsupportedAlgorithm):
        raise Problem("signature-invalid", "The signature does not verify.") from None
    return "".join(ch for ch in identifier if ch.isalnum())


@functools.lru_cache(maxsize=32)
def _public_key(pem: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("GitHub's secret-scanning keys are ECDSA P-256 keys")
    return key


def _parse(body: bytes) -> list[dict]:
    try:
        matches = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem("malformed-report", "The report is not JSON.") from None
    if not isinstance(matches, list) or not 1 <= len(matches) <= MAX_MATCHES:
        raise Problem("malformed-report", f"Send a JSON array of 1 to {MAX_MATCHES} matches.")
    for match in matches:
        if not (
            isinstance(match, dict)
            and isinstance(match.get("token"), str)
            and isinstance(match.get("type"), str)
            and all(isinstance(match.get(name), str | None) for name in ("url", "source"))
            and all(
                len(value) <= _FIELD_LIMIT for value in match.values() if isinstance(value, str)
            )
        ):
            raise Problem(
                "malformed-report", "Each match needs a token and a type (strings), url and "
                "source optional.",
            )  # fmt: skip
    return matches


@sensitive_variables("match", "token")
def _judge(match: dict, actor: Actor) -> dict:
    token = match["token"]
    verdict = {
        "token_hash": hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest(),
        "token_type": match["type"][:200],
        "label": "false_positive",
    }
    version = _version_of(token)
    if version is None:
        return verdict
    verdict["label"] = "true_positive"
    note = f"Reported by GitHub secret scanning at {match.get('url') or 'an unnamed place'}."
    # Already reported as exposed: a repeated report changes nothing.
    with contextlib.suppress(lifecycle.TransitionRefused):
        exposures.handle_exposure(actor=actor, version=version, note=note[:1000])
    return verdict


@sensitive_variables("token", "digests")
def _version_of(token: str) -> CredentialVersion | None:
    """The version (in any state) whose secret ``token`` is, or None. Bearer secrets only:
    webhook signing secrets are not stored in a form a report can be matched against."""
    if not crypto.token_is_well_formed(token):
        return None
    digests = [digest for _, digest in crypto.token_digests(token, settings.PORTAL_TOKEN_HASH_KEYS)]
    for version in CredentialVersion.objects.select_related("credential").filter(
        digest__in=digests
    ):
        if version.credential.kind == crypto.token_kind(token) and any(
            crypto.digest_matches(version.digest, digest) for digest in digests
        ):
            return version
    return None
