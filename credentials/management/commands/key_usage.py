"""Which configured keys the stored data still needs, and whether it needs any that are missing."""

from collections import Counter, defaultdict

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials import crypto
from credentials.models import (
    VERIFYING_STATES,
    CredentialVersion,
    IdempotencyRecord,
    State,
    TOTPSeed,
)

UNREADABLE = "(unreadable)"


def _key_id(ciphertext: str) -> str:
    try:
        return crypto.ciphertext_key_id(ciphertext)
    except crypto.DecryptionFailed:
        return UNREADABLE


class Command(BaseCommand):
    help = (
        "For PORTAL_ENCRYPTION_KEYS and PORTAL_TOKEN_HASH_KEYS, print how much stored data each "
        "key id is still needed for, so a retired key is removed only once nothing needs it. "
        "Exits 1 if stored data names a key that is not configured (a restore with the wrong "
        "keys, or a key removed too early). Reads only key ids, never key material. "
        "With --decrypt, also decrypts every ciphertext (in memory, printing nothing of it) and "
        "exits 1 if any fails: the proof, after a restore, that the encryption keys are right."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--decrypt",
            action="store_true",
            help="Also decrypt every stored ciphertext and report the ones that fail.",
        )

    def handle(self, *args, decrypt=False, **options):
        missing = self._encryption() + self._hashing()
        failed = self._decrypt_all() if decrypt else 0
        audit_id = settings.PORTAL_AUDIT_KEY[0]
        self.stdout.write(
            f"PORTAL_AUDIT_KEY {audit_id}: the only audit key; `verify_audit` proves it matches."
        )
        if missing:
            raise CommandError(
                f"Stored data needs key(s) that are not configured: {', '.join(missing)}.",
                returncode=1,
            )
        if failed:
            raise CommandError(
                f"{failed} ciphertext(s) did not decrypt: wrong PORTAL_ENCRYPTION_KEYS, or "
                "tampered rows (see above).",
                returncode=1,
            )

    @sensitive_variables("plaintext")
    def _decrypt_all(self) -> int:
        """Decrypt each ciphertext with the row it is bound to; the number that fail."""
        versions = CredentialVersion.objects.exclude(ciphertext="").only("public_id", "ciphertext")
        answers = IdempotencyRecord.objects.exclude(response="").only("public_id", "response")
        rows = [(f"version {v.public_id}", v.ciphertext, v.associated_data) for v in versions]
        rows += [
            (f"stored API answer {r.public_id}", r.response, r.associated_data) for r in answers
        ]
        rows += [
            (f"TOTP seed of device {s.device_id}", s.ciphertext, s.associated_data)
            for s in TOTPSeed.objects.all()
        ]
        failed = 0
        for label, text, associated_data in rows:
            try:
                plaintext = crypto.decrypt(
                    text, keyring=settings.PORTAL_ENCRYPTION_KEYS, associated_data=associated_data
                )
            except crypto.DecryptionFailed as error:
                failed += 1
                self.stderr.write(f"{label}: {error}")
                continue
            del plaintext  # decrypted only to prove it can be
        self.stdout.write(f"Decrypted {len(rows) - failed} of {len(rows)} ciphertext(s).")
        return failed

    def _encryption(self) -> list[str]:
        """Every ciphertext needs its key, whatever its version's state: a revoked endpoint
        secret is still shown, re-encrypted and (if reactivated) used to sign. Every TOTP
        seed needs its key too, confirmed or not: without it that person cannot sign in."""
        secrets = Counter(
            _key_id(text)
            for text in CredentialVersion.objects.exclude(ciphertext="")
            .values_list("ciphertext", flat=True)
            .iterator()
        )
        answers = Counter(
            _key_id(text)
            for text in IdempotencyRecord.objects.exclude(response="")
            .values_list("response", flat=True)
            .iterator()
        )
        seeds = Counter(
            _key_id(text)
            for text in TOTPSeed.objects.values_list("ciphertext", flat=True).iterator()
        )

        def needs(key_id: str) -> str:
            text = (
                f"{secrets[key_id]} webhook signing secret(s), "
                f"{answers[key_id]} stored API answer(s)"
            )
            # Named only when there are some, so the lines of a portal without
            # two-factor sign-in read as they always have.
            return text + (f", {seeds[key_id]} TOTP seed(s)" if seeds[key_id] else "")

        return self._report(
            "PORTAL_ENCRYPTION_KEYS",
            settings.PORTAL_ENCRYPTION_KEYS,
            {key_id: needs(key_id) for key_id in secrets.keys() | answers.keys() | seeds.keys()},
            "run `reencrypt`; stored API answers are deleted after 24 hours",
        )

    def _hashing(self) -> list[str]:
        """A digest is needed while its version verifies or can still be reactivated; the
        plaintext is gone, so the only way off a hash key is a new version."""
        live = (
            CredentialVersion.objects.filter(digest__isnull=False)
            .exclude(digest="")
            .filter(
                Q(state__in=VERIFYING_STATES)
                | Q(state=State.REVOKED, reactivation_deadline__gt=timezone.now())
            )
        )
        credentials = defaultdict(set)
        counts = Counter()
        for key_id, credential_id in live.values_list("digest_key_id", "credential_id"):
            counts[key_id] += 1
            credentials[key_id].add(credential_id)
        return self._report(
            "PORTAL_TOKEN_HASH_KEYS",
            settings.PORTAL_TOKEN_HASH_KEYS,
            {
                key_id: f"{count} version(s) that verify or can be reactivated, on credential(s) "
                + _ids(credentials[key_id])
                for key_id, count in counts.items()
            },
            "rotate those credentials, then wait out their overlap and reactivation window",
        )

    def _report(self, name, keyring, usage: dict[str, str], how_to_move: str) -> list[str]:
        configured = [key_id for key_id, _ in keyring.keys]
        for position, key_id in enumerate(configured):
            label = f"{name} {key_id}{' (newest)' if position == 0 else ''}"
            if key_id in usage:
                advice = "" if position == 0 else f" (to move off it: {how_to_move})"
                self.stdout.write(f"{label}: {usage[key_id]}{advice}")
            elif position == 0:
                self.stdout.write(f"{label}: nothing yet")
            else:
                self.stdout.write(f"{label}: nothing; it can be removed")
        missing = sorted(set(usage) - set(configured))
        for key_id in missing:
            self.stderr.write(f"{name} {key_id}: NOT CONFIGURED, needed by {usage[key_id]}")
        return [f"{name} {key_id}" for key_id in missing]


def _ids(ids: set[int], shown: int = 20) -> str:
    listed = ", ".join(str(pk) for pk in sorted(ids)[:shown])
    return listed + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
