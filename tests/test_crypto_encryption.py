"""Encryption at rest (AES-256-GCM bound to its row) and Standard Webhooks signing secrets."""

import base64
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from credentials import crypto

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(200, 232))
ROW = b"credential-version:42"
OLD_RING = crypto.Keyring((("k2024", OLD_KEY),))
ROTATED_RING = crypto.Keyring((("k2025", NEW_KEY), ("k2024", OLD_KEY)))
PLAINTEXT = b"ktak_the-plaintext-we-protect"


def split(ciphertext: str) -> tuple[str, str, bytes]:
    version, key_id, body = ciphertext.split(".")
    return version, key_id, base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def join(version: str, key_id: str, raw: bytes) -> str:
    return f"{version}.{key_id}.{base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')}"


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"x", PLAINTEXT, bytes(range(256)), "caf\u00e9 \u2603".encode(), b"\x00" * 1_000_000],
    ids=["empty", "one-byte", "token", "every-byte-value", "utf8-text", "one-megabyte"],
)
def test_encrypted_bytes_decrypt_back_with_the_same_associated_data(plaintext):
    ciphertext = crypto.encrypt(plaintext, keyring=OLD_RING, associated_data=ROW)

    assert crypto.decrypt(ciphertext, keyring=OLD_RING, associated_data=ROW) == plaintext


@pytest.mark.parametrize("plaintext", [PLAINTEXT, PLAINTEXT + b"!", PLAINTEXT + b"!!"])
def test_ciphertext_is_v1_key_id_and_unpadded_urlsafe_nonce_ciphertext_and_tag(plaintext):
    # Three lengths, so that standard base64 would need no, one and two padding characters.
    ciphertext = crypto.encrypt(plaintext, keyring=ROTATED_RING, associated_data=ROW)

    assert re.fullmatch(r"v1\.k2025\.[A-Za-z0-9_-]+", ciphertext)
    _, _, raw = split(ciphertext)
    assert len(raw) == 12 + len(plaintext) + 16
    assert PLAINTEXT not in raw


def test_ciphertext_is_standard_aes_gcm_under_the_newest_key_and_the_associated_data():
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=ROTATED_RING, associated_data=ROW)
    _, _, raw = split(ciphertext)

    assert AESGCM(NEW_KEY).decrypt(raw[:12], raw[12:], ROW) == PLAINTEXT


def test_encrypting_the_same_plaintext_twice_gives_different_ciphertexts():
    ciphertexts = [
        crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW) for _ in range(100)
    ]

    assert len(set(ciphertexts)) == 100
    assert len({split(ciphertext)[2][:12] for ciphertext in ciphertexts}) == 100


@pytest.mark.parametrize(
    "other_row",
    [b"", b"credential-version:43", b"credential-version:4", ROW + b"\x00", ROW.upper()],
    ids=["empty", "next-row", "prefix", "nul-appended", "uppercased"],
)
def test_a_ciphertext_copied_to_another_row_does_not_decrypt(other_row):
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)

    with pytest.raises(crypto.DecryptionFailed, match="failed authentication"):
        crypto.decrypt(ciphertext, keyring=OLD_RING, associated_data=other_row)


@pytest.mark.parametrize("bit", [0x01, 0x80])
def test_flipping_any_bit_of_nonce_ciphertext_or_tag_is_detected(bit):
    version, key_id, raw = split(crypto.encrypt(b"short", keyring=OLD_RING, associated_data=ROW))

    for index in range(len(raw)):
        tampered = raw[:index] + bytes([raw[index] ^ bit]) + raw[index + 1 :]
        with pytest.raises(crypto.DecryptionFailed):
            crypto.decrypt(join(version, key_id, tampered), keyring=OLD_RING, associated_data=ROW)


def test_replacing_any_character_of_the_body_is_detected():
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)
    head_length = len("v1.k2024.")
    # Every body character but the last carries six bits of data; the last may carry padding
    # bits that the decoder ignores, so changing only those leaves the bytes (and tag) intact.
    for index in range(head_length, len(ciphertext) - 1):
        replacement = "A" if ciphertext[index] != "A" else "B"
        tampered = ciphertext[:index] + replacement + ciphertext[index + 1 :]
        with pytest.raises(crypto.DecryptionFailed):
            crypto.decrypt(tampered, keyring=OLD_RING, associated_data=ROW)


def test_truncating_a_ciphertext_anywhere_is_detected():
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)

    for length in range(len(ciphertext)):
        with pytest.raises(crypto.DecryptionFailed):
            crypto.decrypt(ciphertext[:length], keyring=OLD_RING, associated_data=ROW)


def test_relabelling_a_ciphertext_with_another_loaded_key_id_does_not_decrypt():
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)
    relabelled = ciphertext.replace(".k2024.", ".k2025.", 1)

    with pytest.raises(crypto.DecryptionFailed, match="failed authentication"):
        crypto.decrypt(relabelled, keyring=ROTATED_RING, associated_data=ROW)


def test_a_ciphertext_under_a_key_that_is_not_loaded_fails_and_names_the_key():
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=ROTATED_RING, associated_data=ROW)

    with pytest.raises(crypto.DecryptionFailed, match="'k2025', which is not loaded"):
        crypto.decrypt(ciphertext, keyring=OLD_RING, associated_data=ROW)


def test_a_ciphertext_decrypted_with_the_wrong_key_material_fails():
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)
    impostor = crypto.Keyring((("k2024", OTHER_KEY),))

    with pytest.raises(crypto.DecryptionFailed, match="failed authentication"):
        crypto.decrypt(ciphertext, keyring=impostor, associated_data=ROW)


VALID_BODY = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW).split(".")[2]
GARBAGE = [
    ("empty", ""),
    ("version-only", "v1"),
    ("two-parts", f"v1.{VALID_BODY}"),
    ("four-parts", f"v1.k2024.{VALID_BODY}.x"),
    ("no-version", f".k2024.{VALID_BODY}"),
    ("version-2", f"v2.k2024.{VALID_BODY}"),
    ("version-uppercase", f"V1.k2024.{VALID_BODY}"),
    ("empty-key-id", f"v1..{VALID_BODY}"),
    ("empty-body", "v1.k2024."),
    ("body-too-short-for-nonce-and-tag", f"v1.k2024.{VALID_BODY[:36]}"),
    ("impossible-base64-length", "v1.k2024." + "A" * 41),
    ("non-ascii-body", "v1.k2024." + "\u00e9" * 60),
    ("punctuation-body", "v1.k2024." + "!" * 60),
    ("random-base64-of-right-length", "v1.k2024." + "A" * len(VALID_BODY)),
    ("whitespace", " \n"),
    ("nul", "\x00"),
    ("plaintext-token", PLAINTEXT.decode("ascii")),
    ("ten-megabytes", "v1.k2024." + "A" * 10_000_000),
]


@pytest.mark.parametrize(
    "ciphertext", [value for _, value in GARBAGE], ids=[name for name, _ in GARBAGE]
)
def test_garbage_ciphertext_fails_with_decryption_failed_and_nothing_else(ciphertext):
    with pytest.raises(crypto.DecryptionFailed) as raised:
        crypto.decrypt(ciphertext, keyring=OLD_RING, associated_data=ROW)

    assert VALID_BODY not in str(raised.value)
    assert isinstance(raised.value, crypto.CryptoError)


@given(ciphertext=st.text())
def test_arbitrary_text_never_decrypts_and_only_raises_decryption_failed(ciphertext):
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(ciphertext, keyring=OLD_RING, associated_data=ROW)


@given(body=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="))
def test_arbitrary_urlsafe_bodies_never_decrypt_and_only_raise_decryption_failed(body):
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(f"v1.k2024.{body}", keyring=OLD_RING, associated_data=ROW)


@given(plaintext=st.binary(), row=st.binary())
def test_any_plaintext_round_trips_and_is_bound_to_its_row(plaintext, row):
    ciphertext = crypto.encrypt(plaintext, keyring=ROTATED_RING, associated_data=row)

    assert crypto.decrypt(ciphertext, keyring=ROTATED_RING, associated_data=row) == plaintext
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(ciphertext, keyring=ROTATED_RING, associated_data=row + b"!")


# --------------------------------------------------------------------------- key rotation


def test_after_a_new_key_is_added_old_ciphertexts_decrypt_and_new_ones_use_the_new_key():
    old_ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)

    new_ciphertext = crypto.encrypt(PLAINTEXT, keyring=ROTATED_RING, associated_data=ROW)

    assert crypto.ciphertext_key_id(old_ciphertext) == "k2024"
    assert crypto.ciphertext_key_id(new_ciphertext) == "k2025"
    assert crypto.decrypt(old_ciphertext, keyring=ROTATED_RING, associated_data=ROW) == PLAINTEXT
    assert crypto.decrypt(new_ciphertext, keyring=ROTATED_RING, associated_data=ROW) == PLAINTEXT


def test_once_the_old_key_is_dropped_its_ciphertexts_no_longer_decrypt():
    old_ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)
    new_only = crypto.Keyring((("k2025", NEW_KEY),))

    with pytest.raises(crypto.DecryptionFailed, match="'k2024', which is not loaded"):
        crypto.decrypt(old_ciphertext, keyring=new_only, associated_data=ROW)


@pytest.mark.parametrize(
    "ciphertext", ["", "v2.k2024.AAAA", "v1.k2024", "k2024", "v1.a.b.c"], ids=repr
)
def test_key_id_of_something_that_is_not_a_ciphertext_raises_decryption_failed(ciphertext):
    with pytest.raises(crypto.DecryptionFailed, match="not a Keyturn ciphertext"):
        crypto.ciphertext_key_id(ciphertext)


# --------------------------------------------------------------------------- webhook secrets


def test_webhook_secret_is_whsec_and_standard_base64_of_exactly_32_bytes():
    secret = crypto.generate_webhook_secret()

    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert len(raw) == 32
    assert crypto.webhook_secret_key(secret) == raw


def test_webhook_secrets_are_fresh_each_time():
    keys = {crypto.webhook_secret_key(crypto.generate_webhook_secret()) for _ in range(100)}

    assert len(keys) == 100


@given(raw=st.binary(min_size=32, max_size=32))
def test_webhook_secret_key_reads_any_32_byte_secret(raw):
    secret = "whsec_" + base64.b64encode(raw).decode("ascii")

    assert crypto.webhook_secret_key(secret) == raw


KEY_B64 = base64.b64encode(OLD_KEY).decode("ascii")
BAD_WEBHOOK_SECRETS = [
    ("no-prefix", KEY_B64, "starts with 'whsec_'"),
    ("uppercase-prefix", "WHSEC_" + KEY_B64, "starts with 'whsec_'"),
    ("other-prefix", "ktak_" + KEY_B64, "starts with 'whsec_'"),
    ("leading-space", " whsec_" + KEY_B64, "starts with 'whsec_'"),
    ("empty", "", "starts with 'whsec_'"),
    ("prefix-only", "whsec_", "exactly 32 bytes"),
    ("31-bytes", "whsec_" + base64.b64encode(OLD_KEY[:31]).decode(), "exactly 32 bytes"),
    ("33-bytes", "whsec_" + base64.b64encode(OLD_KEY + b"!").decode(), "exactly 32 bytes"),
    ("64-bytes", "whsec_" + base64.b64encode(OLD_KEY * 2).decode(), "exactly 32 bytes"),
    ("padding-missing", "whsec_" + KEY_B64.rstrip("="), "is base64 after 'whsec_'"),
    ("urlsafe-alphabet", "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(), "base64"),
    ("punctuation", "whsec_" + "!" * 44, "is base64 after 'whsec_'"),
    ("non-ascii", "whsec_" + "\u00e9" * 44, "is base64 after 'whsec_'"),
    ("space-inside", "whsec_" + KEY_B64[:20] + " " + KEY_B64[20:], "is base64 after 'whsec_'"),
]


@pytest.mark.parametrize(
    "secret, problem",
    [case[1:] for case in BAD_WEBHOOK_SECRETS],
    ids=[case[0] for case in BAD_WEBHOOK_SECRETS],
)
def test_a_malformed_webhook_secret_is_refused_without_quoting_it(secret, problem):
    with pytest.raises(crypto.CryptoError) as raised:
        crypto.webhook_secret_key(secret)

    assert problem in str(raised.value)
    assert KEY_B64[:12] not in str(raised.value)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda body: body[:10] + "!" + body[10:],  # a character outside the alphabet
        lambda body: body + "==",  # padding the canonical form never has
        lambda body: body[:5] + "\n" + body[5:],  # whitespace the lenient decoder skips
    ],
    ids=["stray-character", "extra-padding", "embedded-newline"],
)
def test_only_the_canonical_spelling_of_a_ciphertext_decrypts(spoil):
    ciphertext = crypto.encrypt(PLAINTEXT, keyring=OLD_RING, associated_data=ROW)
    version, key_id, body = ciphertext.split(".")
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(f"{version}.{key_id}.{spoil(body)}", keyring=OLD_RING, associated_data=ROW)


@pytest.mark.parametrize(
    "keys",
    [(("k1", b"short"),), (("bad.id", OLD_KEY),), (("k1", OLD_KEY), ("k1", NEW_KEY))],
    ids=["short-key", "dotted-id", "duplicate-id"],
)
def test_a_keyring_built_directly_is_validated_like_a_parsed_one(keys):
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring(keys)
