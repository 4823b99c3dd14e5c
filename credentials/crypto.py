"""Pure cryptographic building blocks for Keyturn.

Bytes and strings in, bytes and strings out. Nothing here touches the ORM or reads settings:
keys arrive as arguments (a ``Keyring``), so every function can be tested exhaustively on its
own. The guarantees each function gives are in its docstring; callers rely on them.
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

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
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

MAX_PUBLIC_KEY_TEXT = 16 * 1024
MIN_RSA_BITS = 2048


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


def token_checksum(text: str) -> str:
    """The 6-character base62 CRC32 of ``text``: catches typos and lets scanners spot our tokens.

    A checksum, not a MAC: it proves nothing about who made the token.
    """
    return base62_encode(zlib.crc32(text.encode("ascii")), CHECKSUM_LENGTH)


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


def token_kind(token: str) -> str | None:
    """The credential kind a well-formed token's prefix names, or None."""
    for kind, prefix in TOKEN_PREFIXES.items():
        if token.startswith(prefix + "_"):
            return kind
    return None


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
    """
    return [(key_id, token_digest(token, key)) for key_id, key in keyring.keys]


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


# --------------------------------------------------------------------------- public keys


@dataclass(frozen=True)
class PublicKeyInfo:
    """A parsed, acceptable public key: normalised PEM, a human label and its fingerprint."""

    pem: str
    algorithm: str  # "RSA-3072", "EC-P256", "EC-P384", "Ed25519"
    fingerprint: str  # "SHA256:" + unpadded base64 of SHA-256 over the DER SubjectPublicKeyInfo


# Text shaped like one of our secrets or like a private key: refused from names, scrubbed
# from notes, never written to the audit trail.
SECRET_SHAPES = re.compile(
    r"kt(?:ak|cs)_[0-9A-Za-z]{20,}"
    r"|whsec_[A-Za-z0-9+/=]{16,}"
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
    r"|PuTTY-User-Key-File",
    re.ASCII,
)


def looks_secret(text: str) -> bool:
    """True when ``text`` contains something shaped like a secret or a private key."""
    return bool(SECRET_SHAPES.search(text))


def redact(text: str) -> str:
    """``text`` with every secret-shaped part replaced by ``[redacted]``."""
    return SECRET_SHAPES.sub("[redacted]", text)


_PRIVATE_MARKERS = (
    "PRIVATE KEY-----",  # PKCS#8, RSA, EC, DSA, ENCRYPTED, OPENSSH
    "PuTTY-User-Key-File",
)


def parse_public_key(text: object) -> PublicKeyInfo:
    """Accept an RSA (≥ 2048 bits), EC P-256/P-384 or Ed25519 public key and fingerprint it.

    Takes PEM (``PUBLIC KEY`` or ``RSA PUBLIC KEY``) or one OpenSSH ``ssh-...`` line. Refuses,
    with a message a person can act on: private keys (of any format), certificates, weak RSA,
    other curves and algorithms, oversized or non-text input, and anything unparseable.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise CryptoError("The key must be plain ASCII text (PEM or OpenSSH).") from None
    if not isinstance(text, str):
        raise CryptoError("Paste the public key as text.")
    if len(text) > MAX_PUBLIC_KEY_TEXT:
        raise CryptoError("That is far too long for a public key (16 KB at most).")
    text = text.strip()
    if not text:
        raise CryptoError("Paste a public key.")
    if any(marker in text for marker in _PRIVATE_MARKERS):
        raise CryptoError(
            "This is a private key. Keyturn only takes the public half: never paste a private "
            "key anywhere. Treat this one as exposed, make a new keypair and paste its public key."
        )
    if not text.isascii():
        raise CryptoError("The key must be plain ASCII text (PEM or OpenSSH).")
    if text.count("-----BEGIN") > 1:
        raise CryptoError("That holds more than one PEM block. Paste one public key at a time.")
    if "BEGIN CERTIFICATE" in text:
        raise CryptoError(
            "This is a certificate, not a public key. Extract its key with "
            "`openssl x509 -in cert.pem -pubkey -noout` and paste that."
        )
    # load_ssh_public_key would silently unwrap an OpenSSH certificate and drop its limits.
    if text.split(None, 1)[0].endswith("-cert-v01@openssh.com"):
        raise CryptoError(
            "This is an OpenSSH certificate, not a public key. Paste the key it certifies "
            "(the matching .pub file) instead."
        )
    data = text.encode("ascii")
    try:
        if text.startswith("ssh-") or text.startswith("ecdsa-"):
            key = serialization.load_ssh_public_key(data)
        elif text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            raise CryptoError(
                "That does not look like a public key. Paste a PEM block starting with "
                "'-----BEGIN PUBLIC KEY-----' or an OpenSSH line such as 'ssh-ed25519 AAAA...'."
            )
    except CryptoError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CryptoError(
            "The key could not be read: it is damaged or in a format Keyturn does not take. "
            "Export it with `openssl pkey -in private.pem -pubout`."
        ) from None
    algorithm = _describe_acceptable(key)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return PublicKeyInfo(pem=pem, algorithm=algorithm, fingerprint=public_key_fingerprint(der))


def public_key_fingerprint(der_spki: bytes) -> str:
    """``SHA256:`` + unpadded base64 of SHA-256 over the DER SubjectPublicKeyInfo.

    Reproducible outside Keyturn with
    ``openssl pkey -pubin -in key.pem -outform DER | openssl dgst -sha256 -binary | base64``.
    """
    digest = hashlib.sha256(der_spki).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _describe_acceptable(key) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CryptoError(
                f"This RSA key is {key.key_size} bits; Keyturn needs at least {MIN_RSA_BITS}. "
                "Make a new one with "
                "`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`."
            )
        if key.public_numbers().e < 65537:
            raise CryptoError("This RSA key uses a small public exponent; use e = 65537.")
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "EC-P256", "secp384r1": "EC-P384"}
        if key.curve.name not in names:
            raise CryptoError(
                f"The curve {key.curve.name} is not accepted; use P-256 or P-384 "
                "(`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)."
            )
        return names[key.curve.name]
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    raise CryptoError(
        "This kind of key is not accepted. Use RSA (2048 bits or more), EC P-256/P-384 or Ed25519."
    )


# --------------------------------------------------------------------------- proof of possession

CHALLENGE_PREFIX = "keyturn-challenge-"
CHALLENGE_BYTES = 24
MAX_SIGNATURE_TEXT = 4096


class SignatureRefused(CryptoError):
    """A signature that does not prove possession. ``reason`` names the way it is wrong."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def new_challenge() -> str:
    """A random, single-use challenge a key holder signs: printable, shell-safe, 32 characters
    of base64url after a fixed prefix (so a signature over it is useless anywhere else)."""
    return CHALLENGE_PREFIX + secrets.token_urlsafe(CHALLENGE_BYTES)


def _signature_bytes(text: object) -> bytes:
    if not isinstance(text, str) or not text.strip():
        raise SignatureRefused("empty", "Paste the base64 signature the command printed.")
    if len(text) > MAX_SIGNATURE_TEXT:
        raise SignatureRefused("too_long", "That is far too long for a signature.")
    if any(marker in text for marker in _PRIVATE_MARKERS):
        raise SignatureRefused(
            "private_key",
            "This is a private key, not a signature. Never paste a private key anywhere: treat "
            "this one as exposed, make a new keypair and start this step again.",
        )
    compact = "".join(text.split())  # `openssl base64` wraps its output at 64 characters
    if compact.startswith("-----BEGIN"):
        raise SignatureRefused(
            "not_base64", "That is a PEM block, not a signature. Paste the signature's base64."
        )
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.urlsafe_b64decode(_pad(compact).encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise SignatureRefused(
            "not_base64",
            "That is not base64. Paste the whole output of the signing command, which ends "
            "with `| base64 -w0`.",
        ) from None


def _verifies(key, signature: bytes, message: bytes) -> str | None:
    """The scheme under which ``signature`` is valid over ``message`` for ``key``, or None."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        attempts = [("Ed25519", ())]
    elif isinstance(key, ec.EllipticCurvePublicKey):
        attempts = [("ECDSA-SHA256", (ec.ECDSA(hashes.SHA256()),))]
    elif isinstance(key, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        attempts = [
            ("RSA-PKCS1v15-SHA256", (padding.PKCS1v15(), hashes.SHA256())),
            ("RSA-PSS-SHA256", (pss, hashes.SHA256())),
        ]
    else:
        return None
    for scheme, parameters in attempts:
        try:
            key.verify(signature, message, *parameters)
        except (InvalidSignature, ValueError):
            continue
        return scheme
    return None


def _check_shape(key, signature: bytes) -> None:
    """Refuse a signature whose length or encoding cannot belong to ``key``, saying why."""
    if isinstance(key, ed25519.Ed25519PublicKey) and len(signature) != 64:
        raise SignatureRefused(
            "wrong_length",
            f"An Ed25519 signature is 64 bytes; this one is {len(signature)}. Sign with "
            "`openssl pkeyutl -sign -rawin` as shown, and paste all of its base64.",
        )
    if isinstance(key, rsa.RSAPublicKey) and len(signature) != (key.key_size + 7) // 8:
        raise SignatureRefused(
            "wrong_length",
            f"A signature by this {key.key_size}-bit RSA key is {(key.key_size + 7) // 8} bytes; "
            f"this one is {len(signature)}. Paste all of the command's base64 output.",
        )
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        try:
            decode_dss_signature(signature)
        except ValueError:
            if len(signature) == 2 * size:
                raise SignatureRefused(
                    "not_der",
                    "This looks like a raw r||s ECDSA signature. Keyturn takes the DER form "
                    "that `openssl dgst -sha256 -sign` prints.",
                ) from None
            raise SignatureRefused(
                "wrong_length",
                f"That is not a DER-encoded ECDSA signature ({len(signature)} bytes). Paste all "
                "of the output of `openssl dgst -sha256 -sign`.",
            ) from None


def verify_possession(
    *,
    public_key_pem: str,
    challenge: str,
    signature: object,
    earlier_challenges: tuple[str, ...] = (),
    other_public_keys: tuple[str, ...] = (),
) -> str:
    """Check that ``signature`` (base64) is a signature over ``challenge`` by the key whose
    public half is ``public_key_pem``; return the scheme that verified.

    Accepted: Ed25519; ECDSA with SHA-256 on P-256 or P-384 (DER); RSA with SHA-256 under
    PKCS#1 v1.5 or PSS (any salt length). The message is exactly the challenge's ASCII bytes.
    Raises ``SignatureRefused`` with a reason and a message a person can act on: empty, not
    base64, a pasted private key, wrong length or encoding, signed with one of
    ``other_public_keys`` (the wrong key), signed over one of ``earlier_challenges`` or over the
    challenge plus a newline (the wrong challenge), or simply not valid.
    """
    raw = _signature_bytes(signature)
    key = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
    message = challenge.encode("ascii")
    _check_shape(key, raw)
    scheme = _verifies(key, raw, message)
    if scheme is not None:
        return scheme
    if _verifies(key, raw, message + b"\n") or _verifies(key, raw, message + b"\r\n"):
        raise SignatureRefused(
            "trailing_newline",
            "This signs the challenge followed by a line break (what `echo` adds). Write it "
            "with `printf '%s'` as shown, so the file holds the challenge alone, and sign again.",
        )
    if any(_verifies(key, raw, earlier.encode("ascii")) for earlier in earlier_challenges):
        raise SignatureRefused(
            "wrong_challenge",
            "This signs an earlier challenge, not the one on this page now. Sign the current "
            "challenge.",
        )
    for other in other_public_keys:
        try:
            other_key = serialization.load_pem_public_key(other.encode("ascii"))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if _verifies(other_key, raw, message):
            raise SignatureRefused(
                "wrong_key",
                "This was signed with the OLD key. Sign with the new private key, the one "
                "whose public half you registered in this rotation.",
            )
    raise SignatureRefused(
        "mismatch",
        "The signature does not verify with the new public key over this challenge. Check that "
        "you signed with the new private key and that the file holds exactly the challenge "
        "shown here.",
    )
