"""The scale-out deployment of docs/deploy.md, for real: two gunicorn servers (two worker
processes each) and two `db_worker` task workers on one PostgreSQL database and one Redis,
with the test acting as the reverse proxy in front of them.

Rotations and revokes made through one server are seen by the other on its very next request,
concurrent rotations through both make exactly one version per Idempotency-Key, uses counted
by every process add up in the shared cache, and the webhook events the changes cause reach
the receiver once per message id, correctly signed, delivered by both workers side by side.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from credentials import usage
from credentials.audit import verify_chain
from credentials.models import (
    AuditEvent,
    CredentialVersion,
    Delivery,
    IdempotencyRecord,
    Kind,
    State,
    WebhookMessage,
)
from tests.management_api import management_key
from tests.receiver import Receiver
from tests.test_introspect_revoke_across_processes import database_url, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
CLIENT = "198.51.100.7"  # the address the "proxy" (this test) reports for its client
HOLD = 10  # seconds the receiver waits for the second worker's delivery


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict


class Server:
    """One gunicorn on a free port of 127.0.0.1; requests as the proxy in front of it."""

    def __init__(self, base: str):
        self.base = base

    def request(self, method: str, path: str, *, key: str, body=None, form=None, **headers):
        data, content_type = None, None
        if body is not None:
            data, content_type = json.dumps(body).encode(), "application/json"
        if form is not None:
            from urllib.parse import urlencode

            data, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1, a port of ours)
            self.base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {key}",
                "X-Forwarded-For": CLIENT,
                **({"Content-Type": content_type} if content_type else {}),
                **headers,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return Answer(response.status, dict(response.headers), json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), json.loads(error.read() or b"{}"))

    def introspect(self, token: str, *, caller: str) -> dict:
        answer = self.request("POST", "/api/v1/introspect", key=caller, form={"token": token})
        assert answer.status == 200, answer
        return answer.body

    def rotate(self, credential_id: int, *, key: str, idempotency_key: str, overlap=3600):
        return self.request(
            "POST",
            f"/api/v1/credentials/{credential_id}/rotations",
            key=key,
            body={"overlap_seconds": overlap},
            **{"Idempotency-Key": idempotency_key},
        )

    def revoke(self, credential_id: int, number: int, *, key: str, idempotency_key: str):
        return self.request(
            "POST",
            f"/api/v1/credentials/{credential_id}/versions/{number}/revoke",
            key=key,
            body={"reason": "routine"},
            **{"Idempotency-Key": idempotency_key},
        )


class Cluster:
    """Processes of this test only, each in a session of its own so that stopping it stops its
    children too (gunicorn's workers), and nothing else on the machine."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the child holds its own copy
        self.processes.append((name, process))
        return process

    def gunicorn(self, name: str) -> Server:
        port = free_port()
        self.start(
            name, "-m", "gunicorn", "portal.wsgi", "--workers", "2",
            "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--log-level", "warning",
        )  # fmt: skip
        return Server(f"http://127.0.0.1:{port}")

    def db_worker(self, name: str) -> None:
        self.start(
            name, "manage.py", "db_worker", "--no-reload", "--interval", "0.1",
            "--no-startup-delay", "--worker-id", name,
        )  # fmt: skip

    def wait_until_serving(self, *servers: Server, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        for server in servers:
            while True:
                try:
                    urllib.request.urlopen(f"{server.base}/api/v1/introspect", timeout=2)  # noqa: S310
                except urllib.error.HTTPError:
                    break  # 405 to a GET: it answers
                except OSError:
                    self.check_alive()
                    if time.monotonic() > deadline:
                        pytest.fail(f"a server did not start:\n{self.tails()}")
                    time.sleep(0.2)

    def check_alive(self) -> None:
        dead = [name for name, process in self.processes if process.poll() is not None]
        if dead:
            pytest.fail(f"{', '.join(dead)} exited:\n{self.tails()}")

    def tails(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}"
            for path in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def cluster(redis_cache, tmp_path):
    """Two servers and two workers sharing the test database and this test's Redis prefix."""
    cache = settings.CACHES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CACHE_URL": f"{cache['LOCATION']}?key_prefix={cache['KEY_PREFIX']}",
        "DEBUG": "0",
        "PORTAL_HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PORTAL_TRUSTED_PROXIES": "127.0.0.1",  # the test is the proxy
        "PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "PORTAL_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "2",
        "PORTAL_WEBHOOK_READ_TIMEOUT_SECONDS": str(HOLD + 10),
        "PORTAL_WEBHOOK_LEASE_SECONDS": "60",
        "PORTAL_LAST_USE_FLUSH_SECONDS": "1",
    }
    cluster = Cluster(env, tmp_path)
    try:
        a, b = cluster.gunicorn("server-a"), cluster.gunicorn("server-b")
        cluster.db_worker("worker-a")
        cluster.db_worker("worker-b")
        cluster.wait_until_serving(a, b)
        yield cluster, a, b
        cluster.check_alive()  # nothing crashed along the way
    finally:
        cluster.stop()


@pytest.fixture
def keys(issue):
    """A management key for the API calls, a service's introspection key, and the credential
    they rotate (on the test app, so its events go to that app's endpoints)."""
    return (
        management_key("credentials:rotate", "credentials:revoke").plaintext,
        issue(Kind.API_KEY, name="Introspecting service", scopes=["introspect"]).plaintext,
        issue(Kind.API_KEY, name="orders"),
    )


def test_a_rotation_and_a_revoke_through_one_server_are_seen_at_once_by_the_other(cluster, keys):
    _, a, b = cluster
    admin, caller, target = keys
    credential_id = target.credential.pk

    rotated = a.rotate(credential_id, key=admin, idempotency_key="rotate-1")
    assert rotated.status == 201, rotated
    new = rotated.body["secret"]
    # Enough requests that both of B's worker processes answer.
    for _ in range(6):
        old_seen = b.introspect(target.plaintext, caller=caller)
        assert (old_seen["active"], old_seen["keyturn_state"]) == (True, "retiring")
        new_seen = b.introspect(new, caller=caller)
        assert (new_seen["active"], new_seen["keyturn_state"]) == (True, "active")

    revoked = b.revoke(credential_id, 1, key=admin, idempotency_key="revoke-1")
    assert revoked.status == 200 and revoked.body["state"] == "revoked", revoked
    # The very next request to A, and every one after it, on either of its processes.
    assert [a.introspect(target.plaintext, caller=caller) for _ in range(6)] == [
        {"active": False}
    ] * 6
    assert [b.introspect(target.plaintext, caller=caller) for _ in range(6)] == [
        {"active": False}
    ] * 6
    assert a.introspect(new, caller=caller)["active"] is True

    # Both changes are in the one chain, each with the client's address the proxy reported.
    events = AuditEvent.objects.filter(action__in=["credential.rotated", "credential.revoked"])
    assert sorted(e.action for e in events) == ["credential.revoked", "credential.rotated"]
    assert {e.ip for e in events} == {CLIENT}
    assert verify_chain().ok


def test_uses_counted_by_both_servers_add_up_in_the_shared_cache(cluster, keys, settings):
    _, a, b = cluster
    _, caller, target = keys
    settings.PORTAL_LAST_USE_FLUSH_SECONDS = 1  # as the servers run
    for _ in range(10):
        for server in (a, b):
            assert server.introspect(target.plaintext, caller=caller)["active"] is True
    time.sleep(1.2)  # past every lease the servers took, so this process may write the rest
    call_command("flush_last_use", stdout=io.StringIO())
    presented = CredentialVersion.objects.get(pk=target.version.pk)
    service = CredentialVersion.objects.get(credential__name="Introspecting service")
    # Four processes counted them; each use is in the row exactly once, none left waiting.
    assert (presented.use_count, service.use_count) == (20, 20)
    assert usage.pending_uses(presented.pk) == usage.pending_uses(service.pk) == 0
    assert presented.last_used_at is not None


def _at_once(*calls):
    """Run the calls in threads released together; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        answers[index] = call()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers), "a request hung"
    return answers


def test_concurrent_rotations_through_both_servers_make_one_version_per_idempotency_key(
    cluster, keys
):
    _, a, b = cluster
    admin, caller, target = keys
    credential = target.credential

    def rotate(server, idempotency_key):
        return lambda: server.rotate(credential.pk, key=admin, idempotency_key=idempotency_key)

    # The same request, twice through each server at once: one rotation.
    same = _at_once(*(rotate(server, "deploy-42") for server in (a, b, a, b)))
    assert {answer.status for answer in same} <= {201, 409}, same
    originals = [x for x in same if x.status == 201 and "Idempotency-Replayed" not in x.headers]
    assert len(originals) == 1
    secret = originals[0].body["secret"]
    for answer in same:
        while answer.status == 409:  # the first was still running: retry, as a client would
            time.sleep(0.2)
            answer = rotate(b, "deploy-42")()
        assert answer.status == 201 and answer.body["secret"] == secret
    assert credential.versions.count() == 2
    assert IdempotencyRecord.objects.filter(key="deploy-42").count() == 1

    # Four different requests at once: four rotations, one after another, never a fork.
    different = _at_once(*(rotate(s, f"deploy-{n}") for n, s in enumerate((a, b, a, b))))
    assert [answer.status for answer in different] == [201] * 4, different
    numbers = sorted(answer.body["version"]["number"] for answer in different)
    assert numbers == [3, 4, 5, 6]
    assert Counter(credential.versions.values_list("state", flat=True)) == {
        State.ACTIVE: 1,
        State.RETIRING: 1,
        State.REVOKED: 4,
    }
    # Only the newest two secrets verify, and both servers agree on it.
    by_number = {answer.body["version"]["number"]: answer.body["secret"] for answer in different}
    for server in (a, b):
        assert [server.introspect(by_number[n], caller=caller)["active"] for n in numbers] == [
            False,
            False,
            True,
            True,
        ]
        assert server.introspect(secret, caller=caller) == {"active": False}
    assert AuditEvent.objects.filter(action="credential.rotated").count() == 5
    assert verify_chain().ok


def test_events_reach_the_receiver_once_each_signed_from_both_workers_side_by_side(
    cluster, keys, issue
):
    _, a, b = cluster
    admin, _, target = keys
    with Receiver(together=2, hold_seconds=HOLD) as receiver:
        hook = issue(Kind.ENDPOINT_SECRET, url=receiver.url)
        credential_id = target.credential.pk
        # The first delivery is held until the second arrives, which only the other worker
        # can send: each worker runs one task at a time.
        assert a.rotate(credential_id, key=admin, idempotency_key="r1").status == 201
        assert b.revoke(credential_id, 1, key=admin, idempotency_key="v1").status == 200
        assert b.rotate(credential_id, key=admin, idempotency_key="r2", overlap=0).status == 201
        assert a.rotate(credential_id, key=admin, idempotency_key="r3").status == 201

        messages = set(
            WebhookMessage.objects.filter(
                deliveries__endpoint=hook.credential.endpoint
            ).values_list("message_id", flat=True)
        )
        assert len(messages) >= 4  # rotated, revoked, rotated (its old version revoked), rotated
        deadline = time.monotonic() + 60
        while Delivery.objects.exclude(status=Delivery.Status.DELIVERED).exists():
            cluster[0].check_alive()
            assert time.monotonic() < deadline, cluster[0].tails()
            time.sleep(0.2)

    assert receiver.all_together.is_set() and receiver.max_in_flight == 2
    assert receiver.processed_per_id() == dict.fromkeys(messages, 1)
    signer = Webhook(hook.plaintext)
    for request in receiver.requests:
        signer.verify(request.body, request.headers)  # raises if any signature is wrong
    assert {worker for result in DBTaskResult.objects.all() for worker in result.worker_ids} == {
        "worker-a",
        "worker-b",
    }
    assert all(d.attempts == 1 for d in Delivery.objects.all())
