"""Proof of possession: a signature over the portal's challenge by the new key, and a clear
refusal for every way such a signature can be wrong."""

import base64
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from credentials import crypto, playbooks

CHALLENGE = "keyturn-challenge-0123456789abcdefABCDEF_-xyzXYZ98"
CHALLENGE_BYTES = CHALLENGE.encode()


def _pem(private_key) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _sign(private_key, message: bytes, scheme: str) -> bytes:
    if scheme == "ed25519":
        return private_key.sign(message)
    if scheme == "ecdsa":
        return private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    if scheme == "pkcs1":
        return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    salt = padding.PSS.DIGEST_LENGTH if scheme == "pss-digest" else padding.PSS.MAX_LENGTH
    return private_key.sign(
        message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt), hashes.SHA256()
    )


KEYS = {
    "ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
ACCEPTED = [
    ("ed25519", "ed25519", "Ed25519"),
    ("p256", "ecdsa", "ECDSA-SHA256"),
    ("p384", "ecdsa", "ECDSA-SHA256"),
    ("rsa2048", "pkcs1", "RSA-PKCS1v15-SHA256"),
    ("rsa2048", "pss-max", "RSA-PSS-SHA256"),
    ("rsa2048", "pss-digest", "RSA-PSS-SHA256"),
]


@pytest.fixture(scope="module")
def keys():
    return {name: make() for name, make in KEYS.items()}


@pytest.mark.parametrize(("key", "scheme", "named"), ACCEPTED)
def test_a_signature_by_the_new_key_over_the_challenge_is_accepted(keys, key, scheme, named):
    signature = _b64(_sign(keys[key], CHALLENGE.encode(), scheme))
    assert (
        crypto.verify_possession(
            public_key_pem=_pem(keys[key]), challenge=CHALLENGE, signature=signature
        )
        == named
    )


def test_wrapped_url_safe_and_unpadded_base64_are_all_read(keys):
    raw = _sign(keys["rsa2048"], CHALLENGE.encode(), "pkcs1")
    wrapped = "\n".join(_b64(raw)[i : i + 64] for i in range(0, len(_b64(raw)), 64)) + "\n"
    url_safe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    for text in (wrapped, url_safe, "  " + _b64(raw) + "  "):
        assert crypto.verify_possession(
            public_key_pem=_pem(keys["rsa2048"]), challenge=CHALLENGE, signature=text
        )


def _refusal(keys, key, signature, **extra) -> crypto.SignatureRefused:
    with pytest.raises(crypto.SignatureRefused) as refused:
        crypto.verify_possession(
            public_key_pem=_pem(keys[key]), challenge=CHALLENGE, signature=signature, **extra
        )
    assert str(refused.value)  # every refusal says something a person can act on
    return refused.value


def _ed(keys, message=CHALLENGE_BYTES):
    return _b64(keys["ed25519"].sign(message))


WRONG = [
    # (case, key, signature builder, reason)
    ("empty", "ed25519", lambda k: "", "empty"),
    ("blank", "ed25519", lambda k: "   \n", "empty"),
    ("not text", "ed25519", lambda k: None, "empty"),
    ("not base64", "ed25519", lambda k: "this is not base64!", "not_base64"),
    ("a PEM block", "ed25519", lambda k: _pem(k["ed25519"]), "not_base64"),
    ("far too long", "ed25519", lambda k: "A" * 5000, "too_long"),
    ("ed25519 cut short", "ed25519", lambda k: _b64(k["ed25519"].sign(b"x")[:40]), "wrong_length"),
    ("rsa cut short", "rsa2048", lambda k: _b64(_sign(k["rsa2048"], b"x", "pkcs1")[:200]),
     "wrong_length"),
    ("ecdsa garbage", "p256", lambda k: _b64(b"\x01" * 10), "wrong_length"),
    ("ecdsa raw r||s", "p256", lambda k: _b64(_raw_rs(k["p256"], 32)), "not_der"),
    ("valid shape, random bytes", "ed25519", lambda k: _b64(bytes(64)), "mismatch"),
    ("signed another text", "ed25519", lambda k: _ed(k, b"something else"), "mismatch"),
    ("signed with echo's newline", "ed25519", lambda k: _ed(k, CHALLENGE.encode() + b"\n"),
     "trailing_newline"),
    ("ecdsa with a newline", "p256",
     lambda k: _b64(_sign(k["p256"], CHALLENGE.encode() + b"\n", "ecdsa")), "trailing_newline"),
    ("signed by another key", "ed25519",
     lambda k: _b64(ed25519.Ed25519PrivateKey.generate().sign(CHALLENGE.encode())), "mismatch"),
]  # fmt: skip


def _raw_rs(private_key, size):
    r, s = decode_dss_signature(_sign(private_key, CHALLENGE.encode(), "ecdsa"))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize(("case", "key", "build", "reason"), WRONG, ids=[w[0] for w in WRONG])
def test_each_way_a_signature_can_be_wrong_is_refused_with_its_own_reason(
    keys, case, key, build, reason
):
    assert _refusal(keys, key, build(keys)).reason == reason


def test_a_pasted_private_key_is_refused_as_a_private_key_and_never_echoed(keys):
    private = (
        keys["ed25519"]
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    refused = _refusal(keys, "ed25519", private)
    assert refused.reason == "private_key"
    assert "PRIVATE KEY" not in str(refused)


def test_a_signature_by_the_old_key_is_refused_as_the_wrong_key(keys):
    old = ed25519.Ed25519PrivateKey.generate()
    refused = _refusal(
        keys, "ed25519", _b64(old.sign(CHALLENGE.encode())), other_public_keys=(_pem(old),)
    )
    assert refused.reason == "wrong_key"
    assert "OLD key" in str(refused)


def test_a_signature_over_an_earlier_challenge_is_refused_as_the_wrong_challenge(keys):
    earlier = crypto.new_challenge()
    refused = _refusal(keys, "p384", _b64(_sign(keys["p384"], earlier.encode(), "ecdsa")),
                       earlier_challenges=(earlier,))  # fmt: skip
    assert refused.reason == "wrong_challenge"


def test_challenges_are_fresh_prefixed_and_shell_safe():
    seen = {crypto.new_challenge() for _ in range(200)}
    assert len(seen) == 200
    for challenge in seen:
        assert challenge.startswith(crypto.CHALLENGE_PREFIX)
        assert len(challenge) == len(crypto.CHALLENGE_PREFIX) + 32
        assert set(challenge) <= set(crypto.BASE62 + "-_")


# ------------------------------------------------------------------ the commands the page prints

OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command line tool")
@pytest.mark.parametrize("algorithm", list(playbooks.KEYPAIR_COMMANDS))
def test_the_openssl_commands_the_playbook_prints_produce_a_signature_keyturn_accepts(
    tmp_path, algorithm
):
    """Run, in a shell, exactly the commands the service-account playbook shows a person."""
    challenge = crypto.new_challenge()
    script = "\n".join(playbooks.keypair_commands(algorithm, challenge))
    done = subprocess.run(
        ["/bin/sh", "-ec", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    public = (tmp_path / playbooks.PUBLIC_KEY_FILE).read_text()
    signature = done.stdout.strip().splitlines()[-1]
    crypto.parse_public_key(public)  # the key it makes is one Keyturn registers
    assert crypto.verify_possession(public_key_pem=public, challenge=challenge, signature=signature)
