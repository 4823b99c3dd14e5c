"""Keyturn settings, read from the environment (and a local `.env`, if present) by django-environ.

Every variable is listed in the README's configuration table. Outside DEBUG, a missing or
malformed key set stops start-up with a message that names the variable.
"""

import sys
from datetime import timedelta
from pathlib import Path

import csp.constants as csp
import environ
from django.core.exceptions import ImproperlyConfigured

from credentials.crypto import KeyringError, parse_keyring
from portal.proxies import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Values already in the environment win over the file, so CI can point at another database.
environ.Env.read_env(env.str("KEYTURN_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

_PROBLEMS: list[str] = []
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _switch(name: str, default: bool) -> bool:
    """An on/off setting. Anything but a recognised word stops start-up naming it: a typo
    (``PORTAL_2FA_REQUIRED=ture``) must not quietly read as off, as ``env.bool`` reads it."""
    raw = env.ENVIRON.get(name)  # as written (read_env put the .env file's values there too)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    # The value is not repeated: it may be something pasted on the wrong line.
    hint = " (a # comment on the same line is part of the value there)" if "#" in raw else ""
    _PROBLEMS.append(f"{name} must be one of 1/0, true/false, yes/no, on/off{hint}.")
    return default


DEBUG = _switch("DEBUG", False)

# `generate_keys` is the command that makes the keys; it must run before any exist.
_GENERATING_KEYS = sys.argv[1:2] == ["generate_keys"]
# Missing keys are tolerated (with public, worthless stand-ins) only in DEBUG; malformed never.
_LENIENT = DEBUG or _GENERATING_KEYS
PORTAL_DEV_KEYS_IN_USE: list[str] = []  # stand-ins in use: a system check warns about them
_HOW = "Generate a fresh set with `python manage.py generate_keys` and put it in .env."

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not _LENIENT:
        _PROBLEMS.append(f"SECRET_KEY is not set. {_HOW}")
    SECRET_KEY = "insecure-development-only-secret-key-do-not-deploy"  # noqa: S105
    PORTAL_DEV_KEYS_IN_USE.append("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.apps.KeyturnAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "ninja",  # the automation API; listed so its docs page serves Swagger UI from static/
    "django_tasks",
    "django_tasks_db",
    "axes",
    "credentials",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # --- Security headers (issue 7). Below WhiteNoise, so static files are left cacheable;
    # above everything else, so every page, API answer, redirect and error Django makes
    # (including a CSRF failure or a lockout answered by a middleware further down) gets the
    # Content-Security-Policy, Permissions-Policy and Cache-Control: no-store.
    "csp.middleware.CSPMiddleware",
    "portal.headers.SecurityHeadersMiddleware",
    # --- end of security headers
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Introspection from machines (a POST without the portal's own cookies) is answered here,
    # by the view itself: nothing below this line runs for it (credentials/api/introspection.py).
    # Below the HTTPS redirect, static files, the security headers and CommonMiddleware's check
    # of the host; middleware that must see every request goes above it.
    "credentials.api.introspection.introspection_fast_path",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # --- Session limits (issue 7): idle timeout and absolute lifetime. After authentication
    # (it reads request.user) and messages (it leaves one for the sign-in page).
    "portal.session_limits.SessionLimitsMiddleware",
    # --- end of session limits
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Two-factor sign-in: an unverified session reaches only the verify/enrol pages and logout.
    "credentials.signin.TwoFactorMiddleware",
    # django-axes turns a lockout flagged during the request into the lockout page: last.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --------------------------------------------------------------------------- data stores

(BASE_DIR / "var").mkdir(exist_ok=True)
_EMBEDDED_DATABASE = f"sqlite:///{BASE_DIR / 'var' / 'keyturn.sqlite3'}"
_EMBEDDED_CACHE = "locmemcache://keyturn"


def _store_url(name: str, default: str, parse, schemes, example: str) -> dict:
    """The parsed URL in ``name``, or the embedded default when it is unset. A URL that is set
    but empty or of an unknown scheme is a start-up problem (never a silent fall back to the
    default, which would put a deployment's data somewhere else). The URL itself is never
    repeated: it may hold a password."""
    url = env.str(name, default=default)
    scheme = url.partition("://")[0]
    if url.strip() and scheme in schemes:
        try:
            return parse(url)
        except (ImproperlyConfigured, KeyError, ValueError):
            pass
    problem = "is set but empty" if not url.strip() else "is not a URL Keyturn can use"
    _PROBLEMS.append(
        f"{name} {problem}: unset it for the embedded default, or give one such as {example}."
    )
    return parse(default)


DATABASES = {
    "default": _store_url(
        "DATABASE_URL",
        _EMBEDDED_DATABASE,
        environ.Env.db_url_config,
        environ.Env.DB_SCHEMES,
        "postgres://keyturn@127.0.0.1:5432/keyturn",
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Take the write lock when a transaction starts, so two writers queue up instead of one
    # failing with "database is locked" when it upgrades a read lock mid-transaction.
    # WAL lets readers (the key-verification lookup above all) go on while a write commits.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Reuse connections between requests: a fresh one costs more than the key lookup it serves
# (SQLite re-reads its schema and re-runs the PRAGMAs above; PostgreSQL authenticates).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: run the key-verification lookup as a named prepared statement (Django's own
# queries are never prepared). Turn off behind PgBouncer older than 1.21 in transaction mode.
PORTAL_DB_PREPARED_STATEMENTS = _switch("PORTAL_DB_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": _store_url(
        "CACHE_URL",
        _EMBEDDED_CACHE,
        environ.Env.cache_url_config,
        environ.Env.CACHE_SCHEMES,
        "redis://127.0.0.1:6379/0",
    )
}
# django-environ hands Django's own Redis backend `?key_prefix=`, `?timeout=` and `?version=` in
# lower case, which Django never reads: lift them to the names it does (docs/deploy.md).
for _option in ("key_prefix", "timeout", "version"):
    if _option in CACHES["default"]:
        CACHES["default"][_option.upper()] = CACHES["default"].pop(_option)
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache":
    # The in-process cache holds last-use counters until they are written; its default of
    # 300 entries would cull (and so lose) counts once a few hundred keys are in use.
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 100_000)

# --------------------------------------------------------------------------- auth and i18n

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every start while it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --------------------------------------------------------------------------- transport security

_SECURE = _switch("PORTAL_HTTPS", True) and not DEBUG
SECURE_SSL_REDIRECT = _SECURE
SESSION_COOKIE_SECURE = _SECURE
CSRF_COOKIE_SECURE = _SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _SECURE
# Preloading is a promise to browsers that is slow to take back; opt out before first deploy
# if the domain's subdomains are not all on HTTPS.
SECURE_HSTS_PRELOAD = _switch("SECURE_HSTS_PRELOAD", True) and _SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# Lax, not Strict: the portal's e-mails link to its pages, and Strict would make every such
# link look signed out. Lax already keeps both cookies off cross-site POSTs and subrequests.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Nothing reads the CSRF cookie from JavaScript: the admin's forms and the API docs page take
# the token from the page, and static/js only makes same-origin GETs.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --------------------------------------------------------------------------- reverse proxies
# Deployment behind a TLS-terminating proxy (docs/deploy.md). Nothing a client sends about its
# address, host or scheme is believed unless it came through a proxy listed here.

# Addresses or networks of the proxies in front of the servers; empty: no proxy is trusted.
PORTAL_TRUSTED_PROXIES = [entry.strip() for entry in env.list("PORTAL_TRUSTED_PROXIES", default=[])]
try:
    parse_networks(PORTAL_TRUSTED_PROXIES)
except ValueError as error:
    _PROBLEMS.append(f"PORTAL_TRUSTED_PROXIES: {error}.")
# First of all: everything after it (SecurityMiddleware's HTTPS redirect, audit addresses,
# rate limits, the lockout) must see the client's address and no header a client forged.
MIDDLEWARE.insert(0, "portal.proxies.TrustedProxyMiddleware")
# Only believed from a trusted proxy (the middleware drops them from anyone else), so both
# need PORTAL_TRUSTED_PROXIES.
_TRUST_X_FORWARDED_PROTO = _switch("PORTAL_TRUST_X_FORWARDED_PROTO", False)
if _TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = _switch("PORTAL_USE_X_FORWARDED_HOST", False)
for _name, _on in (
    ("PORTAL_TRUST_X_FORWARDED_PROTO", _TRUST_X_FORWARDED_PROTO),
    ("PORTAL_USE_X_FORWARDED_HOST", USE_X_FORWARDED_HOST),
):
    if _on and not PORTAL_TRUSTED_PROXIES:
        _PROBLEMS.append(f"{_name} needs PORTAL_TRUSTED_PROXIES: the proxies it trusts.")

# --------------------------------------------------------------------------- Keyturn

# Development-only stand-in, used when DEBUG is on and a key is missing. Public by design:
# it is in this file, so nothing it protects is protected.
_DEV_KEY = "dev:" + "ZGV2ZWxvcG1lbnQtb25seS1rZXktZG8tbm90LWRlcGw="


def _keyring(name: str, *, single: bool = False):
    raw = env.str(name, default="")
    if not raw and _LENIENT:
        raw = _DEV_KEY
        PORTAL_DEV_KEYS_IN_USE.append(name)
    try:
        ring = parse_keyring(name, raw)
    except KeyringError as error:
        _PROBLEMS.append(str(error))
        return None
    if single and len(ring.keys) != 1:
        _PROBLEMS.append(f"{name} holds exactly one key ('id:base64'), not {len(ring.keys)}.")
        return None
    return ring


PORTAL_ENCRYPTION_KEYS = _keyring("PORTAL_ENCRYPTION_KEYS")
PORTAL_TOKEN_HASH_KEYS = _keyring("PORTAL_TOKEN_HASH_KEYS")
# The audit chain has one key (id, bytes): replacing it means re-anchoring the chain.
_audit_ring = _keyring("PORTAL_AUDIT_KEY", single=True)
PORTAL_AUDIT_KEY = _audit_ring.current if _audit_ring else None


def _whole_number(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= maximum:
        _PROBLEMS.append(
            f"{name} must be a whole number from {minimum} to {maximum} (got {raw[:20]!r})."
        )
        return default
    return int(raw)


# A Redis that accepts connections but stops answering must not hold every request that
# counts a rate limit or a use (introspection, the API) for redis-py's default of 5 s per wait:
# each wait is bounded by this instead, and past it the request goes on as with Redis down
# (fail open, logged).
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    _redis_wait = _whole_number("PORTAL_REDIS_TIMEOUT_MS", 500, 50, 30_000) / 1000
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("socket_timeout", _redis_wait)
    CACHES["default"]["OPTIONS"].setdefault("socket_connect_timeout", _redis_wait)

PORTAL_REACTIVATION_WINDOW_MINUTES = _whole_number(
    "PORTAL_REACTIVATION_WINDOW_MINUTES", 60, 0, 24 * 60
)
PORTAL_MAX_LIFETIME_DAYS = _whole_number("PORTAL_MAX_LIFETIME_DAYS", 365, 1, 10 * 365)
PORTAL_DEFAULT_OVERLAP_HOURS = _whole_number("PORTAL_DEFAULT_OVERLAP_HOURS", 24, 0, 30 * 24)
# Introspection: requests per minute allowed to each calling credential (0 turns the limit off).
PORTAL_INTROSPECT_RATE = _whole_number("PORTAL_INTROSPECT_RATE", 6000, 0, 10_000_000)
# Last use is counted in the cache and written at most once per version per this many seconds.
PORTAL_LAST_USE_FLUSH_SECONDS = _whole_number("PORTAL_LAST_USE_FLUSH_SECONDS", 60, 1, 3600)

# Automation API: requests per minute allowed to each management key's credential (0: no limit).
PORTAL_API_RATE = _whole_number("PORTAL_API_RATE", 600, 0, 10_000_000)
# GitHub secret-scanning intake: requests per minute allowed from one source address.
PORTAL_EXPOSURE_INTAKE_RATE = _whole_number("PORTAL_EXPOSURE_INTAKE_RATE", 120, 0, 10_000_000)


def _scanning_keys(path: str) -> dict[str, str]:
    """GitHub's secret-scanning public keys, {identifier: PEM}, from a saved copy of the JSON
    document GitHub publishes ({"public_keys": [{"key_identifier", "key"}, ...]}). Read from a
    file the operator downloads: the portal never fetches keys over the network itself."""
    if not path:
        return {}
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        return {str(k["key_identifier"]): str(k["key"]) for k in document["public_keys"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        _PROBLEMS.append(
            f"PORTAL_GITHUB_SCANNING_KEYS_FILE ({path}) is not GitHub's public-keys JSON "
            f"document: {type(error).__name__}."
        )
        return {}


PORTAL_GITHUB_SCANNING_KEYS = _scanning_keys(
    env.str("PORTAL_GITHUB_SCANNING_KEYS_FILE", default="")
)
# Revealing, rotating, revoking, reactivating, reporting exposures and managing users ask for
# the password (and second factor) again once this many seconds have passed since it was last
# entered (credentials/sudo.py).
PORTAL_SUDO_SECONDS = _whole_number("PORTAL_SUDO_SECONDS", 600, 60, 24 * 3600)
# A guided rotation's revoke step asks twice while the old version was used this recently.
PORTAL_ROTATION_QUIET_MINUTES = _whole_number("PORTAL_ROTATION_QUIET_MINUTES", 15, 0, 24 * 60)

# --------------------------------------------------------------------------- sessions and headers
# Issue 7. Transport settings (HSTS, Secure cookies, Referrer-Policy, nosniff, X-Frame-Options)
# are in "transport security" above; docs/headers.md describes the whole set.

# A signed-in session ends after this long without a request from its person
# (portal/session_limits.py) ...
PORTAL_SESSION_IDLE_MINUTES = _whole_number("PORTAL_SESSION_IDLE_MINUTES", 30, 1, 24 * 60)
# ... and this long after its sign-in, however busy.
PORTAL_SESSION_MAX_HOURS = _whole_number("PORTAL_SESSION_MAX_HOURS", 12, 1, 30 * 24)
# The cookie (and the stored session) never outlive the session's limit either.
SESSION_COOKIE_AGE = PORTAL_SESSION_MAX_HOURS * 3600

# Content-Security-Policy (django-csp). Nothing inline anywhere: no <script> body, no event
# handler attribute, no style attribute or <style> element, in our templates or the admin's
# (Django 5.2's admin templates have none on the pages we serve; tests/browser/test_browser_csp.py
# fails on any violation), so no nonce and no 'unsafe-inline' either. Swagger UI's page widens
# img-src for its own data: icons, on that page alone (credentials/api/management.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.NONE],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],  # rotation.js refreshes its panel; Swagger UI fetches the spec
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

# Permissions-Policy (portal/headers.py): every powerful feature off, for this page and any
# frame in it. Only clipboard-write stays, for this origin: the show-once page's Copy button.
PORTAL_PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer", "ambient-light-sensor", "autoplay", "bluetooth", "camera",
        "display-capture", "encrypted-media", "fullscreen", "gamepad", "geolocation",
        "gyroscope", "hid", "idle-detection", "local-fonts", "magnetometer", "microphone",
        "midi", "payment", "picture-in-picture", "publickey-credentials-get",
        "screen-wake-lock", "serial", "usb", "web-share", "xr-spatial-tracking",
    )
} | {"clipboard-write": ["self"]}  # fmt: skip

# --------------------------------------------------------------------------- webhooks and clock


def _seconds_list(name: str, default: str, minimum: int, maximum: int) -> list[int]:
    raw = env.str(name, default=default)
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts or not all(
        p.isascii() and p.isdigit() and minimum <= int(p) <= maximum for p in parts
    ):
        _PROBLEMS.append(
            f"{name} is a comma-separated list of whole numbers from {minimum} to {maximum} "
            f"(got {raw[:40]!r})."
        )
        parts = default.split(",")
    return [int(part) for part in parts]


# Deliveries to loopback, private, link-local and metadata addresses are refused unless this
# is on (tests and the local demo, whose receivers run on 127.0.0.1).
PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = _switch("PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS = _whole_number(
    "PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS", 5, 1, 60
)
PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS = _whole_number(
    "PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS", 10, 1, 120
)
PORTAL_WEBHOOK_MAX_RESPONSE_BYTES = _whole_number(
    "PORTAL_WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024, 1024, 1024 * 1024
)
# Waits between attempts, in seconds: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
# 10 h (about 28 hours in all), each jittered by 20%.
PORTAL_WEBHOOK_RETRY_SCHEDULE = _seconds_list(
    "PORTAL_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000", 0, 7 * 24 * 3600
)
PORTAL_WEBHOOK_DISABLE_AFTER_FAILURES = _whole_number(
    "PORTAL_WEBHOOK_DISABLE_AFTER_FAILURES", 30, 1, 100000
)
# A worker's claim on a delivery; after it, the clock hands the delivery to another worker.
# Must exceed connect + read timeouts.
PORTAL_WEBHOOK_LEASE_SECONDS = _whole_number("PORTAL_WEBHOOK_LEASE_SECONDS", 120, 5, 3600)
PORTAL_WEBHOOK_RECEIPT_RETENTION_DAYS = _whole_number(
    "PORTAL_WEBHOOK_RECEIPT_RETENTION_DAYS", 30, 1, 3650
)
PORTAL_EXPIRY_NOTICE_DAYS = _seconds_list("PORTAL_EXPIRY_NOTICE_DAYS", "7,1", 1, 365)
PORTAL_CLOCK_INTERVAL_SECONDS = _whole_number("PORTAL_CLOCK_INTERVAL_SECONDS", 60, 1, 3600)
if (
    PORTAL_WEBHOOK_LEASE_SECONDS
    <= PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS + PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS
):
    _PROBLEMS.append(
        "PORTAL_WEBHOOK_LEASE_SECONDS must be longer than the connect and read timeouts together."
    )

# Background work: django-tasks on the database queue (`manage.py db_worker`); several workers
# share it safely (they claim tasks with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --------------------------------------------------------------------------- sign-in hardening
# Two-factor sign-in (django-otp) and lockout (django-axes); the README's "Signing in" says why.

# Outside DEBUG every staff account must have a second factor. With it off (the DEBUG default)
# only those who enrolled are asked for a code; whoever enrolled is always asked.
PORTAL_2FA_REQUIRED = _switch("PORTAL_2FA_REQUIRED", not DEBUG)
OTP_TOTP_ISSUER = "Keyturn"
# Wrong codes are limited by the lockout below (each counts as a failed sign-in), not by
# django-otp's per-device back-off, which would refuse a right code typed soon after a wrong
# one with the same "not valid" and count that as one more failure.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# Axes' backend comes first: it refuses a locked-out username or address before any password
# is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# Each alone: by username (one account guessed at from many addresses) and by address (one
# address trying many usernames). Staff are few and their usernames easy to guess, so the
# combination alone would let a botnet guess forever; an attacker can lock an account for the
# cool-off, which an administrator can lift at once.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = _whole_number("PORTAL_LOCKOUT_FAILURE_LIMIT", 5, 1, 1000)
AXES_COOLOFF_TIME = timedelta(
    minutes=_whole_number("PORTAL_LOCKOUT_COOLOFF_MINUTES", 15, 1, 7 * 24 * 60)
)
# Never reset on a password success: a second factor is still to come, and resetting there
# would let someone who knows the password guess codes without end.
AXES_RESET_ON_SUCCESS = False
# Tries while locked out are refused, not counted: the lock ends a cool-off after the last
# counted failure, as the lockout page says.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The client is REMOTE_ADDR alone; a trusted reverse proxy's header is turned into
# REMOTE_ADDR by middleware before this, never read here.
AXES_CLIENT_IP_CALLABLE = "credentials.signin.client_ip"
AXES_LOCKOUT_CALLABLE = "credentials.signin.lockout_response"
# Axes keeps failed requests' form data: never the password or a one-time code.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "code"]
# Keyturn lists lockouts itself (read-only, with an audited unlock); axes' own pages show
# raw form data and let anyone with model rights edit attempts.
AXES_ENABLE_ADMIN = False
# Axes would also keep a row per successful sign-in, forever, with no page to read it on.
AXES_DISABLE_ACCESS_LOG = True

if _PROBLEMS and not _GENERATING_KEYS:
    raise ImproperlyConfigured("Keyturn cannot start:\n  - " + "\n  - ".join(_PROBLEMS))

# --------------------------------------------------------------------------- logging

DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.errors.KeyturnExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # At DEBUG, Django's template engine logs every missing variable with the whole template
    # context, which on a show-once page holds the plaintext: never below INFO, whatever
    # LOG_LEVEL says.
    "loggers": {
        "django.template": {"level": "INFO"},
        # Axes announces its configuration at every process start; its warnings still show.
        "axes.apps": {"level": "WARNING"},
        # With DEBUG on, statements are logged with their values: never django-otp's, whose
        # values are TOTP seeds.
        "django.db.backends": {"filters": ["hide_second_factor_queries"]},
    },
    "filters": {"hide_second_factor_queries": {"()": "portal.log_filters.HideSecondFactorQueries"}},
}
