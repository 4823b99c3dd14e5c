import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from hypothesis import settings as hypothesis_settings

from credentials import lifecycle
from credentials.audit import Actor
from credentials.models import Kind
from credentials.roles import ensure_roles

# CI runs each property test on the same examples every time, so a red run can be replayed;
# local runs keep drawing fresh ones, which is how new counterexamples are found. Neither
# judges speed: a busy two-core machine must not fail a test by being slow.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROLE_GROUPS = {
    "security": "Security staff",
    "auditor": "Auditors",
    "administrator": "Administrators",
}


def pytest_collection_modifyitems(config, items):
    """Skip `postgres` tests off PostgreSQL, unless CI says they must run (then fail loudly)."""
    if connection.vendor == "postgresql":
        return
    if os.environ.get("KEYTURN_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(
            "KEYTURN_REQUIRE_POSTGRES=1, but the database is not PostgreSQL: check DATABASE_URL"
        )
    skip = pytest.mark.skip(
        reason="needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test "
        "(.ci/run does)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def system_actor():
    return Actor.system("tests")


def _user_in(username, group_name):
    ensure_roles()  # a transactional test before this one may have flushed them
    user = get_user_model().objects.create_user(
        username=username, password="correct horse battery staple", is_staff=True
    )
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def security_user(db):
    return _user_in("sec", ROLE_GROUPS["security"])


@pytest.fixture
def auditor_user(db):
    return _user_in("aud", ROLE_GROUPS["auditor"])


@pytest.fixture
def admin_user(db):
    return _user_in("adm", ROLE_GROUPS["administrator"])


@pytest.fixture
def outsider_user(db):
    return _user_in("outsider", None)


@pytest.fixture
def app(db, system_actor):
    return lifecycle.app_create(
        actor=system_actor,
        name="Storefront",
        owner_team="Commerce",
        contact_email="commerce@example.com",
    )


@pytest.fixture
def issue(app, system_actor):
    """Issue a credential of any kind on the test app: ``issue(Kind.API_KEY, ...)``."""

    def _issue(kind=Kind.API_KEY, **options):
        options.setdefault("name", f"test {kind}")
        if kind == Kind.ENDPOINT_SECRET:
            return lifecycle.endpoint_create(
                actor=system_actor,
                app=app,
                url=options.pop("url", "https://hooks.example.com/keyturn"),
            )
        if kind == Kind.SERVICE_ACCOUNT_KEY:
            options.setdefault("public_key_pem", new_public_key_pem())
        return lifecycle.credential_issue(actor=system_actor, app=app, kind=kind, **options)

    return _issue


@pytest.fixture
def caller_key(issue):
    """The plaintext of a key scoped ``introspect``, as a service calling introspection holds."""
    return issue(Kind.API_KEY, name="Introspecting service", scopes=["introspect"]).plaintext


def new_public_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects real passwords; tests only need it to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # Production serves hashed names from a manifest that `collectstatic` writes; tests render
    # pages without depending on whether it ran.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --------------------------------------------------------------------------- Redis

REDIS_URL = os.environ.get("KEYTURN_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")


@pytest.fixture
def redis_cache(settings):
    """Point Django's default cache at Redis, under a key prefix of this test's own.

    Skips when Redis does not answer, unless ``KEYTURN_REQUIRE_REDIS=1`` (then fails loudly).
    The test's keys are deleted afterwards; nothing else in that Redis database is touched.
    """
    import uuid

    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        if os.environ.get("KEYTURN_REQUIRE_REDIS") == "1":
            pytest.fail(f"KEYTURN_REQUIRE_REDIS=1, but Redis at {REDIS_URL} is down: {error}")
        pytest.skip(f"needs Redis at {REDIS_URL} (set KEYTURN_TEST_REDIS_URL): {error}")
    prefix = f"keyturn-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    yield client
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty in-process cache: no counter or rate limit carries over.

    Only the in-process cache is cleared; a Redis one is never flushed (``redis_cache`` gives
    each test a key prefix of its own instead).
    """
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    from credentials import ratelimit, usage

    def clear():
        if isinstance(caches["default"], LocMemCache):
            caches["default"].clear()
        usage.forget_local_state()
        ratelimit.forget_reservations()

    clear()
    yield
    clear()


@pytest.fixture(autouse=True)
def _private_webhook_targets(settings):
    # Test receivers listen on 127.0.0.1, which production refuses to deliver to; the tests of
    # that refusal turn it back off. Set here, so no test depends on what .env says.
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture(autouse=True)
def _two_factor_optional(settings):
    # Most tests sign in with force_login, which has no second factor; the two-factor tests
    # turn the requirement back on. Lockout state (axes' AccessAttempt rows, settings'
    # database handler) goes with each test's rollback or flush, like every other row.
    settings.PORTAL_2FA_REQUIRED = False
