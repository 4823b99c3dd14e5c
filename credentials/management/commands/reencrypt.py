"""Move every endpoint-secret and TOTP-seed ciphertext to the newest PORTAL_ENCRYPTION_KEYS key."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from credentials import audit, crypto
from credentials.audit import Actor
from credentials.models import CredentialVersion, TOTPSeed


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored endpoint secret and TOTP seed under the newest key in "
        "PORTAL_ENCRYPTION_KEYS, so older keys can be removed from the list afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size=200, **options):
        self.keyring = settings.PORTAL_ENCRYPTION_KEYS
        self.actor = Actor.system("reencrypt command")
        self.newest = self.keyring.current[0]
        self.moved = self.failed = 0
        versions = CredentialVersion.objects.exclude(ciphertext="").select_related("credential")
        self._move(versions, batch_size, self._audit_version, lambda v: f"version {v.public_id}")
        seeds = TOTPSeed.objects.select_related("device__user")
        self._move(seeds, batch_size, self._audit_seed, lambda s: f"TOTP device {s.device_id}")
        remaining = {
            crypto.ciphertext_key_id(text)
            for rows in (versions, seeds)
            for text in rows.values_list("ciphertext", flat=True)
        }
        self.stdout.write(
            f"Re-encrypted {self.moved} secret(s) under key {self.newest!r}. "
            f"Keys still in use: {', '.join(sorted(remaining)) or 'none'}."
        )
        if self.failed:
            raise CommandError(f"{self.failed} ciphertext(s) could not be decrypted; see above.")

    @sensitive_variables("plaintext")
    def _move(self, rows, batch_size, write_audit, label) -> None:
        """Re-encrypt each of ``rows`` (models with ``ciphertext`` and ``associated_data``) that
        is not under the newest key yet, with its audit event."""
        ids = list(
            rows.exclude(ciphertext__startswith=f"v1.{self.newest}.")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(ids), batch_size):
            # One short transaction per batch: a crash part-way leaves every row readable
            # (either key still decrypts it) and a rerun finishes the job.
            with transaction.atomic():
                # Locked in key order, so two runs at once queue up instead of deadlocking;
                # only this table's rows, as the joined ones are read, not changed.
                batch = (
                    rows.select_for_update(of=("self",))
                    .filter(pk__in=ids[start : start + batch_size])
                    .order_by("pk")
                )
                for row in batch:
                    try:
                        plaintext = crypto.decrypt(
                            row.ciphertext,
                            keyring=self.keyring,
                            associated_data=row.associated_data,
                        )
                    except crypto.DecryptionFailed as error:
                        self.failed += 1
                        self.stderr.write(f"{label(row)}: {error}")
                        continue
                    old_key = crypto.ciphertext_key_id(row.ciphertext)
                    row.ciphertext = crypto.encrypt(
                        plaintext, keyring=self.keyring, associated_data=row.associated_data
                    )
                    row.save(update_fields=["ciphertext"])
                    write_audit(row, {"from_key": old_key, "to_key": self.newest})
                    self.moved += 1

    def _audit_version(self, version, details) -> None:
        audit.append(
            actor=self.actor,
            action="credential.reencrypted",
            target=version,
            app_id=version.credential.app_id,
            credential_id=version.credential_id,
            details=details,
        )

    def _audit_seed(self, seed, details) -> None:
        audit.append(
            actor=self.actor,
            action="user.totp_seed_reencrypted",
            target=seed.device.user,
            details={"device": seed.device_id, **details},
        )
