"""Benchmark: verify a presented key in-process, with 100,000 keys issued.

Three contenders, timed side by side in one process on one database:

1. Keyturn: ``credentials.verification.verify_bearer(token)``;
2. djangorestframework-api-key: ``APIKey.objects.is_valid(key)``;
3. the floor: one HMAC-SHA256 of the token, then ``SELECT id ... WHERE digest = %s`` on the
   unique digest column through ``django.db.connection.cursor()``: Django's cursor wrapper,
   as any Django code, Keyturn's included, would use. The same SELECT on the bare DB-API
   cursor underneath is timed too, as a reference only, to show what that wrapper costs.

Keyturn and the library each get ``--keys`` rows, bulk-inserted with digests made exactly as
issuance makes them; the floor reads Keyturn's. Each is then presented valid keys drawn at
random from 2,000 of its plaintexts. Calls run in blocks, each round in a fresh random order,
so drift (CPU frequency, other processes, autovacuum) falls on every contender alike.
Refusals are timed apart.

Run it with ``make bench``, or ``DATABASE_URL=postgres://... make bench`` for PostgreSQL. It
creates and removes a database of its own (see ``bench/settings.py``). It prints figures and
whether the targets are met; it never fails on a timing, because a timing is not a test.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

# The project root, so that `bench.*`, `portal.*` and `credentials.*` import from a plain run.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ScratchDatabase, cpu_model, step, table

SAMPLE_SIZE = 2_000  # plaintexts kept in memory to present, per library
BATCH = 5_000  # rows per bulk INSERT
KEYS_PER_APP = 100
WARM_UP = 1_000  # untimed calls per contender before timing
BLOCK = 200  # consecutive calls of one contender before the next one's turn
TARGET_DRF_RATIO = 5.0  # Keyturn at least 5x faster than djangorestframework-api-key,
TARGET_FLOOR_RATIO = 4.0  # and within 4x of the floor.

KEYTURN = "Keyturn verify_bearer"
DRF = "djangorestframework-api-key is_valid"
FLOOR = "floor: HMAC + SELECT, Django cursor"
BARE = "(reference: HMAC + SELECT, bare DB-API cursor)"


@dataclass(frozen=True)
class Contender:
    name: str
    call: Callable[[str], object]
    tokens: list[str]  # presented in this order, the warm-up's first
    accepts: bool  # every call must succeed (True) or every call must be refused (False)


@dataclass(frozen=True)
class Stats:
    median: float
    p99: float
    mean: float

    @classmethod
    def of(cls, nanoseconds: list[int]) -> Stats:
        micro = [ns / 1000 for ns in nanoseconds]
        return cls(
            median=statistics.median(micro),
            p99=statistics.quantiles(micro, n=100, method="inclusive")[98],
            mean=statistics.fmean(micro),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keys", type=int, default=100_000, help="keys issued per library")
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per contender")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling and order")
    args = parser.parse_args()
    if args.keys < 1 or args.calls < 1:
        parser.error("--keys and --calls must be positive")

    # Forced, not defaulted: under the portal's own settings this would wipe its database.
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.core.management import call_command

    rng = random.Random(args.seed)
    scratch = ScratchDatabase()
    scratch.create()
    try:
        step("migrating a fresh database", lambda: call_command("migrate", verbosity=0))
        keyturn_keys = step(f"issuing {args.keys:,} Keyturn keys", lambda: issue_keyturn(args, rng))
        drf_keys = step(f"issuing {args.keys:,} library keys", lambda: issue_drf(args, rng))
        step("gathering planner statistics", scratch.analyse)
        accepting, refusing = contenders(args, rng, keyturn_keys, drf_keys)
        gc.collect()
        valid = step(
            f"timing {args.calls:,} valid keys per contender",
            lambda: measure(accepting, args.calls, rng),
        )
        refused = step(
            f"timing {args.calls:,} refusals per case", lambda: measure(refusing, args.calls, rng)
        )
        print()
        print(header(args, scratch, sample_size=len(keyturn_keys)))
        print()
        print(table(["Valid key", "median µs", "p99 µs", "mean µs"], rows(valid)))
        print()
        print(table(["Refused key", "median µs", "p99 µs", "mean µs"], rows(refused)))
        print()
        print(targets(valid))
    finally:
        scratch.drop()


# --------------------------------------------------------------------------- issuing


def issue_keyturn(args, rng: random.Random) -> list[str]:
    """Bulk-insert ``--keys`` credentials, each with one active version, as issuance makes them.

    Returns the plaintexts of a random sample. One credential in ten is a client secret, so
    the check of a token's kind against its credential's runs as it does in production.
    """
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from credentials import crypto
    from credentials.models import App, Credential, CredentialVersion, Kind, State

    key_id, key = settings.PORTAL_TOKEN_HASH_KEYS.current
    now = timezone.now()
    expires_at = now + timedelta(days=settings.PORTAL_MAX_LIFETIME_DAYS)
    sampled = set(rng.sample(range(args.keys), min(SAMPLE_SIZE, args.keys)))
    sample = []
    with transaction.atomic():
        apps = App.objects.bulk_create(
            App(name=f"Bench app {n}", owner_team="Bench", contact_email="bench@keyturn.invalid")
            for n in range(-(-args.keys // KEYS_PER_APP))
        )
        for start in range(0, args.keys, BATCH):
            numbers = range(start, min(start + BATCH, args.keys))
            credentials = Credential.objects.bulk_create(
                Credential(
                    app=apps[n // KEYS_PER_APP],
                    kind=Kind.CLIENT_SECRET if n % 10 == 0 else Kind.API_KEY,
                    name=f"Bench key {n}",
                    scopes=["introspect", "orders:read"],
                )
                for n in numbers
            )
            versions = []
            for n, credential in zip(numbers, credentials, strict=True):
                plaintext = crypto.generate_token(credential.kind)
                if n in sampled:
                    sample.append(plaintext)
                versions.append(
                    CredentialVersion(
                        credential=credential,
                        number=1,
                        state=State.ACTIVE,
                        created_at=now,
                        activated_at=now,
                        created_by="bench",
                        expires_at=expires_at,
                        digest=crypto.token_digest(plaintext, key),
                        digest_key_id=key_id,
                        last_four=crypto.last_four(plaintext),
                        fingerprint=crypto.secret_fingerprint(plaintext),
                    )
                )
            CredentialVersion.objects.bulk_create(versions)
    return sample


def issue_drf(args, rng: random.Random) -> list[str]:
    """Bulk-insert ``--keys`` APIKey rows made by the library's own ``KeyGenerator``.

    Its ``assign_key`` sets ``id = "<prefix>.<hashed_key>"``; so do we. The prefix is unique
    in its schema, so a repeated random 8-character prefix (unlikely) is drawn again.
    """
    from django.db import transaction
    from rest_framework_api_key.crypto import KeyGenerator, concatenate
    from rest_framework_api_key.models import APIKey

    generator = KeyGenerator()
    sampled = set(rng.sample(range(args.keys), min(SAMPLE_SIZE, args.keys)))
    sample, prefixes = [], set()
    with transaction.atomic():
        for start in range(0, args.keys, BATCH):
            rows = []
            for n in range(start, min(start + BATCH, args.keys)):
                key, prefix, hashed_key = generator.generate()
                while prefix in prefixes:
                    key, prefix, hashed_key = generator.generate()
                prefixes.add(prefix)
                if n in sampled:
                    sample.append(key)
                rows.append(
                    APIKey(
                        id=concatenate(prefix, hashed_key),
                        prefix=prefix,
                        hashed_key=hashed_key,
                        name=f"Bench key {n}",
                    )
                )
            APIKey.objects.bulk_create(rows)
    return sample


# --------------------------------------------------------------------------- timing


def floor_calls() -> tuple[Callable[[str], object], Callable[[str], object]]:
    """The least a digest-based verification can do: one HMAC, one indexed SELECT.

    Returned twice: through Django's cursor (the floor) and through the DB-API driver's own
    cursor underneath it (the reference, which skips Django's wrapper).
    """
    from django.conf import settings
    from django.db import connection

    from credentials.models import CredentialVersion

    _, key = settings.PORTAL_TOKEN_HASH_KEYS.current
    django_sql = f"SELECT id FROM {CredentialVersion._meta.db_table} WHERE digest = %s"
    # sqlite3 takes "?" placeholders; Django's wrapper converts "%s" on every call.
    driver_sql = django_sql.replace("%s", "?") if connection.vendor == "sqlite" else django_sql

    def floor(token: str):
        digest = hmac.new(key, token.encode("ascii"), hashlib.sha256).hexdigest()
        with connection.cursor() as cursor:
            cursor.execute(django_sql, [digest])
            return cursor.fetchone()

    connection.ensure_connection()
    driver_connection = connection.connection

    def bare(token: str):
        digest = hmac.new(key, token.encode("ascii"), hashlib.sha256).hexdigest()
        cursor = driver_connection.cursor()
        try:
            cursor.execute(driver_sql, [digest])
            return cursor.fetchone()
        finally:
            cursor.close()

    return floor, bare


def contenders(
    args, rng: random.Random, keyturn_keys: list[str], drf_keys: list[str]
) -> tuple[list[Contender], list[Contender]]:
    """What is timed: valid keys for every contender, then the refusals."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework_api_key.crypto import KeyGenerator
    from rest_framework_api_key.models import APIKey

    from credentials import crypto
    from credentials.verification import verify_bearer

    def presented(sample: list[str]) -> list[str]:
        return rng.choices(sample, k=WARM_UP + args.calls)

    def fresh(make: Callable[[], str]) -> list[str]:
        return [make() for _ in range(WARM_UP + args.calls)]

    floor, bare = floor_calls()
    accepting = [
        Contender(KEYTURN, verify_bearer, presented(keyturn_keys), accepts=True),
        Contender(DRF, APIKey.objects.is_valid, presented(drf_keys), accepts=True),
        Contender(FLOOR, floor, presented(keyturn_keys), accepts=True),
        Contender(BARE, bare, presented(keyturn_keys), accepts=True),
    ]

    # A mistyped key: its checksum fails, so it is refused before any hashing or query.
    malformed = [token[:-1] + ("B" if token[-1] == "A" else "A") for token in keyturn_keys]
    with CaptureQueriesContext(connection) as queries:
        assert verify_bearer(malformed[0]) is None
    assert not queries.captured_queries, "a malformed key reached the database"
    refusing = [
        Contender(
            "Keyturn, malformed key (bad checksum)",
            verify_bearer,
            presented(malformed),
            accepts=False,
        ),
        Contender(
            "Keyturn, unknown well-formed key",
            verify_bearer,
            fresh(lambda: crypto.generate_token("api_key")),
            accepts=False,
        ),
        Contender(
            "djangorestframework-api-key, unknown key",
            APIKey.objects.is_valid,
            fresh(lambda: KeyGenerator().generate()[0]),
            accepts=False,
        ),
    ]
    return accepting, refusing


def measure(contenders: list[Contender], calls: int, rng: random.Random) -> dict[str, Stats]:
    """Time each call with ``perf_counter_ns``, contenders taking turns block by block.

    Every answer is checked (outside the timed span): a contender that accepts a key it
    should refuse, or the reverse, invalidates the run.
    """
    for contender in contenders:
        for token in contender.tokens[:WARM_UP]:
            contender.call(token)
    timings: dict[str, list[int]] = {contender.name: [] for contender in contenders}
    order = list(contenders)
    clock = time.perf_counter_ns
    for start in range(WARM_UP, WARM_UP + calls, BLOCK):
        rng.shuffle(order)
        for contender in order:
            call, out, wrong = contender.call, timings[contender.name], 0
            for token in contender.tokens[start : min(start + BLOCK, WARM_UP + calls)]:
                began = clock()
                result = call(token)
                out.append(clock() - began)
                wrong += bool(result) != contender.accepts
            if wrong:
                raise SystemExit(f"{contender.name} gave {wrong} wrong answers: run invalid")
    return {name: Stats.of(nanoseconds) for name, nanoseconds in timings.items()}


# --------------------------------------------------------------------------- printing


def header(args, scratch: ScratchDatabase, sample_size: int) -> str:
    from django.conf import settings

    facts = {
        "Database": scratch.describe(),
        "Keys": f"{args.keys:,} issued per library; valid keys drawn at random from "
        f"{sample_size:,} of them",
        "Calls": f"{args.calls:,} timed per contender after {WARM_UP:,} untimed; "
        f"blocks of {BLOCK}, contenders in a random order each round",
        "Software": f"Python {platform.python_version()}, Django {version('django')}, "
        f"djangorestframework-api-key {version('djangorestframework-api-key')}",
        "Machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
        "Hash keys": f"{len(settings.PORTAL_TOKEN_HASH_KEYS.keys)} configured "
        "(Keyturn computes one HMAC per key)",
    }
    return "\n".join(f"{label + ':':<11}{value}" for label, value in facts.items())


def rows(results: dict[str, Stats]) -> list[list[str]]:
    return [
        [name, f"{s.median:.1f}", f"{s.p99:.1f}", f"{s.mean:.1f}"] for name, s in results.items()
    ]


def targets(valid: dict[str, Stats]) -> str:
    keyturn, drf, floor = valid[KEYTURN], valid[DRF], valid[FLOOR]
    checks = [
        ("library ÷ Keyturn", drf, keyturn, f">= {TARGET_DRF_RATIO:g}", TARGET_DRF_RATIO.__le__),
        (
            "Keyturn ÷ floor",
            keyturn,
            floor,
            f"<= {TARGET_FLOOR_RATIO:g}",
            TARGET_FLOOR_RATIO.__ge__,
        ),
    ]
    body = []
    for label, slower, faster, goal, met in checks:
        median, p99 = slower.median / faster.median, slower.p99 / faster.p99
        verdicts = ["yes" if met(ratio) else "NO" for ratio in (median, p99)]
        body.append([label, f"{median:.2f}", f"{p99:.2f}", goal, *verdicts])
    return table(["Ratio", "median", "p99", "target", "met (median)", "met (p99)"], body)


if __name__ == "__main__":
    main()
