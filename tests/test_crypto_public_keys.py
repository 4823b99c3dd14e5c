"""Public keys pasted for service accounts: what is accepted, how it is fingerprinted, and
every kind of paste that must be refused with a message a person can act on."""

import base64
import datetime
import functools
import hashlib
import re
import shutil
import struct
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from credentials import crypto

KEY_MAKERS = {
    # Weak on purpose: these must be refused.
    "rsa-1024": lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
    "dsa-1024": lambda: dsa.generate_private_key(key_size=1024),  # noqa: S505
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa-3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ec-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ec-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ec-secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ed25519-other": ed25519.Ed25519PrivateKey.generate,
    "ed448": ed448.Ed448PrivateKey.generate,
    "x25519": x25519.X25519PrivateKey.generate,
    "x448": x448.X448PrivateKey.generate,
    "dsa-2048": lambda: dsa.generate_private_key(key_size=2048),
}
ALGORITHMS = {"RSA-2048", "RSA-3072", "EC-P256", "EC-P384", "Ed25519"}


@functools.cache
def private_key(name):
    """Each key is generated once per test run: RSA generation is slow."""
    return KEY_MAKERS[name]()


def public_key(name):
    return private_key(name).public_key()


def der(key) -> bytes:
    return key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


def spki_pem(key) -> str:
    return key.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode()


def pkcs1_pem(key) -> str:
    return key.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1).decode()


def openssh(key) -> str:
    return key.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()


def expected_fingerprint(key) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(der(key)).digest()).decode().rstrip("=")


def private_pem(name, fmt, password=None) -> str:
    encryption = ser.BestAvailableEncryption(password) if password else ser.NoEncryption()
    return private_key(name).private_bytes(ser.Encoding.PEM, fmt, encryption).decode()


def with_exponent_3(name):
    n = public_key(name).public_numbers().n
    return rsa.RSAPublicNumbers(3, n).public_key()


def self_signed_certificate() -> bytes:
    key = private_key("ec-p256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyturn.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(ser.Encoding.PEM)


def openssh_certificate() -> str:
    certificate = (
        ser.SSHCertificateBuilder()
        .public_key(public_key("ed25519-other"))
        .serial(1)
        .type(ser.SSHCertificateType.USER)
        .key_id(b"deploy")
        .valid_principals([b"deploy"])
        .valid_after(0)
        .valid_before(2**64 - 1)
        .sign(private_key("ed25519"))
    )
    return certificate.public_bytes().decode() + " deploy@ci"


def putty_private_key() -> str:
    public_blob = openssh(public_key("ed25519")).split()[1]
    return (
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: laptop\n"
        f"Public-Lines: 2\n{public_blob[:64]}\n{public_blob[64:]}\nPrivate-Lines: 1\n"
        f"{base64.b64encode(bytes(range(36))).decode()}\nPrivate-MAC: {'ab' * 32}\n"
    )


def ssh_blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


def armored(label: str, payload: bytes) -> str:
    body = base64.encodebytes(payload).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"


# --------------------------------------------------------------------------- accepted


def _padded_to(limit):
    pem = spki_pem(public_key("ed25519"))
    return pem + " " * (limit - len(pem))


ACCEPTED = [
    ("rsa-2048-pem-spki", lambda: spki_pem(public_key("rsa-2048")), "rsa-2048", "RSA-2048"),
    ("rsa-2048-pem-pkcs1", lambda: pkcs1_pem(public_key("rsa-2048")), "rsa-2048", "RSA-2048"),
    ("rsa-2048-ssh-rsa", lambda: openssh(public_key("rsa-2048")), "rsa-2048", "RSA-2048"),
    ("rsa-3072-pem-spki", lambda: spki_pem(public_key("rsa-3072")), "rsa-3072", "RSA-3072"),
    ("rsa-3072-pem-pkcs1", lambda: pkcs1_pem(public_key("rsa-3072")), "rsa-3072", "RSA-3072"),
    ("rsa-3072-ssh-rsa", lambda: openssh(public_key("rsa-3072")), "rsa-3072", "RSA-3072"),
    ("ec-p256-pem", lambda: spki_pem(public_key("ec-p256")), "ec-p256", "EC-P256"),
    ("ec-p256-ecdsa-sha2-nistp256", lambda: openssh(public_key("ec-p256")), "ec-p256", "EC-P256"),
    ("ec-p384-pem", lambda: spki_pem(public_key("ec-p384")), "ec-p384", "EC-P384"),
    ("ec-p384-ecdsa-sha2-nistp384", lambda: openssh(public_key("ec-p384")), "ec-p384", "EC-P384"),
    ("ed25519-pem", lambda: spki_pem(public_key("ed25519")), "ed25519", "Ed25519"),
    ("ed25519-ssh-ed25519", lambda: openssh(public_key("ed25519")), "ed25519", "Ed25519"),
    (
        "pem-as-ascii-bytes",
        lambda: spki_pem(public_key("ed25519")).encode("ascii"),
        "ed25519",
        "Ed25519",
    ),
    (
        "pem-with-crlf",
        lambda: spki_pem(public_key("ec-p256")).replace("\n", "\r\n"),
        "ec-p256",
        "EC-P256",
    ),
    (
        "pem-surrounded-by-blank-lines",
        lambda: "\n\n  " + spki_pem(public_key("ed25519")) + "\n\t\n",
        "ed25519",
        "Ed25519",
    ),
    (
        "ssh-line-with-comment-and-newline",
        lambda: openssh(public_key("ed25519")) + " alice@laptop\n",
        "ed25519",
        "Ed25519",
    ),
    ("padded-to-exactly-16kb", lambda: _padded_to(16 * 1024), "ed25519", "Ed25519"),
]


@pytest.mark.parametrize(
    "make_text, key_name, algorithm",
    [case[1:] for case in ACCEPTED],
    ids=[case[0] for case in ACCEPTED],
)
def test_an_acceptable_public_key_is_labelled_normalised_and_fingerprinted(
    make_text, key_name, algorithm
):
    key = public_key(key_name)

    info = crypto.parse_public_key(make_text())

    assert info.algorithm == algorithm
    assert info.fingerprint == expected_fingerprint(key)
    assert info.pem == spki_pem(key)
    assert crypto.parse_public_key(info.pem) == info


@pytest.mark.parametrize("key_name", ["rsa-2048", "rsa-3072", "ec-p256", "ec-p384", "ed25519"])
def test_the_pem_and_openssh_forms_of_one_key_share_a_fingerprint(key_name):
    key = public_key(key_name)
    forms = [spki_pem(key), openssh(key), openssh(key) + " comment"]
    if key_name.startswith("rsa"):
        forms.append(pkcs1_pem(key))

    fingerprints = {crypto.parse_public_key(form).fingerprint for form in forms}

    assert fingerprints == {expected_fingerprint(key)}


def test_different_keys_have_different_fingerprints():
    names = ["rsa-2048", "rsa-3072", "ec-p256", "ec-p384", "ed25519", "ed25519-other"]

    fingerprints = {crypto.parse_public_key(spki_pem(public_key(n))).fingerprint for n in names}

    assert len(fingerprints) == len(names)


def test_fingerprint_is_43_unpadded_base64_characters_of_sha256():
    fingerprint = crypto.parse_public_key(openssh(public_key("ec-p256"))).fingerprint

    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fingerprint)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("key_name", ["rsa-2048", "ec-p384", "ed25519"])
def test_fingerprint_matches_the_documented_openssl_recipe(key_name):
    pem = spki_pem(public_key(key_name))
    der_from_openssl = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=pem.encode(),
        capture_output=True,
        check=True,
    ).stdout
    digest = base64.b64encode(hashlib.sha256(der_from_openssl).digest()).decode()

    assert crypto.parse_public_key(pem).fingerprint == "SHA256:" + digest.rstrip("=")


# --------------------------------------------------------------------------- refused

PRIVATE = "This is a private key"
UNREADABLE = "The key could not be read"
NOT_A_KEY = "does not look like a public key"
NOT_ACCEPTED = "This kind of key is not accepted"
NOT_ASCII = "must be plain ASCII text"
NOT_TEXT = "Paste the public key as text"
TOO_LONG = "16 KB at most"
PKCS8 = ser.PrivateFormat.PKCS8
TRADITIONAL = ser.PrivateFormat.TraditionalOpenSSL
OPENSSH_PRIVATE = ser.PrivateFormat.OpenSSH


def _without_line(text, index):
    lines = text.splitlines(keepends=True)
    return "".join(lines[:index] + lines[index + 1 :])


def _ed25519_pem():
    return spki_pem(public_key("ed25519"))


REFUSED = [
    # Private keys, in every format a person might paste.
    ("pkcs8-rsa", lambda: private_pem("rsa-2048", PKCS8), PRIVATE),
    ("pkcs8-ec", lambda: private_pem("ec-p256", PKCS8), PRIVATE),
    ("pkcs8-ed25519", lambda: private_pem("ed25519", PKCS8), PRIVATE),
    ("traditional-rsa", lambda: private_pem("rsa-2048", TRADITIONAL), PRIVATE),
    ("traditional-ec", lambda: private_pem("ec-p384", TRADITIONAL), PRIVATE),
    ("traditional-dsa", lambda: private_pem("dsa-2048", TRADITIONAL), PRIVATE),
    ("encrypted-pkcs8", lambda: private_pem("rsa-2048", PKCS8, b"hunter2"), PRIVATE),
    ("encrypted-traditional-rsa", lambda: private_pem("rsa-2048", TRADITIONAL, b"pw"), PRIVATE),
    ("openssh-private-ed25519", lambda: private_pem("ed25519", OPENSSH_PRIVATE), PRIVATE),
    ("openssh-private-rsa", lambda: private_pem("rsa-3072", OPENSSH_PRIVATE), PRIVATE),
    ("putty-ppk", putty_private_key, PRIVATE),
    ("private-key-as-bytes", lambda: private_pem("ec-p256", PKCS8).encode(), PRIVATE),
    (
        "public-key-followed-by-its-private-key",
        lambda: _ed25519_pem() + private_pem("ed25519", PKCS8),
        PRIVATE,
    ),
    ("private-key-after-prose", lambda: "my key:\n" + private_pem("ed25519", PKCS8), PRIVATE),
    # Certificates hold a key but are not one.
    ("x509-certificate", lambda: self_signed_certificate().decode(), "This is a certificate"),
    ("x509-certificate-bytes", self_signed_certificate, "This is a certificate"),
    ("openssh-certificate", openssh_certificate, "This is an OpenSSH certificate"),
    (
        "openssh-certificate-blob-under-a-key-type",
        lambda: "ssh-ed25519 " + openssh_certificate().split()[1],
        UNREADABLE,
    ),
    # Weak RSA, other curves, other algorithms.
    ("rsa-1024-pem", lambda: spki_pem(public_key("rsa-1024")), "RSA key is 1024 bits"),
    ("rsa-1024-pkcs1", lambda: pkcs1_pem(public_key("rsa-1024")), "RSA key is 1024 bits"),
    ("rsa-1024-ssh-rsa", lambda: openssh(public_key("rsa-1024")), "RSA key is 1024 bits"),
    ("rsa-e3-pem", lambda: spki_pem(with_exponent_3("rsa-2048")), "small public exponent"),
    ("rsa-e3-ssh-rsa", lambda: openssh(with_exponent_3("rsa-3072")), "small public exponent"),
    ("ec-secp256k1", lambda: spki_pem(public_key("ec-secp256k1")), "secp256k1 is not accepted"),
    ("ec-p521-pem", lambda: spki_pem(public_key("ec-p521")), "secp521r1 is not accepted"),
    ("ecdsa-sha2-nistp521", lambda: openssh(public_key("ec-p521")), "secp521r1 is not accepted"),
    ("dsa-pem", lambda: spki_pem(public_key("dsa-2048")), NOT_ACCEPTED),
    ("ed448", lambda: spki_pem(public_key("ed448")), NOT_ACCEPTED),
    ("x25519", lambda: spki_pem(public_key("x25519")), NOT_ACCEPTED),
    ("x448", lambda: spki_pem(public_key("x448")), NOT_ACCEPTED),
    # Nothing, or not a key at all.
    ("empty", lambda: "", "Paste a public key."),
    ("whitespace", lambda: " \r\n\t ", "Paste a public key."),
    ("empty-bytes", lambda: b"", "Paste a public key."),
    ("a-word", lambda: "hello", NOT_A_KEY),
    ("bare-base64-der", lambda: base64.b64encode(der(public_key("ec-p256"))).decode(), NOT_A_KEY),
    ("prose-before-pem", lambda: "Here it is:\n" + _ed25519_pem(), NOT_A_KEY),
    (
        "authorized-keys-options",
        lambda: 'from="10.0.0.1" ' + openssh(public_key("ed25519")),
        NOT_A_KEY,
    ),
    ("sha256-fingerprint", lambda: expected_fingerprint(public_key("ed25519")), NOT_A_KEY),
    # Damaged PEM.
    ("truncated-pem", lambda: _ed25519_pem()[:60], UNREADABLE),
    ("pem-without-end-line", lambda: _ed25519_pem().rsplit("-----END", 1)[0], UNREADABLE),
    (
        "pem-missing-a-body-line",
        lambda: _without_line(spki_pem(public_key("rsa-2048")), 3),
        UNREADABLE,
    ),
    ("armor-only", lambda: "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----", UNREADABLE),
    (
        "garbage-inside-armor",
        lambda: "-----BEGIN PUBLIC KEY-----\n!!not*base64!!\n-----END PUBLIC KEY-----\n",
        UNREADABLE,
    ),
    ("base64-of-text-inside-armor", lambda: armored("PUBLIC KEY", b"hello world " * 8), UNREADABLE),
    (
        "unknown-armor-label",
        lambda: armored("SSH2 PUBLIC KEY", der(public_key("ed25519"))),
        UNREADABLE,
    ),
    (
        "der-under-rsa-label",
        lambda: armored("RSA PUBLIC KEY", der(public_key("ed25519"))),
        UNREADABLE,
    ),
    # Damaged OpenSSH lines.
    ("ssh-type-only", lambda: "ssh-ed25519", UNREADABLE),
    ("ssh-garbage-blob", lambda: "ssh-ed25519 AAAA!!!!", UNREADABLE),
    ("ssh-truncated-blob", lambda: openssh(public_key("ed25519"))[:40], UNREADABLE),
    (
        "ssh-type-does-not-match-blob",
        lambda: "ssh-rsa " + openssh(public_key("ed25519")).split()[1],
        UNREADABLE,
    ),
    ("ssh-empty-rsa-fields", lambda: "ssh-rsa " + ssh_blob(b"ssh-rsa", b"", b""), UNREADABLE),
    ("ssh-unknown-type", lambda: "ssh-foo " + ssh_blob(b"ssh-foo", b"x"), UNREADABLE),
    # Too long, not ASCII, not text.
    ("just-over-16kb", lambda: "A" * (16 * 1024 + 1), TOO_LONG),
    ("valid-key-padded-past-16kb", lambda: _padded_to(16 * 1024 + 1), TOO_LONG),
    ("ten-megabytes", lambda: _ed25519_pem() * 100_000, TOO_LONG),
    ("ten-megabytes-of-bytes", lambda: b"A" * 10_000_000, TOO_LONG),
    ("non-ascii-comment", lambda: openssh(public_key("ed25519")) + " jos\u00e9@laptop", NOT_ASCII),
    ("non-ascii-inside-pem", lambda: _ed25519_pem().replace("A", "\u00c4", 1), NOT_ASCII),
    ("em-dash-armor", lambda: _ed25519_pem().replace("-----", "\u2014\u2014\u2014"), NOT_ASCII),
    ("fullwidth-text", lambda: "\uff53\uff53\uff48-ed25519 AAAA", NOT_ASCII),
    ("non-utf8-bytes", lambda: b"\xff\xfe\x00-----BEGIN PUBLIC KEY-----", NOT_ASCII),
    (
        "latin1-bytes",
        lambda: (openssh(public_key("ed25519")) + " jos\u00e9").encode("latin-1"),
        NOT_ASCII,
    ),
    ("der-bytes", lambda: der(public_key("rsa-2048")), NOT_ASCII),
    ("none", lambda: None, NOT_TEXT),
    ("int", lambda: 42, NOT_TEXT),
    ("float", lambda: 2048.0, NOT_TEXT),
    ("bytearray", lambda: bytearray(_ed25519_pem().encode()), NOT_TEXT),
    ("list-of-lines", lambda: _ed25519_pem().splitlines(), NOT_TEXT),
    ("dict", lambda: {"key": _ed25519_pem()}, NOT_TEXT),
]


def quoted_from(pasted, message: str, width: int = 16) -> list[str]:
    """Every run of ``width`` base64 characters in the message that also occurs in the paste."""
    if isinstance(pasted, bytes):
        pasted = pasted.decode("latin-1")
    if not isinstance(pasted, str):
        return []
    windows = {
        run[i : i + width]
        for run in re.findall(rf"[A-Za-z0-9+/=]{{{width},}}", message)
        for i in range(len(run) - width + 1)
    }
    return sorted(window for window in windows if window in pasted[:200_000])


@pytest.mark.parametrize(
    "make_input, reason",
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED]
    + [
        pytest.param(
            lambda: openssh(public_key("dsa-1024")),
            NOT_ACCEPTED,
            id="ssh-dss",
            marks=pytest.mark.filterwarnings("ignore:SSH DSA"),
        ),
    ],
)
def test_an_unacceptable_paste_is_refused_with_a_reason_and_without_quoting_it(make_input, reason):
    pasted = make_input()

    with pytest.raises(crypto.CryptoError) as raised:
        crypto.parse_public_key(pasted)

    message = str(raised.value)
    assert reason in message
    assert quoted_from(pasted, message) == []


def test_the_private_key_refusal_tells_the_person_to_replace_the_key():
    with pytest.raises(crypto.CryptoError) as raised:
        crypto.parse_public_key(private_pem("ed25519", PKCS8))

    assert "exposed" in str(raised.value)
    assert "make a new keypair" in str(raised.value)


# --------------------------------------------------------------------------- never crashes


def _accepted_or_crypto_error(pasted):
    """The whole contract: a valid PublicKeyInfo, or CryptoError; never another exception."""
    try:
        info = crypto.parse_public_key(pasted)
    except crypto.CryptoError:
        return
    # A changed byte inside an RSA modulus can leave a valid key of another size (2049 bits,
    # say): still RSA of at least 2048 bits, so still acceptable.
    rsa_bits = info.algorithm.removeprefix("RSA-")
    assert info.algorithm in ALGORITHMS or (rsa_bits.isdigit() and int(rsa_bits) >= 2048)
    reparsed = ser.load_pem_public_key(info.pem.encode("ascii"))
    assert info.fingerprint == expected_fingerprint(reparsed)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@given(
    pasted=st.one_of(
        st.text(),
        st.binary(),
        st.text().map(lambda t: "ssh-ed25519 " + t),
        st.text().map(lambda t: "-----BEGIN PUBLIC KEY-----\n" + t),
        st.binary().map(lambda b: "ssh-ed25519 " + _b64(b)),
        st.binary().map(lambda b: armored("PUBLIC KEY", b)),
        st.binary().map(lambda b: armored("RSA PUBLIC KEY", b)),
    )
)
def test_arbitrary_input_is_either_an_acceptable_key_or_a_crypto_error(pasted):
    _accepted_or_crypto_error(pasted)


@given(
    key_type=st.sampled_from([b"ssh-rsa", b"ssh-ed25519", b"ecdsa-sha2-nistp256", b"ssh-dss"]),
    fields=st.lists(st.binary(max_size=300), max_size=5),
)
@pytest.mark.filterwarnings("ignore:SSH DSA")
def test_openssh_lines_with_arbitrary_fields_never_crash(key_type, fields):
    _accepted_or_crypto_error(f"{key_type.decode()} {ssh_blob(key_type, *fields)}")


@given(
    key_name=st.sampled_from(["rsa-2048", "ec-p256", "ed25519"]),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
)
def test_der_with_any_one_byte_changed_never_crashes(key_name, position, value):
    original = der(public_key(key_name))
    position %= len(original)
    mutated = original[:position] + bytes([value]) + original[position + 1 :]

    _accepted_or_crypto_error(armored("PUBLIC KEY", mutated))


def test_two_public_keys_pasted_together_are_refused_rather_than_taking_the_first():
    pasted = spki_pem(public_key("ed25519")) + spki_pem(public_key("ec-p256"))
    with pytest.raises(crypto.CryptoError, match="one public key at a time"):
        crypto.parse_public_key(pasted)
