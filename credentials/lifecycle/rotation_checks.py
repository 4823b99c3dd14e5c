"""Guided rotations: the steps where the portal checks something itself.

*Activity* (the new version used, the old one quiet since the step before), *proof of
possession* (a signature over the rotation's challenge by the new public key) and the *test
event* (a signed ``test.ping`` to the endpoint, passing only on a 2xx answer). A check that
fails is logged and audited (``rotation.check_failed``) and leaves the rotation on its step;
one that passes moves it on. The same locks and step checks as every rotation step apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .. import crypto, playbooks, usage
from ..audit import Actor
from ..models import DeliveryReceipt, Rotation
from .common import _iso
from .rotations import _advance, _ago, _audit, _clock, _lock_at, _log


@dataclass(frozen=True)
class Finding:
    """What a check found: whether it passed, and the facts the log and the page show."""

    passed: bool
    summary: str
    facts: dict = field(default_factory=dict)


def rotation_check_activity(
    *, actor: Actor, rotation: Rotation, step: int, proceed_anyway: bool = False
) -> Finding:
    """Record the activity check: passes when the new version was used and the old one has
    been quiet since the step before. ``proceed_anyway`` moves on without that, logged as so."""
    with transaction.atomic():
        rotation, current = _lock_at(rotation, step, playbooks.CHECK, check=playbooks.ACTIVITY)
        finding = activity_finding(rotation, now=timezone.now())
        if finding.passed or proceed_anyway:
            note = "" if finding.passed else " Continued without that, on purpose."
            _log(rotation, actor, "done", finding.summary + note, facts=finding.facts)
            _advance(rotation, actor, current, {"passed": finding.passed})
        else:
            _fail(rotation, actor, current, finding)
    return finding


def rotation_check_possession(
    *, actor: Actor, rotation: Rotation, step: int, signature: str
) -> Finding:
    """Verify a signature over the rotation's challenge with the new public key. On success
    the challenge is spent and the rotation moves on; a failure is logged (never the
    signature itself) and the same challenge stays on show."""
    with transaction.atomic():
        rotation, current = _lock_at(rotation, step, playbooks.CHECK, check=playbooks.POSSESSION)
        new = rotation.new_version
        others = tuple(
            pem
            for pem in rotation.credential.versions.exclude(pk=new.pk).values_list(
                "public_key_pem", flat=True
            )
            if pem
        )
        try:
            scheme = crypto.verify_possession(
                public_key_pem=new.public_key_pem,
                challenge=rotation.challenge,
                signature=signature,
                earlier_challenges=tuple(rotation.earlier_challenges),
                other_public_keys=others,
            )
        except crypto.SignatureRefused as refused:
            finding = Finding(False, str(refused), {"reason": refused.reason})
            _fail(rotation, actor, current, finding)
            return finding
        finding = Finding(True, f"The new key signed the challenge ({scheme}).", {"scheme": scheme})
        rotation.earlier_challenges = [*rotation.earlier_challenges, rotation.challenge][-10:]
        rotation.challenge = ""
        _log(rotation, actor, "done", finding.summary, facts=finding.facts)
        _advance(rotation, actor, current, {"scheme": scheme})
    return finding


def rotation_test_event(
    *, actor: Actor, rotation: Rotation, step: int, send: Callable[[], DeliveryReceipt]
) -> tuple[Finding, DeliveryReceipt]:
    """Send a test event with ``send()`` (``webhooks.send_test_ping``, which returns its
    ``DeliveryReceipt``) and record what it found.

    The send happens outside any lock, so a slow receiver holds up nobody; the step is
    checked before and again after it. Passes only on a 2xx status. Returns the finding and the
    receipt, for the page.
    """
    with transaction.atomic():
        _lock_at(rotation, step, playbooks.CHECK, check=playbooks.TEST_EVENT)
    receipt = send()
    facts = receipt_facts(receipt)
    status = facts["status"]
    passed = receipt.succeeded
    summary = (
        f"The endpoint answered {status} in {facts.get('latency_ms')} ms: authentication passed."
        if passed
        else f"The test event failed: {facts.get('error') or f'status {status}'}."
    )
    finding = Finding(passed, summary, facts)
    with transaction.atomic():
        rotation, current = _lock_at(rotation, step, playbooks.CHECK, check=playbooks.TEST_EVENT)
        if passed:
            _log(rotation, actor, "done", summary, facts=facts)
            _advance(rotation, actor, current, {"status": status})
        else:
            _fail(rotation, actor, current, finding)
    return finding, receipt


def activity_finding(rotation: Rotation, *, now: datetime) -> Finding:
    """New version used at all, old version quiet since the current step began."""
    since = rotation.step_started_at
    new, old = rotation.new_version, rotation.old_version
    for version in (new, old):
        if version is not None:
            version.refresh_from_db(fields=["last_used_at", "use_count", "state"])
    # Uses counted in the cache and not yet written count too: the row may be a minute behind.
    new_last = usage.latest_use(new) if new is not None else None
    old_last = usage.latest_use(old) if old is not None else None
    new_used = new_last is not None
    old_quiet = old is None or old_last is None or old_last < since
    parts = [
        f"New version: last used {_when(new_last, now)}." if new else "No new version.",
        f"Old version: last used {_when(old_last, now)}." if old else "No old version.",
    ]
    if not new_used:
        parts.append("The new version has not been used yet.")
    if not old_quiet:
        parts.append(f"The old version was used since {_clock(since)}.")
    return Finding(new_used and old_quiet, " ".join(parts), {
        "new_last_used": _iso(new_last),
        "old_last_used": _iso(old_last),
        "since": _iso(since),
    })  # fmt: skip


def receipt_facts(receipt) -> dict:
    """The loggable facts of a test event's ``DeliveryReceipt``: status, latency, error and the
    versions that signed. Never the response body (the page shows an excerpt; the log not)."""
    return {
        "receipt": receipt.pk,
        "status": receipt.status_code,
        "latency_ms": receipt.latency_ms,
        "error": crypto.redact(receipt.error or "")[:300],
        "signed_versions": sorted(receipt.signed_versions),
    }


def _fail(rotation: Rotation, actor: Actor, step: playbooks.Step, finding: Finding) -> None:
    _log(rotation, actor, "failed", finding.summary, facts=finding.facts)
    rotation.save(update_fields=["log"])
    _audit(rotation, actor, "rotation.check_failed", {"step": step.key, **finding.facts})


def _when(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{_ago(now - moment)} ago ({_clock(moment)})"
