"""Key sets read from the environment, and the HMAC digests that bearer tokens are stored as."""

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credentials import crypto

VARIABLE = "KEYTURN_TOKEN_KEYS"
# Recognisable material, so a leak into a message or repr is easy to spot.
NEW_KEY = b"NEWKEY-secret-material-0123456!!"
OLD_KEY = b"OLDKEY-secret-material-6543210??"
# Encodes to a string holding both '-' and '_', the characters only urlsafe base64 uses.
URLSAFE_KEY = bytes([0xFB, 0xEF, 0xBE] * 10 + [0xFF, 0xFF])
TOKEN = "ktak_Zq3Lk9XbT0aW7mNc2RfYh4Jp8sVd1GxE6uKo5QiB000000"


def b64(raw: bytes, *, padded: bool = True) -> str:
    text = base64.urlsafe_b64encode(raw).decode("ascii")
    return text if padded else text.rstrip("=")


def quoted_from(value, message: str, width: int = 12) -> list[str]:
    """Every run of ``width`` base64 characters in the message that also occurs in the value."""
    windows = {
        run[i : i + width]
        for run in re.findall(rf"[A-Za-z0-9+/=_-]{{{width},}}", message)
        for i in range(len(run) - width + 1)
    }
    return sorted(window for window in windows if window in (value or ""))


def test_keys_are_listed_newest_first_and_all_of_them_can_be_looked_up():
    keyring = crypto.parse_keyring(VARIABLE, f"k2025:{b64(NEW_KEY)},k2024:{b64(OLD_KEY)}")

    assert keyring.ids == ("k2025", "k2024")
    assert keyring.current == ("k2025", NEW_KEY)
    assert keyring.get("k2025") == NEW_KEY
    assert keyring.get("k2024") == OLD_KEY
    assert keyring.get("k2023") is None


@pytest.mark.parametrize(
    "value",
    [
        f"a:{b64(URLSAFE_KEY)}",
        f"a:{b64(URLSAFE_KEY, padded=False)}",
        f"  a:{b64(URLSAFE_KEY)}  ",
        f"a: {b64(URLSAFE_KEY)}\n",
    ],
    ids=["padded", "unpadded", "spaces-around-entry", "space-after-colon-and-newline"],
)
def test_urlsafe_keys_are_read_with_or_without_padding_and_surrounding_space(value):
    assert "-" in b64(URLSAFE_KEY) and "_" in b64(URLSAFE_KEY)

    assert crypto.parse_keyring(VARIABLE, value).current == ("a", URLSAFE_KEY)


def test_entries_are_separated_by_commas_with_optional_spaces():
    value = f"key_3:{b64(NEW_KEY)}, key-2:{b64(OLD_KEY)} ,K1:{b64(URLSAFE_KEY)}"

    keyring = crypto.parse_keyring(VARIABLE, value)

    assert keyring.keys == (("key_3", NEW_KEY), ("key-2", OLD_KEY), ("K1", URLSAFE_KEY))


GOOD = b64(NEW_KEY)
BAD_KEYRINGS = [
    ("unset", None, "is not set"),
    ("empty", "", "is not set"),
    ("blank", " \t\n", "is not set"),
    ("key-without-id", GOOD, "entry 1 is not of the form 'id:base64'"),
    ("second-entry-without-id", f"a:{GOOD},{b64(OLD_KEY)}", "entry 2 is not of the form"),
    ("equals-instead-of-colon", f"a={GOOD}", "entry 1 is not of the form"),
    ("empty-id", f":{GOOD}", "entry 1 is not of the form"),
    ("id-with-space", f"my key:{GOOD}", "entry 1 is not of the form"),
    ("id-with-dot", f"v1.a:{GOOD}", "entry 1 is not of the form"),
    ("non-ascii-id", f"cl\u00e9:{GOOD}", "entry 1 is not of the form"),
    ("id-of-33-chars", f"{'a' * 33}:{GOOD}", "entry 1 is not of the form"),
    ("trailing-comma", f"a:{GOOD},", "entry 2 is not of the form"),
    ("empty-entry-between", f"a:{GOOD},,b:{b64(OLD_KEY)}", "entry 2 is not of the form"),
    ("one-char-of-base64", "a:Q", "key 'a' is not valid base64"),
    ("impossible-length", f"a:{GOOD.rstrip('=')}QW", "key 'a' is not valid base64"),
    ("non-ascii-base64", "a:" + "\u00e9" * 43, "key 'a' is not valid base64"),
    ("empty-key", "a:", "key 'a' is 0 bytes; it must be 32"),
    ("16-bytes", f"a:{b64(NEW_KEY[:16])}", "key 'a' is 16 bytes; it must be 32"),
    ("31-bytes", f"a:{b64(NEW_KEY[:31])}", "key 'a' is 31 bytes; it must be 32"),
    ("33-bytes", f"a:{b64(NEW_KEY + b'!')}", "key 'a' is 33 bytes; it must be 32"),
    ("64-bytes", f"a:{b64(NEW_KEY + OLD_KEY)}", "key 'a' is 64 bytes; it must be 32"),
    ("hex-instead-of-base64", f"a:{NEW_KEY.hex()}", "key 'a' is 48 bytes; it must be 32"),
    ("duplicate-id", f"a:{GOOD},b:{b64(OLD_KEY)},a:{b64(OLD_KEY)}", "key id 'a' appears twice"),
]


@pytest.mark.parametrize(
    "value, problem", [case[1:] for case in BAD_KEYRINGS], ids=[case[0] for case in BAD_KEYRINGS]
)
def test_a_malformed_keyring_names_the_variable_and_the_problem_but_never_the_key(value, problem):
    with pytest.raises(crypto.KeyringError) as raised:
        crypto.parse_keyring(VARIABLE, value)

    message = str(raised.value)
    assert message.startswith(VARIABLE)
    assert problem in message
    assert "python manage.py generate_keys" in message
    assert quoted_from(value, message) == []
    for raw in (NEW_KEY, OLD_KEY):
        assert raw.decode("ascii")[:6] not in message
    assert isinstance(raised.value, crypto.CryptoError)


def test_a_keyring_with_no_keys_cannot_exist():
    with pytest.raises(crypto.KeyringError, match="at least one key"):
        crypto.Keyring(())


# --------------------------------------------------------------------------- generated lines


@pytest.mark.parametrize("key_id", ["a", "k2025-06", "KEY_1", "x" * 32])
def test_a_generated_key_line_parses_back_to_one_fresh_32_byte_key(key_id):
    line = crypto.generate_key_line(key_id)

    keyring = crypto.parse_keyring(VARIABLE, line)

    assert keyring.ids == (key_id,)
    assert len(keyring.current[1]) == 32
    assert line == f"{key_id}:{b64(keyring.current[1])}"


def test_generated_key_lines_join_into_a_ring_and_never_repeat_a_key():
    lines = [crypto.generate_key_line(f"k{n}") for n in range(20)]

    keyring = crypto.parse_keyring(VARIABLE, ",".join(lines))

    assert keyring.ids == tuple(f"k{n}" for n in range(20))
    assert len({key for _, key in keyring.keys}) == 20


@pytest.mark.parametrize(
    "key_id", ["", "a.b", "a:b", "a b", "a,b", "x" * 33, "cl\u00e9", "a\n"], ids=repr
)
def test_a_key_line_is_not_generated_for_an_id_the_parser_would_refuse(key_id):
    with pytest.raises(crypto.KeyringError, match="key ids are 1-32"):
        crypto.generate_key_line(key_id)


@given(key_id=st.from_regex(r"\A[A-Za-z0-9_-]{1,32}\Z"))
def test_any_allowed_key_id_round_trips_through_a_generated_line(key_id):
    assert crypto.parse_keyring(VARIABLE, crypto.generate_key_line(key_id)).ids == (key_id,)


@given(
    keys=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=5),
    padded=st.booleans(),
)
def test_any_32_byte_keys_round_trip_in_order(keys, padded):
    value = ",".join(f"k{n}:{b64(key, padded=padded)}" for n, key in enumerate(keys))

    keyring = crypto.parse_keyring(VARIABLE, value)

    assert keyring.keys == tuple((f"k{n}", key) for n, key in enumerate(keys))


@given(value=st.text())
def test_arbitrary_text_either_parses_or_raises_keyring_error(value):
    try:
        keyring = crypto.parse_keyring(VARIABLE, value)
    except crypto.KeyringError as error:
        assert str(error).startswith(VARIABLE)
    else:
        assert all(len(key) == 32 for _, key in keyring.keys)


# --------------------------------------------------------------------------- repr


def test_keyring_repr_shows_ids_and_hides_key_material():
    keyring = crypto.parse_keyring(VARIABLE, f"new:{b64(NEW_KEY)},old:{b64(OLD_KEY)}")

    shown = [repr(keyring), str(keyring), f"{keyring}", repr([keyring]), repr({"k": keyring})]

    for text in shown:
        assert "'new'" in text and "'old'" in text
        for raw in (NEW_KEY, OLD_KEY):
            assert raw.decode("ascii")[:6] not in text
            assert b64(raw)[:12] not in text
            assert raw.hex()[:12] not in text


# --------------------------------------------------------------------------- digests


def test_token_digest_is_hmac_sha256_of_the_token_as_lowercase_hex():
    expected = hmac.new(NEW_KEY, TOKEN.encode("ascii"), hashlib.sha256).hexdigest()

    digest = crypto.token_digest(TOKEN, NEW_KEY)

    assert digest == expected
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert TOKEN not in digest


def test_token_digest_depends_on_both_the_key_and_the_token():
    digests = {
        crypto.token_digest(TOKEN, NEW_KEY),
        crypto.token_digest(TOKEN, OLD_KEY),
        crypto.token_digest(TOKEN[:-1] + "1", NEW_KEY),
        hashlib.sha256(TOKEN.encode("ascii")).hexdigest(),  # a bare hash must not match
    }

    assert len(digests) == 4
    assert crypto.token_digest(TOKEN, NEW_KEY) == crypto.token_digest(TOKEN, NEW_KEY)


def test_old_keys_still_produce_the_digests_stored_under_them():
    old_ring = crypto.parse_keyring(VARIABLE, f"old:{b64(OLD_KEY)}")
    stored = dict(crypto.token_digests(TOKEN, old_ring))
    rotated_ring = crypto.parse_keyring(VARIABLE, f"new:{b64(NEW_KEY)},old:{b64(OLD_KEY)}")

    digests = crypto.token_digests(TOKEN, rotated_ring)

    assert [key_id for key_id, _ in digests] == ["new", "old"]
    assert digests[0][1] == crypto.token_digest(TOKEN, NEW_KEY)
    assert digests[1] == ("old", stored["old"])
    assert digests[0][1] != stored["old"]


@pytest.mark.parametrize(
    "candidate, matches",
    [
        (lambda d: d, True),
        (lambda d: d[:-1] + ("0" if d[-1] != "0" else "1"), False),
        (lambda d: d[:-1], False),
        (lambda d: d + "0", False),
        (lambda d: d.upper(), False),
        (lambda d: "", False),
    ],
    ids=["same", "last-char-differs", "shorter", "longer", "uppercase", "empty"],
)
def test_digest_matches_only_the_exact_same_digest(candidate, matches):
    digest = crypto.token_digest(TOKEN, NEW_KEY)
    assert any(char.isalpha() for char in digest)  # so the uppercase case really differs

    assert crypto.digest_matches(digest, candidate(digest)) is matches


def test_digest_comparison_is_constant_time(monkeypatch):
    compared = []
    real_compare = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(crypto.tokens.hmac, "compare_digest", spy)
    digest = crypto.token_digest(TOKEN, NEW_KEY)

    assert crypto.digest_matches(digest, digest)
    assert compared == [(digest.encode("ascii"), digest.encode("ascii"))]


@pytest.mark.parametrize(
    "mangle",
    [lambda key: key[:8] + "!" + key[8:], lambda key: "a:" + key, lambda key: key + "=="],
    ids=["stray-character", "extra-colon", "extra-padding"],
)
def test_a_key_with_stray_characters_is_refused_not_reinterpreted(mangle):
    entry = crypto.generate_key_line("k1")
    key_id, _, key = entry.partition(":")
    with pytest.raises(crypto.KeyringError, match="PORTAL_X: key 'k1' is not valid base64"):
        crypto.parse_keyring("PORTAL_X", f"{key_id}:{mangle(key)}")
