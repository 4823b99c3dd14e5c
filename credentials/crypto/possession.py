"""Proof of possession: a random challenge, and the check of a signature over it made with
the private half of a registered public key."""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .public_keys import _PRIVATE_MARKERS
from .tokens import (
    CryptoError,
    _pad,
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
