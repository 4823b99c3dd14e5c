"""Settings for `bench/verify.py`: the portal's own, plus the library it is measured against.

The benchmark writes 200,000 rows, so it never uses the portal's database. It runs on the same
engine as ``DATABASE_URL`` (or the portal's SQLite default) but on a database of its own, which
`bench/verify.py` creates fresh at the start and removes at the end:

- SQLite: ``var/bench.sqlite3`` (or the path in ``KEYTURN_BENCH_DATABASE``);
- PostgreSQL: ``keyturn_bench`` on the same server (or the name in ``KEYTURN_BENCH_DATABASE``).
"""

import os

from portal.settings import *  # noqa: F403
from portal.settings import BASE_DIR, DATABASES, INSTALLED_APPS

# DEBUG keeps every executed query in memory and adds to each call; production runs without it.
DEBUG = False

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework", "rest_framework_api_key"]

# Where the scratch database is created and dropped from (PostgreSQL): the configured one.
BENCH_SERVER_DATABASE = dict(DATABASES["default"])

_IS_SQLITE = BENCH_SERVER_DATABASE["ENGINE"] == "django.db.backends.sqlite3"
_DEFAULT_NAME = str(BASE_DIR / "var" / "bench.sqlite3") if _IS_SQLITE else "keyturn_bench"
DATABASES = {
    "default": {
        **BENCH_SERVER_DATABASE,
        "NAME": os.environ.get("KEYTURN_BENCH_DATABASE") or _DEFAULT_NAME,
    }
}
