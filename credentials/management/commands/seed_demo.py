"""Load the demo organisation once: apps, endpoints, credentials in varied states, role users."""

import base64
import hmac
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from credentials import audit, lifecycle
from credentials.audit import Actor
from credentials.crypto import backup_codes
from credentials.models import App, Kind, RevokeReason
from credentials.roles import ensure_roles

from .demo_receiver import DEMO_RECEIVER

DEMO_USERS = {
    "security": ("Security staff", "Sam", "Security"),
    "auditor": ("Auditors", "Ada", "Auditor"),
    "admin": ("Administrators", "Alex", "Admin"),
}
MARKER_APP = "Storefront"
DEMO_BACKUP_CODES = 10


def demo_backup_codes(password: str, username: str) -> list[str]:
    """The demo login's backup codes, derived from DEMO_PASSWORD so `demo_logins` can print
    them again. Demo only: real backup codes are random (``backup_codes_generate``)."""
    codes = []
    for index in range(DEMO_BACKUP_CODES):
        mac = hmac.new(password.encode(), f"demo-backup:{username}:{index}".encode(), "sha256")
        # The first 50 bits as 10 base32 letters, the form of every backup code.
        codes.append(base64.b32encode(mac.digest()[:10]).decode("ascii").lower()[:10])
    return codes


class Command(BaseCommand):
    help = "Create demo data and one login per role (password from DEMO_PASSWORD). Idempotent."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "")
        if len(password) < 12:
            raise CommandError(
                "Set DEMO_PASSWORD (12 characters or more) in the environment or .env; "
                "`make run` writes a random one."
            )
        with transaction.atomic():
            self._users(password)
            if App.objects.filter(name=MARKER_APP).exists():
                self.stdout.write("Demo data already loaded; left as it is.")
                return
            self._organisation()
        self.stdout.write("Loaded the demo organisation.")

    def _users(self, password):
        ensure_roles()
        User = get_user_model()
        for username, (group_name, first, last) in DEMO_USERS.items():
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "is_staff": True,
                    "email": f"{username}@keyturn.invalid",
                },
            )
            if created:
                user.set_password(password)
                user.save()
            user.groups.add(Group.objects.get(name=group_name))
            if not StaticDevice.objects.filter(user=user).exists():
                self._backup_codes(user, password)

    def _backup_codes(self, user, password):
        # The demo's second factor: backup codes that `demo_logins` prints, as the portal asks
        # every sign-in for one (PORTAL_2FA_REQUIRED is on outside DEBUG). Signing in with
        # one is the ordinary code path; nothing in it knows about the demo.
        _key_id, key = settings.PORTAL_TOKEN_HASH_KEYS.current
        device = StaticDevice.objects.create(user=user, name="Backup codes", confirmed=True)
        codes = demo_backup_codes(password, user.username)
        StaticToken.objects.bulk_create(
            StaticToken(device=device, token=backup_codes.backup_code_digest(code, key))
            for code in codes
        )
        audit.append(
            actor=Actor.system("demo data"),
            action="user.backup_codes_generated",
            target=user,
            details={"count": len(codes)},
        )

    def _organisation(self):
        seed = Actor.system("demo data")
        store = lifecycle.app_create(
            actor=seed,
            name=MARKER_APP,
            owner_team="Commerce",
            contact_email="commerce@keyturn.invalid",
            description="The online shop: syncs orders and receives payment events.",
        )
        lifecycle.credential_issue(
            actor=seed,
            app=store,
            kind=Kind.API_KEY,
            name="Orders sync (expires soon)",
            scopes=["orders:read", "orders:write"],
            lifetime_days=5,
        )
        oauth = lifecycle.credential_issue(
            actor=seed,
            app=store,
            kind=Kind.CLIENT_SECRET,
            name="OAuth client secret",
            scopes=["orders:read"],
            lifetime_days=180,
        )
        # Mid-overlap: rotated with a week during which both secrets work.
        lifecycle.credential_rotate(
            actor=seed, credential=oauth.credential, overlap_seconds=7 * 86400
        )
        lifecycle.endpoint_create(
            actor=seed,
            app=store,
            url=f"http://{DEMO_RECEIVER}/storefront",
            event_types=["credential.rotated", "credential.revoked", "credential.expiring"],
        )

        billing = lifecycle.app_create(
            actor=seed,
            name="Billing",
            owner_team="Finance",
            contact_email="finance@keyturn.invalid",
            description="Invoices and the nightly ledger export.",
        )
        export = lifecycle.credential_issue(
            actor=seed,
            app=billing,
            kind=Kind.API_KEY,
            name="Invoice export",
            scopes=["orders:read"],
            lifetime_days=90,
        )
        # Revoked just now: still inside its reactivation window.
        lifecycle.version_revoke(
            actor=seed,
            version=export.version,
            reason=RevokeReason.ROUTINE,
            note="Export job moved to the new pipeline.",
        )
        legacy = lifecycle.credential_issue(
            actor=seed,
            app=billing,
            kind=Kind.API_KEY,
            name="Legacy reporting key",
            scopes=["orders:read"],
        )
        # Exposed: revoked for good, replaced by a fresh version.
        lifecycle.version_report_exposure(
            actor=seed, version=legacy.version, note="Found in a public gist by the secret scanner."
        )
        lifecycle.credential_rotate(actor=seed, credential=legacy.credential, overlap_seconds=0)
        lifecycle.credential_issue(
            actor=seed,
            app=billing,
            kind=Kind.SERVICE_ACCOUNT_KEY,
            name="Ledger batch job",
            public_key_pem=_throwaway_public_key(),
        )
        lifecycle.endpoint_create(
            actor=seed,
            app=billing,
            url=f"http://{DEMO_RECEIVER}/billing",
            event_types=["credential.exposed", "credential.revoked"],
        )

        partner = lifecycle.app_create(
            actor=seed,
            name="Partner portal",
            owner_team="Partnerships",
            contact_email="partners@keyturn.invalid",
            description="Resellers' integration; introspects keys through Keyturn.",
        )
        lifecycle.credential_issue(
            actor=seed,
            app=partner,
            kind=Kind.API_KEY,
            name="Introspection caller",
            scopes=["introspect"],
            lifetime_days=30,
        )


def _throwaway_public_key() -> str:
    """A fresh Ed25519 public key; its private half is dropped, as a demo needs no signing."""
    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
