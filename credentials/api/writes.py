"""Write operations: rotate a credential, revoke, reactivate or report a version as exposed.

Each is one call into ``credentials.lifecycle`` with the key as actor (so each is audited by
the transition itself), behind ``Idempotency-Key``. Handlers build their ``HttpResponse``
themselves so that the idempotency layer stores and replays exactly the bytes sent.
"""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.debug import sensitive_variables

from .. import lifecycle
from ..models import Credential, CredentialVersion
from . import exposures, schemas
from .auth import needs
from .idempotency import OPENAPI_PARAMETER, idempotent
from .management import api
from .reads import ERRORS, _id, find_version

WRITE_ERRORS = {**ERRORS, 409: schemas.ProblemOut}
_IDEMPOTENT = {"parameters": [OPENAPI_PARAMETER]}


def _json(schema, status: int = 200) -> HttpResponse:
    response = HttpResponse(
        schema.model_dump_json().encode(), status=status, content_type="application/json"
    )
    response["Cache-Control"] = "no-store"
    return response


@api.post(
    "/credentials/{credential_id}/rotations",
    response={201: schemas.RotationOut, **WRITE_ERRORS},
    tags=["credentials"],
    openapi_extra=_IDEMPOTENT,
    auth=needs("credentials:rotate"),
)
@idempotent
@sensitive_variables("issued", "answer")
def rotate_credential(
    request, body: schemas.RotationIn, credential_id: int = _id("The credential's id.")
):
    """Make a new version; the old one retires for the overlap (or is revoked at once with 0).

    The answer holds the new secret. It is shown once: a retry with the same Idempotency-Key
    and body within 24 hours gets the same answer back, nothing else ever shows it again.
    """
    credential = get_object_or_404(Credential, pk=credential_id)
    issued = lifecycle.credential_rotate(
        actor=request.auth.actor,
        credential=credential,
        overlap_seconds=body.overlap_seconds,
        public_key_pem=body.public_key_pem,
    )
    previous = (
        CredentialVersion.objects.filter(credential=credential, number__lt=issued.version.number)
        .order_by("-number")
        .first()
    )
    answer = schemas.RotationOut(
        version=schemas.VersionOut.model_validate(issued.version),
        previous_version=schemas.VersionOut.model_validate(previous) if previous else None,
        secret=issued.plaintext,
    )
    return _json(answer, 201)


@api.post(
    "/credentials/{credential_id}/versions/{number}/revoke",
    response={200: schemas.VersionOut, **WRITE_ERRORS},
    tags=["credentials"],
    openapi_extra=_IDEMPOTENT,
    auth=needs("credentials:revoke"),
)
@idempotent
def revoke_version(
    request,
    body: schemas.RevokeIn,
    credential_id: int = _id("The credential's id."),
    number: int = _id("The version number."),
):
    """Stop a version verifying at once. Undoable for the reactivation window."""
    version = lifecycle.version_revoke(
        actor=request.auth.actor,
        version=find_version(credential_id, number),
        reason=body.reason,
        note=body.note,
    )
    return _json(schemas.VersionOut.model_validate(version))


@api.post(
    "/credentials/{credential_id}/versions/{number}/reactivate",
    response={200: schemas.VersionOut, **WRITE_ERRORS},
    tags=["credentials"],
    openapi_extra=_IDEMPOTENT,
    auth=needs("credentials:revoke"),
)
@idempotent
def reactivate_version(
    request,
    credential_id: int = _id("The credential's id."),
    number: int = _id("The version number."),
):
    """Undo a revoke inside its window (never for an exposed version)."""
    version = lifecycle.version_reactivate(
        actor=request.auth.actor, version=find_version(credential_id, number)
    )
    return _json(schemas.VersionOut.model_validate(version))


@api.post(
    "/credentials/{credential_id}/versions/{number}/exposure",
    response={200: schemas.VersionOut, **WRITE_ERRORS},
    tags=["exposures"],
    openapi_extra=_IDEMPOTENT,
    auth=needs("exposures:report"),
)
@idempotent
def report_exposure(
    request,
    body: schemas.ExposureIn,
    credential_id: int = _id("The credential's id."),
    number: int = _id("The version number."),
):
    """Report a version as leaked: revoked for good, and an exposure rotation begins."""
    version = find_version(credential_id, number)
    version = exposures.handle_exposure(actor=request.auth.actor, version=version, note=body.note)
    return _json(schemas.VersionOut.model_validate(version))
