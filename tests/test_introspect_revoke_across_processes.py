"""A revoke is seen by the very next introspection in every server process: nothing is cached.

A real gunicorn with two worker processes serves introspection from the test's own database;
the test revokes in its own process and asks again at once.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import connection

from credentials import lifecycle
from credentials.models import Kind, RevokeReason
from tests.states import ACTOR

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.fixture
def server():
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "PORTAL_HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CACHE_URL": "locmemcache://",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v1/introspect", timeout=2)  # noqa: S310
        except urllib.error.HTTPError:
            break  # 405: it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=20)


def ask(base: str, token: str, caller: str) -> bytes:
    request = urllib.request.Request(  # noqa: S310 (a fixed http URL on 127.0.0.1)
        f"{base}/api/v1/introspect",
        data=urlencode({"token": token}).encode(),
        headers={
            "Authorization": f"Bearer {caller}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.read()


def test_a_revoke_is_visible_to_the_next_introspection_in_every_process(server, issue):
    caller = issue(Kind.API_KEY, name="Service", scopes=["introspect"]).plaintext
    token = issue(Kind.API_KEY, name="Presented")
    # Enough requests that both workers have answered (and warmed up) before the revoke.
    for _ in range(20):
        assert b'"active": true' in ask(server, token.plaintext, caller)

    lifecycle.version_revoke(actor=ACTOR, version=token.version, reason=RevokeReason.ROUTINE)

    answers = {ask(server, token.plaintext, caller) for _ in range(20)}
    assert answers == {b'{"active": false}'}
