"""Every state transition in Keyturn, and the only place state changes.

Each function is keyword-only, takes the acting identity explicitly, runs in one transaction,
locks the credential row first (one lock order everywhere, so two transitions on the same
credential queue up instead of deadlocking), writes its audit event in that same transaction,
and returns what the caller needs. A generated plaintext comes back once, in ``Issued``, and is
never stored on a model instance.

A refused transition raises ``TransitionRefused``; bad input raises ``InvalidRequest``. Both
carry a message written for the person who asked, safe to show as is.
"""

from .api import api_record_read
from .common import (
    MAX_NOTE_LENGTH,
    MAX_OVERLAP_SECONDS,
    InvalidRequest,
    Issued,
    LifecycleError,
    TransitionRefused,
    check_credential_policy,
    check_endpoint_url,
)
from .registry import (
    app_archive,
    app_create,
    app_update,
    credential_update,
    endpoint_create,
    endpoint_update,
)
from .rotation_checks import rotation_check_activity, rotation_check_possession, rotation_test_event
from .rotations import (
    OldVersionInUse,
    exposure_report,
    rotation_abandon,
    rotation_back,
    rotation_confirm,
    rotation_generate,
    rotation_join,
    rotation_revoke_old,
    rotation_start,
)
from .versions import (
    credential_issue,
    credential_rotate,
    version_reactivate,
    version_record_reveal,
    version_report_exposure,
    version_revoke,
    versions_expire,
)
from .webhooks import delivery_resend, endpoint_disable, version_notify_expiring

__all__ = [
    "MAX_NOTE_LENGTH",
    "MAX_OVERLAP_SECONDS",
    "InvalidRequest",
    "Issued",
    "LifecycleError",
    "OldVersionInUse",
    "TransitionRefused",
    "api_record_read",
    "app_archive",
    "app_create",
    "app_update",
    "check_credential_policy",
    "check_endpoint_url",
    "credential_issue",
    "credential_rotate",
    "credential_update",
    "delivery_resend",
    "endpoint_create",
    "endpoint_disable",
    "endpoint_update",
    "exposure_report",
    "rotation_abandon",
    "rotation_back",
    "rotation_check_activity",
    "rotation_check_possession",
    "rotation_confirm",
    "rotation_generate",
    "rotation_join",
    "rotation_revoke_old",
    "rotation_start",
    "rotation_test_event",
    "version_notify_expiring",
    "version_reactivate",
    "version_record_reveal",
    "version_report_exposure",
    "version_revoke",
    "versions_expire",
]
