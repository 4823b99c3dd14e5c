"""Public keys of service accounts: parse, refuse what is not acceptable, fingerprint; and
the shapes of secrets, for refusing and redacting them in free text."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .tokens import CryptoError

MAX_PUBLIC_KEY_TEXT = 16 * 1024
MIN_RSA_BITS = 2048


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
