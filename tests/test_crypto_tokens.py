"""Bearer token format, the well-formedness gate in front of the database, and display helpers.

The expected values are computed here independently (zlib, hashlib, our own base62 decoder),
so a test fails if credentials.crypto and the documented format drift apart.
"""

import base64
import hashlib
import itertools
import zlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from credentials import crypto

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIXES = {"api_key": "ktak", "client_secret": "ktcs"}
FIXED_BODY = "Zq3Lk9XbT0aW7mNc2RfYh4Jp8sVd1GxE6uKo5QiB"  # 40 characters


def decode62(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + BASE62.index(char)
    return number


def encode62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    assert number == 0
    return "".join(reversed(digits))


def make_token(prefix: str, body: str) -> str:
    """A token built from the documented format, without calling credentials.crypto."""
    head = f"{prefix}_{body}"
    return head + encode62(zlib.crc32(head.encode("utf-8")), 6)


def independently_valid(candidate: object) -> bool:
    """The documented acceptance rule, restated: prefix, 40-64 base62 chars, CRC32 checksum."""
    if not isinstance(candidate, str) or len(candidate) > 5 + 64 + 6:
        return False
    if candidate[:5] not in ("ktak_", "ktcs_"):
        return False
    rest = candidate[5:]
    if not 40 + 6 <= len(rest) <= 64 + 6 or any(char not in BASE62 for char in rest):
        return False
    head, checksum = candidate[:-6], candidate[-6:]
    return decode62(checksum) == zlib.crc32(head.encode("ascii"))


VALID = make_token("ktak", FIXED_BODY)


@st.composite
def drawn_tokens(draw, min_body=40, max_body=64):
    prefix = draw(st.sampled_from(sorted(PREFIXES.values())))
    body = draw(st.text(alphabet=BASE62, min_size=min_body, max_size=max_body))
    return make_token(prefix, body)


# --------------------------------------------------------------------------- minting


@pytest.mark.parametrize("kind, prefix", sorted(PREFIXES.items()))
def test_generated_token_is_prefix_forty_base62_chars_and_crc32_of_the_head(kind, prefix):
    token = crypto.generate_token(kind)

    assert token.startswith(prefix + "_")
    assert len(token) == 5 + 40 + 6
    body, checksum = token[5:-6], token[-6:]
    assert all(char in BASE62 for char in body + checksum)
    assert decode62(checksum) == zlib.crc32(token[:-6].encode("ascii"))
    assert crypto.token_is_well_formed(token)
    assert crypto.token_kind(token) == kind


def test_token_body_is_drawn_from_webhook_secretsover_the_whole_alphabet(monkeypatch):
    calls = []

    def fake_choice(alphabet):
        calls.append(alphabet)
        return "Q"

    monkeypatch.setattr(crypto.tokens.secrets, "choice", fake_choice)

    token = crypto.generate_token("api_key")

    assert token[5:-6] == "Q" * 40
    assert calls == [BASE62] * 40


def test_generated_tokens_are_distinct_and_use_every_base62_character():
    tokens = {crypto.generate_token("client_secret") for _ in range(300)}

    assert len(tokens) == 300
    # 12,000 body characters: each of the 62 is expected about 190 times.
    assert set("".join(token[5:-6] for token in tokens)) == set(BASE62)


@pytest.mark.parametrize("kind", ["webhook_secret", "API_KEY", "", "ktak"])
def test_kinds_that_are_not_bearer_tokens_cannot_be_minted(kind):
    with pytest.raises(crypto.CryptoError, match="not bearer tokens"):
        crypto.generate_token(kind)


# --------------------------------------------------------------------------- the gate


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(VALID, id="api-key"),
        pytest.param(make_token("ktcs", FIXED_BODY), id="client-secret"),
        pytest.param(make_token("ktak", "0" * 40), id="all-zero-body"),
        pytest.param(make_token("ktak", FIXED_BODY + "x"), id="body-of-41"),
        pytest.param(make_token("ktcs", (FIXED_BODY * 2)[:64]), id="body-of-64-the-most-allowed"),
    ],
)
def test_tokens_of_the_documented_shape_are_well_formed(token):
    assert crypto.token_is_well_formed(token) is True


def _with_checksum_char_changed(token):
    return token[:-1] + ("A" if token[-1] != "A" else "B")


BAD_TOKENS = [
    ("wrong-checksum", _with_checksum_char_changed(VALID)),
    ("checksum-of-the-other-kind", "ktcs" + VALID[4:]),
    ("checksum-missing", VALID[:-6]),
    ("checksum-truncated", VALID[:-1]),
    ("unknown-prefix", make_token("ktxx", FIXED_BODY)),
    ("uppercase-prefix", make_token("KTAK", FIXED_BODY)),
    ("dash-after-prefix", make_token("ktak", FIXED_BODY).replace("_", "-", 1)),
    ("no-separator", "ktak" + VALID[5:]),
    ("prefix-only", "ktak_"),
    ("empty", ""),
    ("body-too-short", make_token("ktak", FIXED_BODY[:39])),
    ("body-too-long", make_token("ktak", (FIXED_BODY * 2)[:65])),
    ("base64-chars-in-body", make_token("ktak", FIXED_BODY[:38] + "-_")),
    ("base64-plus-slash", make_token("ktak", FIXED_BODY[:38] + "+/")),
    ("padding-in-body", make_token("ktak", FIXED_BODY[:39] + "=")),
    ("oversized-10mb", "ktak_" + "A" * 10_000_000),
    ("valid-token-then-10mb", VALID + "A" * 10_000_000),
    ("trailing-newline", VALID + "\n"),
    ("trailing-crlf", VALID + "\r\n"),
    ("trailing-space", VALID + " "),
    ("leading-space", " " + VALID),
    ("space-inside", VALID[:20] + " " + VALID[21:]),
    ("nul-appended", VALID + "\x00"),
    ("token-twice", VALID + VALID),
    ("bearer-header", "Bearer " + VALID),
    ("fullwidth-digit", make_token("ktak", "\uff10" + FIXED_BODY[1:])),
    ("arabic-indic-digit", make_token("ktak", "\u0660" + FIXED_BODY[1:])),
    ("cyrillic-a-in-prefix", make_token("kt\u0430k", FIXED_BODY)),
    ("kelvin-sign-in-prefix", make_token("\u212atak", FIXED_BODY)),
    ("accented-letter", make_token("ktak", "\u00e9" + FIXED_BODY[1:])),
    ("lone-surrogate", VALID[:-1] + "\udcff"),
    ("bytes", VALID.encode("ascii")),
    ("bytearray", bytearray(VALID.encode("ascii"))),
    ("non-utf8-bytes", b"\xff\xfe" + VALID.encode("ascii")),
    ("none", None),
    ("zero", 0),
    ("int", 10**80),
    ("float", 1.5),
    ("list-of-chars", list(VALID)),
    ("dict", {"token": VALID}),
]


@pytest.mark.parametrize(
    "presented", [case for _, case in BAD_TOKENS], ids=[i for i, _ in BAD_TOKENS]
)
def test_malformed_presented_values_are_refused_without_raising(presented):
    assert crypto.token_is_well_formed(presented) is False


def checksum_shifted_by_one(trailing: str) -> str:
    """A token followed by ``trailing``, crafted so the checksum also fits a one-character shift.

    The six characters after the body are the CRC32 of everything up to the last six
    characters of the whole string. Only a match anchored at both ends refuses it.
    """
    for number in itertools.count():
        body = encode62(number, 40)
        for char in BASE62:
            checksum = encode62(zlib.crc32(f"ktak_{body}{char}".encode()), 6)
            if checksum[0] == char:
                return f"ktak_{body}{checksum}{trailing}"


@pytest.mark.parametrize("trailing", ["\n", " ", "!"], ids=repr)
def test_trailing_characters_are_refused_even_when_a_shifted_checksum_fits(trailing):
    presented = checksum_shifted_by_one(trailing)
    assert crypto.token_checksum(presented[:-6]) == presented[45:51]

    assert crypto.token_is_well_formed(presented) is False


@pytest.mark.parametrize(
    "presented",
    ["ktak_" + "A" * 10_000_000, VALID + "x" * 25],
    ids=["10mb", "one-past-the-limit"],
)
def test_oversized_input_is_refused_before_any_matching_or_hashing(monkeypatch, presented):
    def must_not_run(*args, **kwargs):
        raise AssertionError("an oversized token reached the expensive checks")

    monkeypatch.setattr(crypto.tokens, "token_checksum", must_not_run)
    monkeypatch.setattr(crypto.tokens, "_TOKEN_RE", type("Trap", (), {"fullmatch": must_not_run}))

    assert crypto.token_is_well_formed(presented) is False


@pytest.mark.parametrize(
    "token", [VALID, crypto.generate_token("client_secret")], ids=["fixed", "generated"]
)
def test_every_single_character_typo_is_caught(token):
    # Guaranteed, not probable: a one-character change is an error burst of at most 8 bits
    # and CRC32 detects every burst of up to 32 bits; a change in the checksum itself no
    # longer matches the unchanged head. So this holds for any replacement character.
    typos = [
        token[:position] + char + token[position + 1 :]
        for position in range(len(token))
        for char in BASE62 + "_-+/= .\n\x00\u00e9"
        if char != token[position]
    ]

    assert len(typos) > 50 * len(token)
    assert not any(crypto.token_is_well_formed(typo) for typo in typos)


@pytest.mark.parametrize(
    "token", [VALID, crypto.generate_token("api_key")], ids=["fixed", "generated"]
)
def test_swapping_two_neighbouring_characters_is_caught(token):
    head_end = len(token) - 6
    swaps = [
        token[:i] + token[i + 1] + token[i] + token[i + 2 :]
        for i in range(len(token) - 1)
        # A swap across the head/checksum border changes both halves at once, so CRC32
        # catches it only with high probability; every other swap is a burst of <= 16 bits.
        if i != head_end - 1 and token[i] != token[i + 1]
    ]

    assert swaps
    assert not any(crypto.token_is_well_formed(swap) for swap in swaps)


# --------------------------------------------------------------------------- properties


@given(kind=st.sampled_from(sorted(PREFIXES)))
def test_every_generated_token_is_well_formed_and_names_its_kind(kind):
    token = crypto.generate_token(kind)

    assert crypto.token_is_well_formed(token)
    assert independently_valid(token)
    assert crypto.token_kind(token) == kind


@given(token=drawn_tokens())
def test_tokens_built_to_the_documented_format_are_accepted(token):
    assert crypto.token_is_well_formed(token)
    assert crypto.token_checksum(token[:-6]) == token[-6:]


@given(
    presented=st.one_of(
        st.text(),
        st.text(alphabet=BASE62 + "_", min_size=40, max_size=80),
        st.builds(lambda p, s: p + s, st.sampled_from(["ktak_", "ktcs_"]), st.text(BASE62)),
    )
)
def test_arbitrary_text_is_accepted_only_if_it_truly_has_prefix_alphabet_and_checksum(presented):
    assert crypto.token_is_well_formed(presented) is independently_valid(presented)


@given(
    presented=st.one_of(
        st.binary(),
        st.none(),
        st.integers(),
        st.floats(),
        st.lists(st.text()),
    )
)
def test_values_that_are_not_strings_are_never_accepted(presented):
    assert crypto.token_is_well_formed(presented) is False


@given(
    token=drawn_tokens(),
    position=st.integers(min_value=0, max_value=5 + 64 + 6 - 1),
    replacement=st.sampled_from(BASE62),
)
def test_changing_any_one_character_to_another_base62_character_invalidates(
    token, position, replacement
):
    position %= len(token)
    assume(token[position] != replacement)
    typo = token[:position] + replacement + token[position + 1 :]

    assert not crypto.token_is_well_formed(typo)


# --------------------------------------------------------------------------- small helpers


@pytest.mark.parametrize(
    "token, kind",
    [
        (VALID, "api_key"),
        (make_token("ktcs", FIXED_BODY), "client_secret"),
        ("ktak_anything", "api_key"),
        ("ktxx_" + VALID[5:], None),
        ("KTAK_" + VALID[5:], None),
        ("ktak" + VALID[5:], None),
        ("whsec_abc", None),
        ("", None),
    ],
)
def test_token_kind_is_read_from_the_prefix_and_its_separator(token, kind):
    assert crypto.token_kind(token) == kind


def test_last_four_shows_the_end_of_a_token():
    assert crypto.last_four(VALID) == VALID[-4:]


def test_last_four_of_a_webhook_secret_skips_base64_padding():
    webhook_secrets = [crypto.generate_webhook_secret() for _ in range(50)]

    assert all(secret.endswith("=") for secret in webhook_secrets)
    assert all(crypto.last_four(secret) == secret[-5:-1] for secret in webhook_secrets)
    assert not any("=" in crypto.last_four(secret) for secret in webhook_secrets)
    assert len({crypto.last_four(secret) for secret in webhook_secrets}) > 1


@pytest.mark.parametrize(
    "secret",
    [VALID, "whsec_" + "A" * 43 + "=", "caf\u00e9 secret", ""],
    ids=["token", "webhook", "non-ascii", "empty"],
)
def test_secret_fingerprint_is_the_first_sixteen_base64_chars_of_sha256(secret):
    digest = hashlib.sha256(secret.encode("utf-8")).digest()
    expected = "SHA256:" + base64.b64encode(digest).decode("ascii")[:16]

    fingerprint = crypto.secret_fingerprint(secret)

    assert fingerprint == expected
    assert len(fingerprint) == 7 + 16
    assert secret == "" or secret not in fingerprint


def test_secret_fingerprints_differ_for_neighbouring_secrets():
    fingerprints = {
        crypto.secret_fingerprint(typo) for typo in (VALID, VALID[:-1] + "x", VALID + "x")
    }

    assert len(fingerprints) == 3


# --------------------------------------------------------------------------- base62


@pytest.mark.parametrize(
    "number, width, expected",
    [
        (0, 6, "000000"),
        (61, 1, "z"),
        (62, 2, "10"),
        (62**6 - 1, 6, "zzzzzz"),
        (2**32 - 1, 6, encode62(2**32 - 1, 6)),
        (0, 0, ""),
    ],
)
def test_base62_encode_pads_to_exactly_the_requested_width(number, width, expected):
    assert crypto.base62_encode(number, width) == expected


@pytest.mark.parametrize(
    "number, width",
    [(-1, 6), (62**6, 6), (62, 1), (1, 0), (2**32, 5)],
)
def test_base62_encode_refuses_numbers_that_do_not_fit(number, width):
    with pytest.raises(ValueError, match="does not fit"):
        crypto.base62_encode(number, width)


def test_every_crc32_fits_in_the_checksum_width():
    assert 62**crypto.CHECKSUM_LENGTH > 2**32 - 1
    assert crypto.base62_encode(2**32 - 1, crypto.CHECKSUM_LENGTH)


@given(st.integers(min_value=0, max_value=62**6 - 1))
def test_base62_encode_decodes_back_to_the_same_number(number):
    encoded = crypto.base62_encode(number, 6)

    assert len(encoded) == 6
    assert decode62(encoded) == number


@given(
    st.integers(min_value=0, max_value=62**8 - 1),
    st.integers(min_value=0, max_value=62**8 - 1),
)
def test_base62_encode_is_injective_and_keeps_order(a, b):
    encoded_a, encoded_b = crypto.base62_encode(a, 8), crypto.base62_encode(b, 8)

    assert (encoded_a == encoded_b) is (a == b)
    assert (encoded_a < encoded_b) is (a < b)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_the_checksum_is_the_crc32_in_six_base62_digits(text):
    checksum = encode62(zlib.crc32(text.encode("ascii")), crypto.CHECKSUM_LENGTH)
    assert crypto.token_checksum(text) == checksum


@pytest.mark.parametrize("crc", [0, 1, 61, 62, 62**2 - 1, 62**2, 62**4 - 1, 62**4, 2**32 - 1])
def test_the_checksum_digits_at_the_edges_of_each_pair(crc, monkeypatch):
    monkeypatch.setattr(zlib, "crc32", lambda _data: crc)
    assert crypto.token_checksum("anything") == encode62(crc, 6)
    assert decode62(crypto.token_checksum("anything")) == crc
