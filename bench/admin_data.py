"""The rows `bench/admin_scale.py` measures the admin against, bulk-inserted.

Values are realistic, but nothing goes through the lifecycle. Apps hold ten credentials; each
credential holds five versions (the newest active, older ones retiring, revoked, exposed or
expired), except one "busy" credential that holds 1 % of all versions and is named by 1 % of
the audit events. Audit events carry an increasing ``seq``, 64-hex-digit hashes linked by
``prev_hash`` and a chain head that matches the last one, but the hashes are not HMACs of the
rows, so the chain does not verify.

Called again with larger counts, ``Data`` grows what it inserted before: new apps, credentials
and events, and newer versions of the busy credential.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

BUSY_SHARE = 100  # the busy credential holds 1/100 of all versions, and is named in 1/100 of events
VERSIONS_PER_CREDENTIAL = 5  # every other credential: 1 active, the older ones retired
CREDENTIALS_PER_APP = 10
BATCH = 5_000  # versions per bulk_create
EVENT_BATCH = 50_000  # audit rows per executemany or COPY
EVENT_SPACING = timedelta(seconds=30)  # the newest event is "now", each older one 30 s before

TEAMS = ("Payments", "Orders", "Search", "Identity", "Growth", "Data", "Platform", "Mobile",
         "Partners", "Billing", "Support", "Risk")  # fmt: skip
USERS = tuple(f"{n}@example.com" for n in ("alice", "bob", "chen", "dana", "emeka", "fatima"))
CONTACT = "team@example.com"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
LAST_FOUR_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
ACTIONS = {  # action: weight, roughly as a portal in service writes them
    "credential.rotated": 30, "credential.expired": 28, "credential.revealed": 12,
    "credential.revoked": 10, "credential.issued": 8, "credential.updated": 4, "app.updated": 4,
    "audit.exported": 2, "credential.reactivated": 1, "credential.exposed": 1,
}  # fmt: skip
AUDIT_COLUMNS = (
    "seq", "created_at", "actor_type", "actor_id", "actor_label", "ip", "user_agent", "action",
    "target_type", "target_id", "target_label", "app_id", "credential_id", "details",
    "prev_hash", "hash",
)  # fmt: skip


def administrator():
    """The user the pages are rendered for: staff, in the "Administrators" group (which
    migration 0002 creates), beside the people the audit events name as actors."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    User.objects.bulk_create(User(username=name, email=name, is_staff=True) for name in USERS)
    user = User.objects.create_user("bench-admin", "bench-admin@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name="Administrators"))
    return user


@dataclass
class Data:
    """What has been inserted so far, so that the large size grows the small one in place."""

    rng: random.Random
    now: datetime
    newest_seq: int  # the seq whose created_at is ``now``: every event lies in the past
    apps: list = field(default_factory=list)
    credentials: list = field(default_factory=list)  # (pk, app pk, name, versions) but the busy one
    busy: object = None
    busy_versions: int = 0
    versions: int = 0
    people: list = field(default_factory=list)  # (pk, username) of the users events name

    def grow(self, total: int) -> None:
        """Insert apps, credentials and versions up to ``total`` versions in all."""
        from django.db import transaction

        from credentials.models import App, Credential, CredentialVersion, Kind, State

        with transaction.atomic():
            if self.busy is None:
                app = App(name="Bench app 00000", owner_team=TEAMS[0], contact_email=CONTACT)
                app.save()
                self.apps.append(app)
                self.busy = Credential.objects.create(
                    app=self.apps[0],
                    kind=Kind.API_KEY,
                    name="Bench busy key",
                    scopes=["orders:read"],
                )
            newest = max(1, total // BUSY_SHARE)
            if newest > self.busy_versions:
                # Newer versions are coming: its live ones retire, as rotations would have it.
                self.busy.versions.filter(state__in=(State.ACTIVE, State.RETIRING)).update(
                    state=State.EXPIRED, expired_at=self.now
                )
                CredentialVersion.objects.bulk_create(
                    [
                        self._version(self.busy, 0, number, newest)
                        for number in range(self.busy_versions + 1, newest + 1)
                    ],
                    batch_size=BATCH,
                )
                self.versions += newest - self.busy_versions
                self.busy_versions = newest

            while self.versions < total:
                missing = total - self.versions
                first = len(self.credentials)
                count = min(BATCH, missing) // VERSIONS_PER_CREDENTIAL or 1
                self._apps_for(first + count)
                made = Credential.objects.bulk_create(
                    Credential(
                        app=self.apps[(first + n) // CREDENTIALS_PER_APP + 1],
                        kind=Kind.CLIENT_SECRET if (first + n) % 10 == 0 else Kind.API_KEY,
                        name=f"Bench key {first + n:06d}",
                        scopes=["introspect", "orders:read"],
                    )
                    for n in range(count)
                )
                versions = []
                for k, credential in enumerate(made, start=first):
                    newest = min(VERSIONS_PER_CREDENTIAL, missing - len(versions))
                    versions += [
                        self._version(credential, k, n, newest) for n in range(1, newest + 1)
                    ]
                    self.credentials.append(
                        (credential.pk, credential.app_id, credential.name, newest)
                    )
                CredentialVersion.objects.bulk_create(versions, batch_size=BATCH)
                self.versions += len(versions)

    def _apps_for(self, credentials: int) -> None:
        from credentials.models import App

        wanted = -(-credentials // CREDENTIALS_PER_APP) + 1  # app 0 holds the busy credential
        self.apps += App.objects.bulk_create(
            App(
                name=f"Bench app {n:05d}",
                owner_team=TEAMS[n % len(TEAMS)],
                contact_email=CONTACT,
            )
            for n in range(len(self.apps), wanted)
        )

    def _version(self, credential, k: int, number: int, newest: int):
        """Version ``number`` of ``newest`` of the ``k``-th credential."""
        from credentials.models import CredentialVersion

        age = newest - number
        created = self.now - timedelta(days=90 * age + self.rng.uniform(0, 80))
        return CredentialVersion(
            credential=credential,
            number=number,
            created_at=created,
            activated_at=created,
            created_by=self.rng.choice(USERS),
            last_four="".join(self.rng.choices(LAST_FOUR_ALPHABET, k=4)),
            fingerprint=hashlib.sha256(f"fp:{credential.pk}:{number}".encode()).hexdigest(),
            digest=hashlib.sha256(f"dg:{credential.pk}:{number}".encode()).hexdigest(),
            digest_key_id="bench",
            **self._fate(k, number, age, created),
        )

    def _fate(self, k: int, number: int, age: int, created: datetime) -> dict:
        """State and times. The newest version is active; the one before it retiring (one
        credential in 25), revoked minutes ago (one in 97) or revoked by its rotation; older
        ones expired, revoked or, one in 50, exposed. So every box of the dashboard has rows."""
        from credentials.models import RevokeReason, State

        now, rng, year = self.now, self.rng, timedelta(days=365)

        def revoked(reason: str, at: datetime) -> dict:
            deadline = None if reason == RevokeReason.EXPOSED else at + timedelta(hours=1)
            return {"state": State.REVOKED, "revoke_reason": reason, "revoked_at": at,
                    "revoked_by": rng.choice(USERS), "reactivation_deadline": deadline,
                    "state_before_revoke": State.ACTIVE, "expires_at": created + year}  # fmt: skip

        if age == 0:
            return {"state": State.ACTIVE, "expires_at": now + timedelta(days=rng.uniform(0, 365))}
        if age == 1 and k % 25 == 0:
            retire_at = now + timedelta(hours=rng.uniform(1, 23))
            return {"state": State.RETIRING, "retire_at": retire_at, "expires_at": created + year}
        if age == 1 and k % 97 == 3:
            return revoked(RevokeReason.ROUTINE, now - timedelta(minutes=10))
        if age == 1:
            return revoked(RevokeReason.ROTATED, created + timedelta(days=90))
        if (k + number) % 50 == 0:
            return revoked(RevokeReason.EXPOSED, now - timedelta(days=rng.uniform(0, 400)))
        if (k + number) % 4 == 0:
            return revoked(RevokeReason.ROUTINE, created + timedelta(days=30))
        ended = created + timedelta(days=100)
        return {"state": State.EXPIRED, "expires_at": ended, "expired_at": ended}

    def log(self, total: int) -> None:
        """Append audit events up to ``total`` in all, continuing the head's seq and hash."""
        from django.db import connection, transaction

        from credentials.models import AuditChainHead, AuditEvent

        model_columns = {f.column for f in AuditEvent._meta.concrete_fields} - {"id"}
        assert set(AUDIT_COLUMNS) == model_columns, "AuditEvent changed: update AUDIT_COLUMNS"
        with transaction.atomic():
            head, _ = AuditChainHead.objects.get_or_create(pk=1, defaults={"hash": "0" * 64})
            last, prev_hash = head.seq, head.hash
            missing = total - AuditEvent.objects.count()
            while missing > 0:
                rows = []
                for seq in range(last + 1, last + 1 + min(EVENT_BATCH, missing)):
                    row, prev_hash = self._event(seq, prev_hash)
                    rows.append(row)
                insert_events(connection, rows)
                last += len(rows)
                missing -= len(rows)
            AuditChainHead.objects.filter(pk=1).update(seq=last, hash=prev_hash)

    def _event(self, seq: int, prev_hash: str) -> tuple[tuple, str]:
        """One audit row, in ``AUDIT_COLUMNS`` order, and its hash."""
        rng = self.rng
        if not self.people:
            from django.contrib.auth import get_user_model

            found = get_user_model().objects.filter(username__in=USERS)
            self.people = [(str(pk), name) for pk, name in found.values_list("pk", "username")]
        action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        busy = self.busy
        credential_id, app_id, name, versions = (
            (busy.pk, busy.app_id, busy.name, self.busy_versions)
            if rng.randrange(BUSY_SHARE) == 0
            else rng.choice(self.credentials)
        )
        number, last_four = rng.randint(1, versions), "".join(rng.choices(LAST_FOUR_ALPHABET, k=4))
        if action == "credential.expired":
            actor = ("system", "", "expiry sweep", None, "")
        elif rng.random() < 0.3:
            bot = rng.randrange(20)
            actor = ("api_key", f"00000000-0000-4000-8000-{bot:012d}",
                     f"API key ••••b{bot:03d} (Deploy bot {bot})", f"10.30.0.{bot + 10}",
                     "keyturn-cli/1.4 python-requests/2.32")  # fmt: skip
        else:
            person = rng.randrange(len(self.people))
            ip = f"10.20.{person}.{rng.randrange(1, 255)}"
            actor = ("user", *self.people[person], ip, BROWSER)
        details = {"version": number, "last_four": last_four}
        if action == "app.updated":
            target = ("app", str(app_id), f"Bench app {app_id - 1:05d}")
            credential_id, details = None, {"owner_team": [rng.choice(TEAMS), rng.choice(TEAMS)]}
        elif action == "audit.exported":
            target = ("user", actor[1] or "1", actor[2])
            credential_id, app_id, details = None, None, {"filters": ""}
        elif action == "credential.updated":
            target = ("credential", str(credential_id), f"{name} (API key)")
            details = {"scopes": [["introspect"], ["introspect", "orders:read"]]}
        else:
            label = f"{name} v{number} (••••{last_four}, active)"
            target = ("credentialversion", str(credential_id * 10 + number), label)
            if action == "credential.expired":
                details |= {"previous_state": "active", "why": "lifetime ended"}
            elif action == "credential.revoked":
                details |= {"reason": "routine", "note": "", "previous_state": "active"}
        created_at = self.now - EVENT_SPACING * (self.newest_seq - seq)
        digest = hashlib.sha256(b"bench-event-%d" % seq).hexdigest()
        row = (seq, created_at, *actor[:3], actor[3], actor[4], action, *target, app_id,
               credential_id, json.dumps(details), prev_hash, digest)  # fmt: skip
        return row, digest

    def shape(self) -> list[int]:
        """Rows per table, as the pages about to be measured see them."""
        from credentials.models import App, AuditEvent, Credential, CredentialVersion

        return [
            App.objects.count(),
            Credential.objects.count(),
            CredentialVersion.objects.count(),
            self.busy.versions.count(),
            AuditEvent.objects.count(),
            AuditEvent.objects.filter(credential_id=self.busy.pk).count(),
        ]


def insert_events(connection, rows: list[tuple]) -> None:
    """Many rows at once, below the ORM: ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""
    columns = ", ".join(AUDIT_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY credentials_auditevent ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt = connection.ops.adapt_datetimefield_value
        placeholders = ", ".join(["%s"] * len(AUDIT_COLUMNS))
        cursor.executemany(
            f"INSERT INTO credentials_auditevent ({columns}) VALUES ({placeholders})",
            [(row[0], adapt(row[1]), *row[2:]) for row in rows],
        )
