"""A Redis that accepts connections and then never answers does not hold introspection: a
deployed Redis cache bounds each wait on it (PORTAL_REDIS_TIMEOUT_MS, 500 ms unless set, where
redis-py alone would wait 5 s), and past it the request is answered as with Redis down."""

import signal
import socket
import threading

import pytest

from tests.deployment import PRODUCTION, fresh_keys, settings_of
from tests.introspection import introspect

pytestmark = pytest.mark.django_db


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def _deployed_cache(port, **variables):
    url = f"redis://127.0.0.1:{port}/0"
    return settings_of(["CACHES"], **PRODUCTION, **fresh_keys(), CACHE_URL=url, **variables)[
        "CACHES"
    ]


def test_a_deployed_redis_cache_bounds_every_wait_on_redis():
    options = _deployed_cache(6379)["default"]["OPTIONS"]
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.5
    options = _deployed_cache(6379, PORTAL_REDIS_TIMEOUT_MS="2000")["default"]["OPTIONS"]
    assert options["socket_timeout"] == 2.0


@pytest.mark.parametrize("bad", ["0", "-1", "fast", "999999"])
def test_a_bad_redis_timeout_stops_start_up_naming_it(bad):
    from tests.deployment import manage

    done = manage(
        "check", **PRODUCTION, **fresh_keys(), CACHE_URL="redis://127.0.0.1:6379/0",
        PORTAL_REDIS_TIMEOUT_MS=bad,
    )  # fmt: skip
    assert done.returncode != 0
    assert "PORTAL_REDIS_TIMEOUT_MS must be a whole number from 50 to 30000" in done.stderr


def test_introspection_is_answered_while_redis_hangs(client, settings, silent_server, issue):
    from credentials.models import Kind

    settings.CACHES = _deployed_cache(silent_server, PORTAL_REDIS_TIMEOUT_MS="200")
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"])
    token = issue(Kind.API_KEY, name="Presented")

    # Should a bound ever go, an alarm fails the test instead of hanging the suite (a liveness
    # check; no figure of time is asserted).
    def hung(signum, frame):
        raise AssertionError("introspection waited on the silent Redis with no bound")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        response = introspect(client, token.plaintext, caller.plaintext)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert response.status_code == 200
    assert response.json()["active"] is True
