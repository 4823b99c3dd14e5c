"""TOTP seeds at rest: encrypted, bound to their device, outside django-otp's table.

django-otp keeps the seed as hex in ``TOTPDevice.key``; anyone who reads a database backup
could then compute a person's codes. Keyturn keeps the seed in ``TOTPSeed`` instead,
``crypto.encrypt`` output under ``PORTAL_ENCRYPTION_KEYS`` bound to the device's primary key,
and leaves ``TOTPDevice.key`` holding ``SEED_ELSEWHERE``, which is not hex: a path that reads
django-otp's own ``bin_key`` fails loudly instead of checking codes against a known key.
"""

from django.conf import settings
from django.db import models
from django_otp.plugins.otp_totp.models import TOTPDevice

from .. import crypto

# What django-otp's key column holds once the seed is in TOTPSeed. Not hex, so unhexlify
# raises rather than yielding a key anyone could compute codes from.
SEED_ELSEWHERE = "keyturn:encrypted-seed"


def seed_associated_data(device_id: int) -> bytes:
    """What a seed's ciphertext is bound to: its device row. A ciphertext copied onto another
    device's seed row fails authentication there instead of checking that person's codes."""
    return b"keyturn/totp/v1/" + str(device_id).encode("ascii")


class TOTPSeed(models.Model):
    """The encrypted seed of one TOTP device (an authenticator app), made with the device."""

    device = models.OneToOneField(
        TOTPDevice, on_delete=models.CASCADE, primary_key=True, related_name="keyturn_seed"
    )
    ciphertext = models.TextField(editable=False)

    class Meta:
        verbose_name = "TOTP seed"

    def __str__(self) -> str:
        return f"encrypted seed of TOTP device {self.device_id}"

    @property
    def associated_data(self) -> bytes:
        return seed_associated_data(self.device_id)


class KeyturnTOTPDevice(TOTPDevice):
    """django-otp's TOTP device, reading its seed from ``TOTPSeed``.

    Every Keyturn path that shows a seed or checks a code loads devices through this proxy,
    so django-otp's own ``verify_token`` and ``config_url`` work unchanged on the decrypted
    seed. A device without a seed row, or whose ciphertext does not open, raises on
    ``bin_key``: it verifies nothing.
    """

    class Meta:
        proxy = True

    @classmethod
    def model_label(cls) -> str:
        # Sessions name the verified device by persistent id; keep django-otp's label so a
        # session verified through this proxy names the same device as one verified before.
        return TOTPDevice.model_label()

    @property
    def bin_key(self) -> bytes:
        """The seed, decrypted in memory. Raises ``TOTPSeed.DoesNotExist`` or
        ``crypto.DecryptionFailed`` rather than returning anything else."""
        seed = self.keyturn_seed
        return crypto.decrypt(
            seed.ciphertext,
            keyring=settings.PORTAL_ENCRYPTION_KEYS,
            associated_data=seed_associated_data(self.pk),
        )
