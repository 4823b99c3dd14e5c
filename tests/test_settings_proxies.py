"""The deployment settings (reverse proxies, the shared cache) are read from the environment,
checked, and pass `check --deploy`."""

import pytest

from tests.test_settings import _manage, fresh_keys  # noqa: F401 (a fixture)

SHOW = (
    "from django.conf import settings as s; "
    "print(s.PORTAL_TRUSTED_PROXIES, getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
    "s.USE_X_FORWARDED_HOST, s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS)"
)


def test_nothing_forwarded_is_believed_unless_configured(fresh_keys):  # noqa: F811
    done = _manage("shell", "-c", SHOW, **fresh_keys)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[] None False [] []"


def test_a_configured_proxy_deployment_is_read_from_the_environment(fresh_keys):  # noqa: F811
    done = _manage(
        "shell",
        "-c",
        SHOW,
        PORTAL_TRUSTED_PROXIES="127.0.0.1, 10.1.0.0/16",
        PORTAL_TRUST_X_FORWARDED_PROTO="1",
        PORTAL_USE_X_FORWARDED_HOST="1",
        ALLOWED_HOSTS="keyturn.example.com",
        CSRF_TRUSTED_ORIGINS="https://keyturn.example.com",
        **fresh_keys,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "['127.0.0.1', '10.1.0.0/16'] ('HTTP_X_FORWARDED_PROTO', 'https') True "
        "['keyturn.example.com'] ['https://keyturn.example.com']"
    )


def test_a_deployment_behind_a_proxy_passes_check_deploy(fresh_keys):  # noqa: F811
    done = _manage(
        "check",
        "--deploy",
        ALLOWED_HOSTS="keyturn.example.com",
        CSRF_TRUSTED_ORIGINS="https://keyturn.example.com",
        PORTAL_TRUSTED_PROXIES="127.0.0.1",
        PORTAL_TRUST_X_FORWARDED_PROTO="1",
        **fresh_keys,
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PORTAL_TRUSTED_PROXIES": "10.0.0.1/8"}, "PORTAL_TRUSTED_PROXIES: '10.0.0.1/8'"),
        ({"PORTAL_TRUSTED_PROXIES": "proxy.internal"}, "is not an address or a network"),
        ({"PORTAL_TRUSTED_PROXIES": "0.0.0.0/0"}, "would trust every address"),
        ({"PORTAL_TRUST_X_FORWARDED_PROTO": "1"}, "PORTAL_TRUST_X_FORWARDED_PROTO needs"),
        ({"PORTAL_USE_X_FORWARDED_HOST": "1"}, "PORTAL_USE_X_FORWARDED_HOST needs"),
    ],
)
def test_a_bad_proxy_setting_stops_start_up_naming_it(fresh_keys, variables, message):  # noqa: F811
    done = _manage("check", **{**fresh_keys, **variables})
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_key_prefix_in_cache_url_reaches_djangos_redis_backend(fresh_keys):  # noqa: F811
    done = _manage(
        "shell",
        "-c",
        "from django.core.cache import cache; print(cache.key_prefix, cache.default_timeout)",
        CACHE_URL="redis://127.0.0.1:6379/3?key_prefix=keyturn-blue&timeout=600",
        **fresh_keys,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "keyturn-blue 600"
