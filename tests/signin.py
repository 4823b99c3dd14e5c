"""Helpers for the sign-in tests: RFC 6238 codes computed here, and signing in by the form."""

import base64
import hashlib
import hmac
import re
import struct
import time

from django.urls import reverse

from credentials.lifecycle import two_factor
from credentials.models import KeyturnTOTPDevice

PASSWORD = "correct horse battery staple"  # what tests/conftest.py gives every role user


def totp(key: bytes, *, steps_ahead: int = 0, at: float | None = None, digits: int = 6) -> str:
    """The RFC 6238 code (HMAC-SHA1, 30-second steps) for ``key``, computed independently of
    django-otp, ``steps_ahead`` steps from now (the device accepts one step either side)."""
    counter = int((time.time() if at is None else at) // 30) + steps_ahead
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


SECRET_ON_PAGE = re.compile(r'<code id="kt-totp-secret" class="kt-code">([A-Z2-7 ]+)</code>')


def secret_on(page) -> bytes:
    """The seed the enrolment page shows, as an app would scan it."""
    return key_from_base32(SECRET_ON_PAGE.search(page.content.decode()).group(1))


def key_from_base32(text: str) -> bytes:
    """The seed from the secret as the enrolment page prints it (groups of four, no padding)."""
    compact = "".join(text.split()).upper()
    return base64.b32decode(compact + "=" * (-len(compact) % 8))


def enrol_authenticator(user, *, name: str = two_factor.TOTP_NAME) -> KeyturnTOTPDevice:
    """A confirmed authenticator for ``user`` with its encrypted seed, made directly (not
    through the page); its ``bin_key`` is the seed an app would have scanned."""
    device = two_factor.totp_pending_device(user=user)
    device.name = name
    device.confirmed = True
    device.save(update_fields=["name", "confirmed"])
    return device


def password_login(client, username, password=PASSWORD, *, ip="127.0.0.1", next_url=""):
    """POST the admin's login form, as a browser would, from ``ip``."""
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("admin:login"), data, REMOTE_ADDR=ip)


def submit_code(client, code, *, ip="127.0.0.1", next_url=""):
    data = {"code": code}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("admin:two_factor_verify"), data, REMOTE_ADDR=ip)


def mark_verified(client, device) -> None:
    """Make the client's session verified with ``device``, as a right code would (which also
    opens the re-authentication window)."""
    from credentials import sudo

    session = client.session
    session["otp_device_id"] = device.persistent_id
    session[sudo.SESSION_KEY] = int(time.time())
    session.save()
