"""The append-only, HMAC-chained audit trail.

Every change to Keyturn's state calls ``append`` inside the transaction that makes the change,
so the change and its record commit together or not at all. Appends are serialised on the
single ``AuditChainHead`` row, so concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from . import crypto
from .models import AuditChainHead, AuditEvent, ChainVerification, Credential

GENESIS_HASH = "0" * 64

# Every action Keyturn records, for the audit log's filter (a fixed list: listing the distinct
# values of a million-row column on every page load would not be).
ACTIONS = (
    "app.created", "app.updated", "app.archived",
    "endpoint.created", "endpoint.updated", "endpoint.disabled",
    "credential.issued", "credential.updated", "credential.rotated", "credential.revealed",
    "credential.revoked", "credential.reactivated", "credential.exposed", "credential.expired",
    "credential.expiring",
    "credential.reencrypted",
    "rotation.started", "rotation.resumed", "rotation.step_completed", "rotation.check_failed",
    "rotation.stepped_back", "rotation.completed", "rotation.abandoned",
    "user.created", "user.updated", "user.password_changed",
    "user.signed_in", "user.session_expired",
    "audit.exported", "audit.verified",
    "api.read",
    "webhook.test_sent", "webhook.resent",
    "user.reauthenticated", "user.deleted",
    "user.two_factor_enrolled", "user.two_factor_reset", "user.backup_codes_generated",
    "user.backup_code_used", "user.locked_out", "user.unlocked",
    "user.totp_seed_reencrypted",
    "role.created", "role.updated", "role.deleted",
)  # fmt: skip
_USER_AGENT_MAX = 300


@dataclass(frozen=True)
class Actor:
    """Who did something: a signed-in user, an API key (named by its last four) or the system."""

    type: str
    id: str
    label: str
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def for_user(cls, user, request=None) -> Actor:
        ip, agent = _request_origin(request)
        label = crypto.redact(user.get_username())
        return cls(AuditEvent.ActorType.USER, str(user.pk), label, ip, agent)

    @classmethod
    def for_api_key(cls, version, request=None) -> Actor:
        ip, agent = _request_origin(request)
        label = f"API key {version.masked} ({version.credential.name})"
        return cls(AuditEvent.ActorType.API_KEY, str(version.public_id), label, ip, agent)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, "", label)


def _request_origin(request) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    ip = request.META.get("REMOTE_ADDR") or None
    return ip, crypto.redact(request.META.get("HTTP_USER_AGENT", ""))


def _normalise_ip(ip: str | None) -> str | None:
    """The form the database hands back, so the hash computed now matches the row read later."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return clean_ipv6_address(str(address)) if address.version == 6 else str(address)


def append(
    *,
    actor: Actor,
    action: str,
    target,
    details: dict | None = None,
    app_id: int | None = None,
    credential_id: int | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction that makes the change.

    ``target`` is a saved model instance. ``details`` is a JSON object of strings, integers,
    booleans, None, lists and objects (no floats: they do not survive every database's JSON
    round trip bit for bit). Anything that looks like a secret is refused with ValueError.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.append must run inside the transaction that makes the change")
    if isinstance(target, Credential):
        # A credential's timeline reads events by credential_id alone (one index); an event
        # about the credential itself must carry it like the events about its versions do.
        if credential_id not in (None, target.pk):
            raise ValueError("credential_id must name the credential the event is about")
        credential_id = target.pk
    details = details or {}
    _check_details(details)
    target_label = str(target)[:300]
    for text in (target_label, actor.label, json.dumps(details)):
        if crypto.looks_secret(text):
            raise ValueError("refusing to write something shaped like a secret to the audit trail")

    head = _lock_head()
    event = AuditEvent(
        seq=head.seq + 1,
        created_at=timezone.now(),
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        ip=_normalise_ip(actor.ip),
        user_agent=actor.user_agent[:_USER_AGENT_MAX],
        action=action,
        target_type=type(target).__name__.lower(),
        target_id=str(target.pk),
        target_label=target_label,
        app_id=app_id,
        credential_id=credential_id,
        details=details,
        prev_hash=head.hash or GENESIS_HASH,
    )
    event.hash = event_hash(event, key=settings.PORTAL_AUDIT_KEY[1])
    event.save(force_insert=True)
    head.seq, head.hash = event.seq, event.hash
    head.save(update_fields=["seq", "hash"])
    return event


def _lock_head() -> AuditChainHead:
    """Lock the chain head row (creating it on an empty database), serialising appends."""
    try:
        return AuditChainHead.objects.select_for_update().get(pk=1)
    except AuditChainHead.DoesNotExist:
        pass
    try:
        # A savepoint, so a concurrent creator winning the race does not poison our transaction.
        with transaction.atomic():
            AuditChainHead.objects.create(pk=1, seq=0, hash=GENESIS_HASH)
    except IntegrityError:
        pass
    return AuditChainHead.objects.select_for_update().get(pk=1)


def _check_details(value, path="details") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be strings")
            _check_details(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_details(item, f"{path}[{index}]")
    elif not (value is None or isinstance(value, str | bool | int)):
        raise TypeError(f"{path}: {type(value).__name__} is not allowed in audit details")


def canonical_form(event: AuditEvent) -> bytes:
    """The bytes the chain signs for one event: every recorded field, in a fixed form."""
    payload = {
        "seq": event.seq,
        "created_at": event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "app_id": event.app_id,
        "credential_id": event.credential_id,
        "details": event.details,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")


def event_hash(event: AuditEvent, *, key: bytes) -> str:
    """HMAC-SHA256(key, prev_hash || "\\n" || canonical form) as hex."""
    message = event.prev_hash.encode("ascii") + b"\n" + canonical_form(event)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain: intact, or the first event where it breaks and why."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""


def _read_head() -> tuple[int, str]:
    head = AuditChainHead.objects.filter(pk=1).first()
    return (head.seq, head.hash or GENESIS_HASH) if head else (0, GENESIS_HASH)


def verify_chain(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the chain up to its head and check sequence, links and HMACs.

    Detects an edited, deleted, inserted or reordered row, naming the first event at which the
    chain no longer holds, and rows beyond the head that the head never recorded. Safe while
    others append: the walk stops at the head read first, and rows appended since are checked
    against a fresh read of the head. Deleting the newest events and rewinding the head
    together can only be caught against a head exported earlier (``verify_audit
    --expect-head``).
    """
    key = settings.PORTAL_AUDIT_KEY[1]
    head_seq, head_hash = _read_head()
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0

    def broken(seq, problem):
        return ChainReport(False, checked, head_seq, head_hash, seq, problem)

    events = AuditEvent.objects.filter(seq__lte=head_seq).order_by("seq")
    for event in events.iterator(chunk_size=chunk_size):
        if event.seq != expected_seq:
            return broken(
                expected_seq,
                f"event #{expected_seq} is missing (the sequence jumps to #{event.seq})",
            )
        if event.prev_hash != prev_hash:
            return broken(
                event.seq,
                f"event #{event.seq} does not link to event #{event.seq - 1} "
                "(a row was inserted, deleted or reordered before it)",
            )
        if not hmac.compare_digest(event.hash, event_hash(event, key=key)):
            return broken(
                event.seq, f"event #{event.seq} does not match its hash (its contents were changed)"
            )
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1

    last_seq = expected_seq - 1
    if last_seq < head_seq:
        return broken(last_seq + 1, f"events #{last_seq + 1} to #{head_seq} are missing")
    if prev_hash != head_hash:
        return broken(last_seq, f"event #{last_seq} does not match the chain head")
    beyond = AuditEvent.objects.filter(seq__gt=head_seq).order_by("-seq").first()
    if beyond is not None and beyond.seq > _read_head()[0]:
        # Appended since our first read would be recorded by the head by now; these are not.
        stray = AuditEvent.objects.filter(seq__gt=head_seq).order_by("seq").first()
        return broken(
            stray.seq, f"event #{stray.seq} is not recorded by the chain head (appended outside it)"
        )
    return ChainReport(True, checked, head_seq, head_hash)


def record_verification(report: ChainReport, *, checked_by: str) -> ChainVerification:
    """Keep the outcome of a chain walk for the badge on the audit pages."""
    return ChainVerification.objects.create(
        checked_by=checked_by[:200],
        ok=report.ok,
        checked=report.checked,
        head_seq=report.head_seq,
        broken_seq=report.broken_seq,
        problem=report.problem,
    )
