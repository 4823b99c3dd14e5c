"""The introspection and last-use settings are read from the environment and checked."""

import pytest

from tests.test_settings import _manage, fresh_keys  # noqa: F401 (a fixture)

SHOW = (
    "from django.conf import settings; "
    "print(settings.CACHES['default']['BACKEND'], settings.CACHES['default']['LOCATION'], "
    "settings.PORTAL_INTROSPECT_RATE, settings.PORTAL_LAST_USE_FLUSH_SECONDS)"
)


def test_cache_url_redis_selects_djangos_own_redis_backend(fresh_keys):  # noqa: F811
    done = _manage(
        "shell",
        "-c",
        SHOW,
        CACHE_URL="redis://127.0.0.1:6379/1",
        PORTAL_INTROSPECT_RATE="120",
        PORTAL_LAST_USE_FLUSH_SECONDS="30",
        **fresh_keys,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split() == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://127.0.0.1:6379/1",
        "120",
        "30",
    ]


def test_the_defaults_are_a_generous_rate_and_a_one_minute_flush(fresh_keys):  # noqa: F811
    done = _manage("shell", "-c", SHOW, **fresh_keys)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split()[2:] == ["6000", "60"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_INTROSPECT_RATE", "-1"),
        ("PORTAL_INTROSPECT_RATE", "lots"),
        ("PORTAL_LAST_USE_FLUSH_SECONDS", "0"),
        ("PORTAL_LAST_USE_FLUSH_SECONDS", "3601"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_it(fresh_keys, name, value):  # noqa: F811
    done = _manage("check", **{name: value}, **fresh_keys)
    assert done.returncode == 2
    assert name in done.stderr
    assert "Traceback" not in done.stderr
