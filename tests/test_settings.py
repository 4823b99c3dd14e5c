"""Start-up refuses missing or malformed keys by name; generate_keys makes a deployable set."""

import pytest

from tests.deployment import PRODUCTION, settings_of
from tests.deployment import manage as _manage  # one way to start manage.py as a server would


@pytest.fixture(scope="module")
def fresh_keys():
    done = _manage("generate_keys")
    assert done.returncode == 0, done.stderr
    pairs = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(pairs) == {
        "SECRET_KEY",
        "PORTAL_ENCRYPTION_KEYS",
        "PORTAL_TOKEN_HASH_KEYS",
        "PORTAL_AUDIT_KEY",
    }
    return pairs


def test_generate_keys_runs_with_nothing_configured_and_never_repeats(fresh_keys):
    again = dict(line.split("=", 1) for line in _manage("generate_keys").stdout.splitlines())
    assert all(again[name] != value for name, value in fresh_keys.items())


def test_generated_keys_with_production_settings_pass_check_deploy(fresh_keys):
    done = _manage("check", "--deploy", ALLOWED_HOSTS="keyturn.example.com", **fresh_keys)
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "PORTAL_ENCRYPTION_KEYS", "PORTAL_TOKEN_HASH_KEYS", "PORTAL_AUDIT_KEY"]
)
def test_a_missing_key_stops_start_up_naming_it(fresh_keys, name):
    variables = {k: v for k, v in fresh_keys.items() if k != name}
    done = _manage("check", **variables)
    assert done.returncode == 2
    assert f"{name} is not set" in done.stderr
    assert "generate_keys" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORTAL_ENCRYPTION_KEYS", "k1:not-base64!", "not valid base64"),
        ("PORTAL_ENCRYPTION_KEYS", "k1:AAAA", "must be 32"),
        ("PORTAL_TOKEN_HASH_KEYS", "no-colon-here", "not of the form"),
        ("PORTAL_TOKEN_HASH_KEYS", "a b:AAAA", "not of the form"),
        ("PORTAL_REACTIVATION_WINDOW_MINUTES", "an hour", "whole number"),
        ("PORTAL_MAX_LIFETIME_DAYS", "0", "from 1 to 3650"),
        ("PORTAL_DEFAULT_OVERLAP_HOURS", "721", "from 0 to 720"),
        ("PORTAL_REACTIVATION_WINDOW_MINUTES", "²", "whole number"),
        ("PORTAL_WEBHOOK_RETRY_SCHEDULE", "5,five", "comma-separated list of whole numbers"),
        ("PORTAL_WEBHOOK_RETRY_SCHEDULE", "", "comma-separated list of whole numbers"),
        ("PORTAL_EXPIRY_NOTICE_DAYS", "7,0", "from 1 to 365"),
        ("PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS", "0", "from 1 to 120"),
        ("PORTAL_WEBHOOK_LEASE_SECONDS", "10", "longer than the connect and read timeouts"),
        ("PORTAL_2FA_REQUIRED", "ture", "must be one of 1/0, true/false, yes/no, on/off."),
        ("PORTAL_HTTPS", "", "must be one of"),
        ("PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS", "enabled", "must be one of"),
        ("DEBUG", "flase", "must be one of"),
        ("PORTAL_USE_X_FORWARDED_HOST", "y", "must be one of"),
        ("PORTAL_DB_PREPARED_STATEMENTS", "ok", "must be one of"),
        ("SECURE_HSTS_PRELOAD", "nope", "must be one of"),
        ("PORTAL_TRUST_X_FORWARDED_PROTO", "1   # the proxy says", "a # comment on the same line"),
        ("PORTAL_HTTPS", "hunter2secret", "must be one of"),  # never repeated
        ("PORTAL_WEBHOOK_DISABLE_AFTER_FAILURES", "many", "whole number"),
        ("DATABASE_URL", "", "is set but empty"),
        ("DATABASE_URL", "posgres://keyturn:hunter2secret@db/keyturn", "not a URL Keyturn can use"),
        ("CACHE_URL", "", "is set but empty"),
        ("CACHE_URL", "rediss-typo://:hunter2secret@cache:6379/0", "not a URL Keyturn can use"),
    ],
)
def test_a_malformed_setting_stops_start_up_naming_it(fresh_keys, name, value, message):
    done = _manage("check", **{**fresh_keys, name: value})
    assert done.returncode == 2
    assert name in done.stderr and message in done.stderr
    key_material = value.partition(":")[2]
    assert len(key_material) < 5 or key_material not in done.stderr
    assert "hunter2secret" not in done.stderr  # a URL's password, whatever else is said


@pytest.mark.parametrize(
    ("written", "read"),
    [("1", True), (" Yes ", True), ("ON", True), ("true", True), ("0", False), ("off", False),
     ("No", False), ("FALSE", False)],
)  # fmt: skip
def test_on_off_settings_read_the_usual_words_either_way(fresh_keys, written, read):
    chosen = settings_of(
        ["PORTAL_2FA_REQUIRED", "PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS"],
        **fresh_keys,
        **PRODUCTION,
        PORTAL_2FA_REQUIRED=written,
        PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS=written,
    )
    assert chosen == {"PORTAL_2FA_REQUIRED": read, "PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS": read}


def test_two_audit_keys_are_refused(fresh_keys):
    doubled = (
        fresh_keys["PORTAL_AUDIT_KEY"]
        + ","
        + fresh_keys["PORTAL_ENCRYPTION_KEYS"].replace(
            fresh_keys["PORTAL_ENCRYPTION_KEYS"].split(":")[0], "other"
        )
    )
    done = _manage("check", **{**fresh_keys, "PORTAL_AUDIT_KEY": doubled})
    assert done.returncode == 2
    assert "PORTAL_AUDIT_KEY holds exactly one key" in done.stderr
    assert fresh_keys["PORTAL_AUDIT_KEY"].split(":")[1] not in done.stderr


def test_debug_tolerates_missing_keys_but_not_malformed_ones():
    tolerated = _manage("check", DEBUG="1")
    assert tolerated.returncode == 0
    assert "keyturn.W001" in tolerated.stderr + tolerated.stdout  # ...and says so loudly
    done = _manage("check", DEBUG="1", PORTAL_AUDIT_KEY="x:short")
    assert done.returncode == 2 and "PORTAL_AUDIT_KEY" in done.stderr
