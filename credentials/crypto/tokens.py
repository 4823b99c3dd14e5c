"""Bearer tokens, server-side keyrings, digests, encryption at rest and webhook secrets.

Pure: bytes and strings in, bytes and strings out (see the package docstring).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

TOKEN_PREFIXES = {"api_key": "ktak", "client_secret": "ktcs"}
TOKEN_BODY_LENGTH = 40  # 40 base62 characters from `secrets`: about 238 bits.
CHECKSUM_LENGTH = 6  # 62**6 > 2**32, so any CRC32 fits.
# Accept a little more than we mint so the format can grow without a flag day, and no more:
# anything longer is refused before it is hashed or looked up.
MAX_TOKEN_LENGTH = 5 + 64 + CHECKSUM_LENGTH
_TOKEN_RE = re.compile(r"(ktak|ktcs)_([0-9A-Za-z]{40,64})([0-9A-Za-z]{6})", re.ASCII)

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
WEBHOOK_SECRET_BYTES = 32

KEY_BYTES = 32
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}", re.ASCII)
_CIPHERTEXT_VERSION = "v1"
_NONCE_BYTES = 12


class CryptoError(ValueError):
    """Input that cannot be used. The message is written for a person and never quotes a secret."""


class KeyringError(CryptoError):
    """A configured key set is missing or malformed."""


class DecryptionFailed(CryptoError):
    """A ciphertext was tampered with, moved to another row, or made under an unknown key."""


# --------------------------------------------------------------------------- base62 / checksum


def base62_encode(number: int, width: int) -> str:
    """Encode a non-negative integer as exactly ``width`` base62 digits, zero-padded."""
    if number < 0 or number >= 62**width:
        raise ValueError("number does not fit in the requested width")
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits))


# Every number below 62**2 as its two base62 digits: a checksum is three look-ups, not a loop
# (it is computed for every presented secret, before anything else). Three pairs make the
# CHECKSUM_LENGTH of 6; the tests check the two agree.
_BASE62_PAIRS = [high + low for high in BASE62 for low in BASE62]
_PAIR = 62**2


def token_checksum(text: str) -> str:
    """The 6-character base62 CRC32 of ``text``: catches typos and lets scanners spot our tokens.

    A checksum, not a MAC: it proves nothing about who made the token. The same digits as
    ``base62_encode(crc, 6)``.
    """
    rest, low = divmod(zlib.crc32(text.encode("ascii")), _PAIR)
    high, middle = divmod(rest, _PAIR)  # a CRC32 is below 62**6, so high < 62**2
    return _BASE62_PAIRS[high] + _BASE62_PAIRS[middle] + _BASE62_PAIRS[low]


# --------------------------------------------------------------------------- bearer tokens


def generate_token(kind: str) -> str:
    """Mint a bearer secret for ``kind`` (``api_key`` or ``client_secret``).

    Shape: ``ktak_`` or ``ktcs_``, 40 base62 characters drawn with ``secrets``, then the
    6-character checksum of everything before it.
    """
    try:
        prefix = TOKEN_PREFIXES[kind]
    except KeyError:
        raise CryptoError(f"{kind!r} credentials are not bearer tokens.") from None
    body = "".join(secrets.choice(BASE62) for _ in range(TOKEN_BODY_LENGTH))
    head = f"{prefix}_{body}"
    return head + token_checksum(head)


def token_is_well_formed(presented: object) -> bool:
    """True when ``presented`` is a string with our prefix, alphabet, length and a valid checksum.

    Cheap and total: any object may be passed (bytes, None, a 10 MB string) and the answer is
    False without hashing or querying anything. This is the gate in front of the database.
    """
    if not isinstance(presented, str) or len(presented) > MAX_TOKEN_LENGTH:
        return False
    match = _TOKEN_RE.fullmatch(presented)
    if match is None:
        return False
    head = presented[:-CHECKSUM_LENGTH]
    return hmac.compare_digest(token_checksum(head), match.group(3))


_KINDS_BY_PREFIX = {prefix: kind for kind, prefix in TOKEN_PREFIXES.items()}


def token_kind(token: str) -> str | None:
    """The credential kind a well-formed token's prefix names, or None (one dictionary
    look-up: verification asks this for every presented key)."""
    prefix, underscore, _ = token.partition("_")
    return _KINDS_BY_PREFIX.get(prefix) if underscore else None


def last_four(secret: str) -> str:
    """The last four characters, the only part of a secret shown after its reveal.

    Base64 padding is skipped, so a ``whsec_`` secret shows four characters that vary.
    """
    return secret.rstrip("=")[-4:]


def secret_fingerprint(secret: str) -> str:
    """A short public identifier of a high-entropy secret (first 16 base64 chars of SHA-256).

    Safe to show: the secrets it is applied to carry 238 or 256 bits of entropy, so the hash
    cannot be reversed, and a holder can recompute it to tell which version they hold.
    """
    digest = hashlib.sha256(secret.encode("utf-8")).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")[:16]


# --------------------------------------------------------------------------- keyrings


@dataclass(frozen=True)
class Keyring:
    """An ordered set of named 32-byte keys, newest first. The first one writes; all read."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)

    def __post_init__(self):
        if not self.keys:
            raise KeyringError("a keyring needs at least one key")
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyringError("key ids in a keyring must be unique")
        for key_id, key in self.keys:
            if not _KEY_ID_RE.fullmatch(key_id) or len(key) != KEY_BYTES:
                raise KeyringError("each key needs an id of 1-32 [A-Za-z0-9_-] and 32 bytes")
        # Per key, an HMAC-SHA256 keyed and never fed, for token_digests to copy. Not a field:
        # never compared, hashed or shown, and it lives and dies with the ring.
        keyed = tuple(hmac.new(key, digestmod=hashlib.sha256) for _, key in self.keys)
        object.__setattr__(self, "_keyed", keyed)

    @property
    def current(self) -> tuple[str, bytes]:
        return self.keys[0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.keys)

    def get(self, key_id: str) -> bytes | None:
        for known_id, key in self.keys:
            if known_id == key_id:
                return key
        return None

    def __repr__(self) -> str:  # never show key material
        return f"Keyring(ids={self.ids!r})"


def generate_key_line(key_id: str) -> str:
    """One ``id:base64`` entry with 32 fresh random bytes, as the key-set variables expect."""
    if not _KEY_ID_RE.fullmatch(key_id):
        raise KeyringError("key ids are 1-32 letters, digits, '-' or '_'")
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def parse_keyring(name: str, value: str | None) -> Keyring:
    """Parse ``id:base64,id:base64,...`` (newest first) from the variable called ``name``.

    Raises KeyringError with a message that names the variable and says what is wrong, never
    echoing key material.
    """
    how = "Generate a fresh set with `python manage.py generate_keys`."
    if value is None or not value.strip():
        raise KeyringError(f"{name} is not set. {how}")
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(value.split(","), start=1):
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not _KEY_ID_RE.fullmatch(key_id):
            raise KeyringError(
                f"{name}: entry {position} is not of the form 'id:base64' "
                f"(id of 1-32 letters, digits, '-' or '_'). {how}"
            )
        try:
            key = _strict_b64url(encoded.strip())
        except (binascii.Error, ValueError):
            raise KeyringError(f"{name}: key {key_id!r} is not valid base64. {how}") from None
        if len(key) != KEY_BYTES:
            raise KeyringError(
                f"{name}: key {key_id!r} is {len(key)} bytes; it must be {KEY_BYTES}. {how}"
            )
        if any(known == key_id for known, _ in keys):
            raise KeyringError(f"{name}: key id {key_id!r} appears twice. {how}")
        keys.append((key_id, key))
    return Keyring(tuple(keys))


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}", re.ASCII)


def _strict_b64url(text: str) -> bytes:
    """Decode URL-safe base64 (padding optional), refusing any text that is not canonical.

    The standard decoder skips stray characters and ignores spare bits; this one raises
    ValueError instead, so one value has exactly one accepted spelling.
    """
    if not _B64URL_RE.fullmatch(text):
        raise ValueError("not URL-safe base64")
    bare = text.rstrip("=")
    if text not in (bare, _pad(bare)):
        raise ValueError("wrong base64 padding")
    raw = base64.urlsafe_b64decode(_pad(bare))
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != bare:
        raise ValueError("not canonical base64")
    return raw


# --------------------------------------------------------------------------- digests


def token_digest(token: str, key: bytes) -> str:
    """HMAC-SHA256 of a bearer token under one server-side key, as 64 hex characters."""
    return hmac.new(key, token.encode("ascii"), hashlib.sha256).hexdigest()


def token_digests(token: str, keyring: Keyring) -> list[tuple[str, str]]:
    """``(key_id, digest)`` under every key, newest first: what verification looks up.

    Older keys stay in the ring so that tokens stored under them still verify until rotated.
    Each digest is ``token_digest``'s, started from a copy of the ring's HMAC already keyed
    with that key: keying a new one costs more than hashing the token, on a path that runs
    for every presented secret.
    """
    message = token.encode("ascii")
    digests = []
    for (key_id, _), keyed in zip(keyring.keys, keyring._keyed, strict=True):
        mac = keyed.copy()
        mac.update(message)
        digests.append((key_id, mac.hexdigest()))
    return digests


def digest_matches(expected: str, candidate: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(expected.encode("ascii"), candidate.encode("ascii"))


# --------------------------------------------------------------------------- encryption at rest


def encrypt(plaintext: bytes, *, keyring: Keyring, associated_data: bytes) -> str:
    """AES-256-GCM under the keyring's newest key, bound to ``associated_data``.

    The result ``v1.<key id>.<base64url(nonce || ciphertext || tag)>`` decrypts only with the
    same associated data, so a ciphertext copied onto another row does not decrypt there.
    """
    key_id, key = keyring.current
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext, associated_data)
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{_CIPHERTEXT_VERSION}.{key_id}.{body}"


def ciphertext_key_id(token: str) -> str:
    """The id of the key a ciphertext was made under (for re-encryption), without decrypting."""
    return _split_ciphertext(token)[1]


def decrypt(token: str, *, keyring: Keyring, associated_data: bytes) -> bytes:
    """Reverse ``encrypt``. Raises DecryptionFailed on any tampering, wrong row or unknown key."""
    _, key_id, body = _split_ciphertext(token)
    key = keyring.get(key_id)
    if key is None:
        raise DecryptionFailed(f"ciphertext was made under key {key_id!r}, which is not loaded")
    try:
        if "=" in body:
            raise ValueError("a ciphertext body is unpadded")
        raw = _strict_b64url(body)
    except (binascii.Error, ValueError):
        raise DecryptionFailed("ciphertext is not valid base64") from None
    if len(raw) < _NONCE_BYTES + 16:
        raise DecryptionFailed("ciphertext is too short")
    try:
        return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated_data)
    except InvalidTag:
        raise DecryptionFailed("ciphertext failed authentication") from None


def _split_ciphertext(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _CIPHERTEXT_VERSION:
        raise DecryptionFailed("not a Keyturn ciphertext")
    return parts[0], parts[1], parts[2]


# --------------------------------------------------------------------------- webhook secrets


def generate_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(
        secrets.token_bytes(WEBHOOK_SECRET_BYTES)
    ).decode("ascii")


def webhook_secret_key(secret: str) -> bytes:
    """The raw HMAC key inside a ``whsec_`` secret."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise CryptoError("a webhook signing secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("a webhook signing secret is base64 after 'whsec_'") from None
    if len(key) != WEBHOOK_SECRET_BYTES:
        raise CryptoError("a webhook signing secret holds exactly 32 bytes")
    return key
