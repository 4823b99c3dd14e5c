"""A backup restored into a fresh database is the same portal only with the same keys.

The backup is made as docs/deploy.md says (pg_dump on PostgreSQL; SQLite's online backup API
on SQLite) from the test database, restored into a new one, and checked there by the restore
drill of that page, run as real commands against the restored copy: `verify_audit
--expect-head` with the head exported before the backup, `key_usage --decrypt`, and
`verify_secret` with keys issued before the backup. With the same keys all of it passes. With
wrong or missing keys each failure is loud (a broken chain, a ciphertext that does not decrypt,
a canary key that does not verify, a start-up refusal), never a portal that quietly runs on.
The backup itself holds no secret in the clear.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import environ
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from credentials import crypto, lifecycle
from credentials.models import Kind, RevokeReason
from tests.management_api import call, management_key
from tests.states import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Estate:
    """What existed when the backup was taken."""

    live: list[str]  # bearer secrets that verified then
    dead: str  # one that had been revoked
    secrets: list[str]  # every plaintext ever shown, the webhook secret and the API answer too
    head: str  # `audit_head` just before the backup


@pytest.fixture
def estate(issue):
    api_key = issue(Kind.API_KEY, name="orders")
    client_secret = issue(Kind.CLIENT_SECRET, name="login")
    hook = issue(Kind.ENDPOINT_SECRET, url="https://hooks.example.com/keyturn")
    revoked = issue(Kind.API_KEY, name="old batch job")
    lifecycle.version_revoke(actor=ACTOR, version=revoked.version, reason=RevokeReason.ROUTINE)
    # A rotation through the API leaves its answer, secret included, in the idempotency store.
    pipeline = management_key("credentials:rotate").plaintext
    path = f"/api/v1/credentials/{api_key.credential.pk}/rotations"
    answer = call(Client(), "post", path, pipeline, {"overlap_seconds": 3600})
    assert answer.status_code == 201
    rotated = answer.json()["secret"]
    head = io.StringIO()
    call_command("audit_head", stdout=head)
    live = [api_key.plaintext, rotated, client_secret.plaintext, pipeline]
    secrets = [*live, revoked.plaintext, hook.plaintext]
    return Estate(live, revoked.plaintext, secrets, head.getvalue().strip())


def _ring_line(ring: crypto.Keyring) -> str:
    return ",".join(f"{i}:{base64.urlsafe_b64encode(k).decode()}" for i, k in ring.keys)


def _keys() -> dict[str, str]:
    """The key set this test process runs with, as the environment variables that set it."""
    audit_id, audit_key = settings.PORTAL_AUDIT_KEY
    return {
        "SECRET_KEY": settings.SECRET_KEY,
        "PORTAL_ENCRYPTION_KEYS": _ring_line(settings.PORTAL_ENCRYPTION_KEYS),
        "PORTAL_TOKEN_HASH_KEYS": _ring_line(settings.PORTAL_TOKEN_HASH_KEYS),
        "PORTAL_AUDIT_KEY": _ring_line(crypto.Keyring(((audit_id, audit_key),))),
    }


def _same_id_other_key(line: str) -> str:
    """The same key id with other key material: a key set regenerated, not restored."""
    return crypto.generate_key_line(line.split(":", 1)[0])


# --------------------------------------------------------------------------- backup and restore


class Restored:
    """A restored copy of the test database, and the portal's commands run against it."""

    def __init__(self, url: str, dump_text: str):
        self.url, self.dump_text = url, dump_text

    def manage(self, *args, stdin: str = "", **variables) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ["PATH"],
            "KEYTURN_ENV_FILE": os.devnull,  # nothing but what is given here
            "DEBUG": "0",
            "DATABASE_URL": self.url,
            **_keys(),
            **variables,
        }
        env = {name: value for name, value in env.items() if value is not None}
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _sqlite_backup(tmp_path: Path) -> Restored:
    # The online backup API copies a consistent snapshot while the portal keeps running
    # (`sqlite3 keyturn.sqlite3 ".backup ..."` in docs/deploy.md uses the same API).
    backup = tmp_path / "keyturn-backup.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(backup) as target:
        connection.connection.backup(target)
    target.close()
    restored = tmp_path / "restored" / "keyturn.sqlite3"
    restored.parent.mkdir()
    shutil.copyfile(backup, restored)  # restoring is putting the file back
    with sqlite3.connect(backup) as source:
        text = "\n".join(source.iterdump())
    source.close()
    text += backup.read_bytes().decode("latin-1")  # and whatever the raw pages hold
    return Restored(f"sqlite:///{restored}", text)


def _postgres_backup(tmp_path: Path):
    db = connection.settings_dict
    auth = ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)]
    auth += ["-U", db["USER"] or "postgres"]
    pg_env = {**os.environ, **({"PGPASSWORD": db["PASSWORD"]} if db.get("PASSWORD") else {})}
    # Named after the database the run was pointed at (DATABASE_URL), not the test one.
    configured = environ.Env.db_url_config(os.environ.get("DATABASE_URL", ""))
    fresh = f"{configured.get('NAME') or db['NAME']}_restore"
    dump = tmp_path / "keyturn.dump"

    def run(*command):
        done = subprocess.run(command, env=pg_env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("pg_dump", *auth, "--format=custom", "--no-owner", f"--file={dump}", db["NAME"])
    run("dropdb", *auth, "--if-exists", fresh)
    run("createdb", *auth, fresh)
    try:
        run("pg_restore", *auth, "--no-owner", "--exit-on-error", f"--dbname={fresh}", str(dump))
        text = run("pg_restore", "--file=-", str(dump))  # the archive as SQL, to search
        user = quote(db["USER"] or "postgres")
        password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        yield Restored(f"postgres://{user}{password}@{host}/{fresh}", text)
    finally:
        run("dropdb", *auth, "--if-exists", "--force", fresh)


@pytest.fixture
def restored(estate, tmp_path):
    if connection.vendor == "sqlite":
        yield _sqlite_backup(tmp_path)
    else:
        yield from _postgres_backup(tmp_path)


# --------------------------------------------------------------------------- the drill


def test_the_backup_holds_no_secret_in_the_clear(estate, restored):
    for secret in estate.secrets:
        for form in (secret, secret.removeprefix("whsec_"), secret[-20:]):
            assert form not in restored.dump_text


def test_with_the_same_keys_the_restored_portal_is_the_one_backed_up(estate, restored):
    chain = restored.manage("verify_audit", "--expect-head", estate.head)
    assert chain.returncode == 0, chain.stderr
    assert "Audit chain intact" in chain.stdout

    keys = restored.manage("key_usage", "--decrypt")
    assert keys.returncode == 0, keys.stderr
    assert "Decrypted 2 of 2 ciphertext(s)." in keys.stdout  # the webhook secret, the answer

    canaries = restored.manage("verify_secret", stdin="\n".join(estate.live))
    assert canaries.returncode == 0, canaries.stdout + canaries.stderr
    assert canaries.stdout.count(": verifies: ") == len(estate.live)
    dead = restored.manage("verify_secret", stdin=estate.dead)
    assert dead.returncode == 1 and "1: does not verify" in dead.stdout
    # Nothing the drill prints repeats a secret.
    printed = "".join(p.stdout + p.stderr for p in (chain, keys, canaries, dead))
    assert not any(secret in printed for secret in estate.secrets)


def _wrong_keys(estate: Estate) -> list[tuple[str, dict, tuple[str, ...], str, int, str]]:
    """(case, key variables, command, stdin, exit status, what it must say on stderr)."""
    keys = {name: line for name, line in _keys().items() if name.startswith("PORTAL_")}
    same_id = {name: _same_id_other_key(line) for name, line in keys.items()}
    fresh = {name: crypto.generate_key_line("fresh") for name in keys}
    encryption_id = settings.PORTAL_ENCRYPTION_KEYS.current[0]
    hash_id = settings.PORTAL_TOKEN_HASH_KEYS.current[0]
    chain = ("verify_audit", "--expect-head", estate.head)
    live = "\n".join(estate.live)
    return [
        ("another audit key", {"PORTAL_AUDIT_KEY": same_id["PORTAL_AUDIT_KEY"]},
         chain, "", 1, "Audit chain BROKEN at event #1"),
        ("other encryption keys, same ids",
         {"PORTAL_ENCRYPTION_KEYS": same_id["PORTAL_ENCRYPTION_KEYS"]},
         ("key_usage", "--decrypt"), "", 1, "2 ciphertext(s) did not decrypt"),
        ("other hash keys, same ids",
         {"PORTAL_TOKEN_HASH_KEYS": same_id["PORTAL_TOKEN_HASH_KEYS"]},
         ("verify_secret",), live, 1, f"{len(estate.live)} of {len(estate.live)} secret(s) did"),
        ("a fresh key set", fresh, ("key_usage",), "", 1,
         f"not configured: PORTAL_ENCRYPTION_KEYS {encryption_id}, "
         f"PORTAL_TOKEN_HASH_KEYS {hash_id}"),
        ("a fresh key set", fresh, chain, "", 1, "Audit chain BROKEN at event #1"),
        *[
            (f"{name} missing", {name: None}, chain, "", 2, f"{name} is not set")
            for name in ("PORTAL_ENCRYPTION_KEYS", "PORTAL_TOKEN_HASH_KEYS", "PORTAL_AUDIT_KEY")
        ],
    ]  # fmt: skip


def test_with_wrong_or_missing_keys_the_restored_portal_fails_loudly(estate, restored):
    for case, variables, command, stdin, status, message in _wrong_keys(estate):
        done = restored.manage(*command, stdin=stdin, **variables)
        assert (done.returncode, message in done.stderr) == (status, True), (case, done.stderr)
    # `reencrypt` is no such check: it only opens ciphertexts under keys other than the newest.
    other = _same_id_other_key(_keys()["PORTAL_ENCRYPTION_KEYS"])
    moved = restored.manage("reencrypt", PORTAL_ENCRYPTION_KEYS=other)
    assert "Re-encrypted 0 secret(s)" in moved.stdout
