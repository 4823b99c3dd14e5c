"""Second factors for signing in: TOTP enrolment, backup codes, checking a code, and reset.

django-otp keeps the devices: one TOTP device (an authenticator app) and one static device
(backup codes, stored as keyed digests, see ``crypto.backup_codes``). A TOTP device's seed is
not in django-otp's table but encrypted in ``TOTPSeed``; every device that shows a seed or
checks a code here is loaded as ``KeyturnTOTPDevice``, which decrypts it. A device counts only
once confirmed. Every change is audited in its own transaction; no seed, code or digest ever
reaches the audit trail, and codes leave these functions only as return values.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.views.decorators.debug import sensitive_variables
from django_otp import user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .. import audit, crypto
from ..audit import Actor
from ..crypto import backup_codes
from ..models import SEED_ELSEWHERE, KeyturnTOTPDevice, TOTPSeed, seed_associated_data

logger = logging.getLogger(__name__)

TOTP_NAME = "Authenticator app"
BACKUP_NAME = "Backup codes"
SEED_BYTES = 20  # 160 bits, RFC 4226's recommendation and django-otp's default


@dataclass(frozen=True)
class Enrolled:
    """A confirmed authenticator and the first set of backup codes, to show once."""

    device: KeyturnTOTPDevice
    backup_codes: list[str] = field(repr=False)


@dataclass(frozen=True)
class SecondFactorStatus:
    has_authenticator: bool
    backup_codes_left: int

    @property
    def enrolled(self) -> bool:
        return self.has_authenticator or self.backup_codes_left > 0


def second_factor_status(user) -> SecondFactorStatus:
    """What the user has: a confirmed authenticator, and how many backup codes are left."""
    return SecondFactorStatus(
        has_authenticator=TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        backup_codes_left=StaticToken.objects.filter(
            device__user=user, device__confirmed=True
        ).count(),
    )


def second_factor_step(user) -> str | None:
    """What a signed-in, not yet verified user must do before anything else: ``"verify"``
    (they have a confirmed device), ``"enrol"`` (none, and PORTAL_2FA_REQUIRED) or None."""
    if user_has_device(user, confirmed=True):
        return "verify"
    return "enrol" if settings.PORTAL_2FA_REQUIRED else None


@sensitive_variables("seed")
def totp_pending_device(*, user) -> KeyturnTOTPDevice:
    """The user's unconfirmed authenticator, made on first call and kept until confirmed, so a
    reload of the enrolment page shows the same secret that was already scanned.

    The seed is fresh from ``secrets`` and stored only encrypted, bound to the new device's
    row, in the transaction that makes the device; django-otp's ``key`` column holds a marker.
    An unconfirmed device verifies nothing (django-otp ignores it), so making one is not a
    change that matters to security and is not audited."""
    with transaction.atomic():
        _lock_user(user)
        device = (
            KeyturnTOTPDevice.objects.filter(user=user, confirmed=False, keyturn_seed__isnull=False)
            .order_by("pk")
            .first()
        )
        if device is None:
            device = KeyturnTOTPDevice.objects.create(
                user=user, name=TOTP_NAME, confirmed=False, key=SEED_ELSEWHERE
            )
            # The seed is bound to the row's primary key, which exists only now.
            seed = secrets.token_bytes(SEED_BYTES)
            device.keyturn_seed = TOTPSeed.objects.create(
                device=device,
                ciphertext=crypto.encrypt(
                    seed,
                    keyring=settings.PORTAL_ENCRYPTION_KEYS,
                    associated_data=seed_associated_data(device.pk),
                ),
            )
    return device


@sensitive_variables("token", "codes")
def totp_confirm(*, actor: Actor, user, token: str) -> Enrolled | None:
    """Confirm the pending authenticator with a current code from it; None if the code is
    wrong, there is no pending device, or the user already has a confirmed one.

    On success the device counts from now on, any other pending device is dropped, and a first
    set of backup codes is made (replacing any), all in one transaction with its audit events.
    """
    with transaction.atomic():
        _lock_user(user)
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            return None
        device = (
            KeyturnTOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False, keyturn_seed__isnull=False)
            .order_by("pk")
            .first()
        )
        if device is None or not _totp_accepts(device, token):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        audit.append(
            actor=actor,
            action="user.two_factor_enrolled",
            target=user,
            details={"device": "totp"},
        )
        codes = _replace_backup_codes(actor=actor, user=user)
    return Enrolled(device=device, backup_codes=codes)


@sensitive_variables("codes")
def backup_codes_generate(*, actor: Actor, user) -> list[str]:
    """A fresh set of backup codes for ``user``; every earlier code stops working. The codes
    are returned once, for the page that shows them; only their digests are kept."""
    with transaction.atomic():
        _lock_user(user)
        return _replace_backup_codes(actor=actor, user=user)


@sensitive_variables("code", "text", "normalised")
def second_factor_verify(*, actor: Actor, user, code: str) -> Device | None:
    """The confirmed device that accepts ``code`` (a current TOTP code, or an unused backup
    code, which is used up), or None.

    Six digits are tried only as a TOTP code and anything else only as a backup code. A TOTP
    code is accepted once: a replay in the same time step fails. Wrong codes are limited by
    the caller, which counts each as a failed sign-in toward the lockout.
    """
    if not isinstance(code, str):
        return None
    text = "".join(code.split())
    with transaction.atomic():
        _lock_user(user)
        if len(text) == 6 and text.isascii() and text.isdigit():
            confirmed = KeyturnTOTPDevice.objects.filter(user=user, confirmed=True)
            for device in confirmed.select_for_update():
                if _totp_accepts(device, text):
                    return device
            return None
        normalised = backup_codes.normalise_backup_code(text)
        device = _use_backup_code(user, normalised) if normalised else None
        if device is None:
            return None
        left = StaticToken.objects.filter(device__user=user).count()
        audit.append(
            actor=actor,
            action="user.backup_code_used",
            target=user,
            details={"backup_codes_left": left},
        )
        return device


def sign_in_record(*, actor: Actor, user, second_factor: str | None) -> None:
    """Write ``user.signed_in``: ``user`` has just got in, from where ``actor`` says (address
    and browser) and with ``second_factor`` (``"authenticator app"``, ``"backup code"``, or
    None for a password alone where none is owed). ``credentials.signin`` calls it once per
    sign-in."""
    with transaction.atomic():
        audit.append(
            actor=actor,
            action="user.signed_in",
            target=user,
            details={"second_factor": second_factor},
        )


def two_factor_reset(*, actor: Actor, user) -> int:
    """Remove every second factor of ``user`` (authenticator, backup codes, pending enrolment),
    so they enrol afresh at their next sign-in. Sessions verified with a removed device stop
    counting as verified at their next request. Returns how many devices were removed."""
    with transaction.atomic():
        _lock_user(user)
        removed = TOTPDevice.objects.filter(user=user).delete()[1].get(TOTPDevice._meta.label, 0)
        removed += (
            StaticDevice.objects.filter(user=user).delete()[1].get(StaticDevice._meta.label, 0)
        )
        audit.append(
            actor=actor,
            action="user.two_factor_reset",
            target=user,
            details={"devices_removed": removed},
        )
    return removed


# --------------------------------------------------------------------------- helpers


def _lock_user(user) -> None:
    # One user's second-factor changes queue up on their row: two tabs confirming at once,
    # or a reset racing a verification, cannot interleave.
    get_user_model().objects.select_for_update().filter(pk=user.pk).exists()


def _totp_accepts(device: KeyturnTOTPDevice, token: str) -> bool:
    text = "".join(str(token).split())
    if not (len(text) == device.digits and text.isascii() and text.isdigit()):
        device.throttle_increment(commit=True)
        return False
    try:
        return device.verify_token(text)
    except (TOTPSeed.DoesNotExist, crypto.DecryptionFailed) as error:
        # No seed row, a ciphertext moved from another device, or keys that do not open it:
        # the device checks nothing. Named by id only; the error texts carry no key material.
        logger.warning("TOTP device %s has no readable seed: %s", device.pk, type(error).__name__)
        device.throttle_increment(commit=True)
        return False


@sensitive_variables("code")
def _use_backup_code(user, code: str) -> StaticDevice | None:
    digests = backup_codes.backup_code_digests(code, settings.PORTAL_TOKEN_HASH_KEYS)
    devices = list(
        StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk")
    )
    if not devices:
        return None
    used = StaticToken.objects.filter(device__in=devices, token__in=digests).first()
    device = next((d for d in devices if used and d.pk == used.device_id), devices[0])
    if not device.verify_is_allowed()[0]:
        return None
    # A conditional delete: of two requests presenting the same code, only one removes it.
    if used is None or StaticToken.objects.filter(pk=used.pk).delete()[0] != 1:
        device.throttle_increment(commit=True)
        return None
    device.throttle_reset(commit=False)
    device.set_last_used_timestamp(commit=False)
    device.save()
    return device


@sensitive_variables("codes", "code")
def _replace_backup_codes(*, actor: Actor, user) -> list[str]:
    # One set of codes per person: every earlier code goes. The device stays, as a session
    # verified with one of its codes names it.
    StaticToken.objects.filter(device__user=user).delete()
    device = StaticDevice.objects.filter(user=user).order_by("pk").first()
    if device is None:
        device = StaticDevice.objects.create(user=user, name=BACKUP_NAME, confirmed=True)
    elif not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    codes = backup_codes.generate_backup_codes()
    _key_id, key = settings.PORTAL_TOKEN_HASH_KEYS.current
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=backup_codes.backup_code_digest(code, key))
        for code in codes
    )
    audit.append(
        actor=actor,
        action="user.backup_codes_generated",
        target=user,
        details={"count": len(codes)},
    )
    return codes
