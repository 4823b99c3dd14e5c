"""Deployed (DEBUG off, HTTPS on) the settings pass `check --deploy` with not one warning, and
give Secure, HttpOnly, SameSite cookies, HSTS and the session limits; DEBUG relaxes only the
parts plain-http development needs."""

import pytest

from tests.deployment import PRODUCTION, fresh_keys, manage, settings_of

TRANSPORT = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "PORTAL_SESSION_IDLE_MINUTES",
    "PORTAL_SESSION_MAX_HOURS",
]


@pytest.fixture(scope="module")
def keys():
    return fresh_keys()


def test_check_deploy_passes_without_a_single_warning(keys):
    done = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **keys)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_check_deploy_fails_on_a_warning_so_the_test_above_can_fail(keys):
    # Plain http outside DEBUG: no Secure cookies, no HSTS, no redirect. Each is a warning.
    done = manage(
        "check", "--deploy", "--fail-level", "WARNING", PORTAL_HTTPS="0", **PRODUCTION, **keys
    )
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr


def test_deployed_settings_make_cookies_secure_httponly_and_samesite_with_hsts(keys):
    deployed = settings_of(TRANSPORT, **PRODUCTION, **keys)
    assert deployed == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_AGE": 12 * 3600,
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "PORTAL_SESSION_IDLE_MINUTES": 30,
        "PORTAL_SESSION_MAX_HOURS": 12,
    }


def test_debug_drops_only_what_plain_http_cannot_carry():
    debug = settings_of(TRANSPORT, DEBUG="1")
    assert debug["SESSION_COOKIE_SECURE"] is debug["CSRF_COOKIE_SECURE"] is False
    assert debug["SECURE_HSTS_SECONDS"] == 0 and debug["SECURE_SSL_REDIRECT"] is False
    assert debug["SESSION_COOKIE_HTTPONLY"] is debug["CSRF_COOKIE_HTTPONLY"] is True
    assert debug["SESSION_COOKIE_SAMESITE"] == debug["CSRF_COOKIE_SAMESITE"] == "Lax"


def test_the_session_limits_and_hsts_come_from_the_environment(keys):
    chosen = settings_of(
        TRANSPORT,
        PORTAL_SESSION_IDLE_MINUTES="15",
        PORTAL_SESSION_MAX_HOURS="8",
        SECURE_HSTS_SECONDS="63072000",
        SECURE_HSTS_PRELOAD="0",
        **PRODUCTION,
        **keys,
    )
    assert (chosen["PORTAL_SESSION_IDLE_MINUTES"], chosen["PORTAL_SESSION_MAX_HOURS"]) == (15, 8)
    assert chosen["SESSION_COOKIE_AGE"] == 8 * 3600
    assert chosen["SECURE_HSTS_SECONDS"] == 63072000 and chosen["SECURE_HSTS_PRELOAD"] is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORTAL_SESSION_IDLE_MINUTES", "0", "from 1 to 1440"),
        ("PORTAL_SESSION_IDLE_MINUTES", "half an hour", "whole number"),
        ("PORTAL_SESSION_IDLE_MINUTES", "-5", "whole number"),
        ("PORTAL_SESSION_MAX_HOURS", "721", "from 1 to 720"),
        ("PORTAL_SESSION_MAX_HOURS", "12.5", "whole number"),
        ("PORTAL_SESSION_MAX_HOURS", "", "whole number"),
    ],
)
def test_a_malformed_session_limit_stops_start_up_naming_it(keys, name, value, message):
    done = manage("check", **PRODUCTION, **keys, **{name: value})
    assert done.returncode == 2
    assert name in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr
