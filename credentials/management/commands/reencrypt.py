"""Move every endpoint-secret ciphertext to the newest PORTAL_ENCRYPTION_KEYS key."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from credentials import audit, crypto
from credentials.audit import Actor
from credentials.models import CredentialVersion


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored endpoint secret under the newest key in PORTAL_ENCRYPTION_KEYS, "
        "so older keys can be removed from the list afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size=200, **options):
        keyring = settings.PORTAL_ENCRYPTION_KEYS
        actor = Actor.system("reencrypt command")
        newest = keyring.current[0]
        moved = failed = 0
        pending = (
            CredentialVersion.objects.exclude(ciphertext="")
            .exclude(ciphertext__startswith=f"v1.{newest}.")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ids = list(pending)
        for start in range(0, len(ids), batch_size):
            # One short transaction per batch: a crash part-way leaves every row readable
            # (either key still decrypts it) and a rerun finishes the job.
            with transaction.atomic():
                # Locked in key order, so two runs at once queue up instead of deadlocking.
                batch = (
                    CredentialVersion.objects.select_for_update()
                    .filter(pk__in=ids[start : start + batch_size])
                    .select_related("credential")
                    .order_by("pk")
                )
                for version in batch:
                    try:
                        plaintext = crypto.decrypt(
                            version.ciphertext,
                            keyring=keyring,
                            associated_data=version.associated_data,
                        )
                    except crypto.DecryptionFailed as error:
                        failed += 1
                        self.stderr.write(f"version {version.public_id}: {error}")
                        continue
                    old_key = crypto.ciphertext_key_id(version.ciphertext)
                    version.ciphertext = crypto.encrypt(
                        plaintext, keyring=keyring, associated_data=version.associated_data
                    )
                    version.save(update_fields=["ciphertext"])
                    audit.append(
                        actor=actor,
                        action="credential.reencrypted",
                        target=version,
                        app_id=version.credential.app_id,
                        credential_id=version.credential_id,
                        details={"from_key": old_key, "to_key": newest},
                    )
                    moved += 1
        remaining = {
            crypto.ciphertext_key_id(text)
            for text in CredentialVersion.objects.exclude(ciphertext="").values_list(
                "ciphertext", flat=True
            )
        }
        self.stdout.write(
            f"Re-encrypted {moved} secret(s) under key {newest!r}. "
            f"Keys still in use: {', '.join(sorted(remaining)) or 'none'}."
        )
        if failed:
            raise CommandError(f"{failed} ciphertext(s) could not be decrypted; see above.")
