"""Settings for `bench/introspect.py`: the portal's own, served by gunicorn, plus bench routes.

The server gets ``bench.introspect_urls`` (the portal's routes and one trivial JSON view to
compare against) and a middleware that reports the last-use writes each introspection made.
Neither exists outside the benchmark. The database is one of its own, created fresh by
`bench/introspect.py` and removed at the end:

- SQLite: ``var/bench-introspect.sqlite3`` (or the path in ``KEYTURN_BENCH_INTROSPECT_DATABASE``);
- PostgreSQL: ``keyturn_bench_introspect`` on the same server (or that variable's name).

The cache is whatever ``CACHE_URL`` says (Redis to share counters between workers).
"""

import os

from portal.settings import *  # noqa: F403
from portal.settings import BASE_DIR, CACHES, DATABASES, MIDDLEWARE

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
# Plain HTTP on 127.0.0.1: no redirect to HTTPS, no secure-only cookies to get in the way.
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False

ROOT_URLCONF = "bench.introspect_urls"
# First, so that every statement the request runs (the view's and other middleware's) counts.
MIDDLEWARE = ["bench.introspect_urls.count_last_use_writes", *MIDDLEWARE]

# A key prefix of this run's own (set by bench/introspect.py for the server too), so that
# counters left in a shared Redis by an earlier run never land on this run's rows.
CACHES = {
    "default": {**CACHES["default"], "KEY_PREFIX": os.environ.get("KEYTURN_BENCH_CACHE_PREFIX", "")}
}

# High enough never to refuse the load, but on: its cache operations are part of the cost.
PORTAL_INTROSPECT_RATE = 10_000_000

BENCH_SERVER_DATABASE = dict(DATABASES["default"])
_IS_SQLITE = BENCH_SERVER_DATABASE["ENGINE"] == "django.db.backends.sqlite3"
_DEFAULT_NAME = (
    str(BASE_DIR / "var" / "bench-introspect.sqlite3") if _IS_SQLITE else "keyturn_bench_introspect"
)
DATABASES = {
    "default": {
        **BENCH_SERVER_DATABASE,
        "NAME": os.environ.get("KEYTURN_BENCH_INTROSPECT_DATABASE") or _DEFAULT_NAME,
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
