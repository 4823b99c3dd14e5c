"""Backup codes: single-use second factors that a person writes down, kept only as digests.

A code is 10 characters of lower-case base32 (50 bits from ``secrets``), shown as two groups
of five (``abcde-fghij``). The database keeps a keyed digest of each, never the code: a copy
of the database alone gives no way in. Pure functions; keys arrive as a ``Keyring``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from .tokens import Keyring

CODE_LENGTH = 10
CODES_PER_SET = 10
# django-otp's StaticToken keeps at most 16 characters: 64 bits of HMAC, as hex.
DIGEST_LENGTH = 16
_CODE_RE = re.compile(r"[a-z2-7]{10}", re.ASCII)
_SEPARATORS = re.compile(r"[\s-]+")
_DOMAIN = b"keyturn-backup-code\n"


def generate_backup_codes(count: int = CODES_PER_SET) -> list[str]:
    """``count`` fresh codes, distinct, each from 50 random bits."""
    codes: set[str] = set()
    while len(codes) < count:
        # 7 random bytes encode to 12 base32 letters; the first 10 carry 50 random bits.
        text = base64.b32encode(secrets.token_bytes(7)).decode("ascii").lower()
        codes.add(text[:CODE_LENGTH])
    return sorted(codes)


def format_backup_code(code: str) -> str:
    """How a code is shown: ``abcde-fghij``."""
    return f"{code[:5]}-{code[5:]}"


def normalise_backup_code(text: object) -> str | None:
    """The code a person typed (any case, spaces or hyphens anywhere), or None if it cannot be
    one. Letters easily misread are not guessed at: ``0``, ``1``, ``8`` and ``9`` are refused."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    code = _SEPARATORS.sub("", text).lower()
    return code if _CODE_RE.fullmatch(code) else None


def backup_code_digest(code: str, key: bytes) -> str:
    """The stored form of ``code`` under one key: HMAC-SHA256, first 64 bits as hex."""
    mac = hmac.new(key, _DOMAIN + code.encode("ascii"), hashlib.sha256)
    return mac.hexdigest()[:DIGEST_LENGTH]


def backup_code_digests(code: str, keyring: Keyring) -> list[str]:
    """The digests ``code`` may be stored under, one per key, newest first (codes made before a
    key rotation still work until they are used or replaced)."""
    return [backup_code_digest(code, key) for _, key in keyring.keys]
