"""Settings for `bench/admin_scale.py`: the portal's own, as deployed, on a database of its own.

The benchmark writes over a million rows, so it never uses the portal's database. It runs on
the same engine as ``DATABASE_URL`` (or the portal's SQLite default) but on a database that
`bench/admin_scale.py` creates fresh at the start and removes at the end:

- SQLite: ``var/bench-admin.sqlite3`` (or the path in ``KEYTURN_BENCH_ADMIN_DATABASE``);
- PostgreSQL: ``keyturn_bench_admin`` on the same server (or the name in
  ``KEYTURN_BENCH_ADMIN_DATABASE``).

Unlike `bench/settings.py` it adds no app: the admin pages are measured as the portal has them.
"""

import os

from portal.settings import *  # noqa: F403
from portal.settings import BASE_DIR, DATABASES, STORAGES

# DEBUG keeps every executed query in memory and adds to each call; production runs without it.
DEBUG = False

# Pages are requested in-process by django.test.Client, whose host is "testserver".
ALLOWED_HOSTS = ["testserver"]

# The portal's manifest storage needs `collectstatic` to have run; plain storage only builds
# the URLs the admin's templates print, which is all a render needs.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Where the scratch database is created and dropped from (PostgreSQL): the configured one.
BENCH_SERVER_DATABASE = dict(DATABASES["default"])

_IS_SQLITE = BENCH_SERVER_DATABASE["ENGINE"] == "django.db.backends.sqlite3"
_DEFAULT_NAME = (
    str(BASE_DIR / "var" / "bench-admin.sqlite3") if _IS_SQLITE else "keyturn_bench_admin"
)
DATABASES = {
    "default": {
        **BENCH_SERVER_DATABASE,
        "NAME": os.environ.get("KEYTURN_BENCH_ADMIN_DATABASE") or _DEFAULT_NAME,
    }
}
