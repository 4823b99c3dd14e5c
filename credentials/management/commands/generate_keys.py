"""Print a fresh set of Keyturn keys as `.env` lines."""

import secrets

from django.core.management.base import BaseCommand
from django.utils import timezone

from credentials.crypto import generate_key_line


class Command(BaseCommand):
    help = (
        "Print fresh SECRET_KEY, PORTAL_ENCRYPTION_KEYS, PORTAL_TOKEN_HASH_KEYS and "
        "PORTAL_AUDIT_KEY lines for .env."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--key-id",
            default=None,
            help="Id for the new keys (default: k + today's date). Prepend the new entry to an "
            "existing PORTAL_ENCRYPTION_KEYS or PORTAL_TOKEN_HASH_KEYS list to rotate it.",
        )
        parser.add_argument(
            "--local",
            action="store_true",
            help="Also print settings for a local demo on http://127.0.0.1:8000 "
            "(no TLS) and a random DEMO_PASSWORD. Used by `make run`.",
        )

    def handle(self, *args, key_id=None, local=False, **options):
        key_id = key_id or "k" + timezone.now().strftime("%Y%m%d")
        lines = [
            f"SECRET_KEY={secrets.token_urlsafe(50)}",
            f"PORTAL_ENCRYPTION_KEYS={generate_key_line(key_id)}",
            f"PORTAL_TOKEN_HASH_KEYS={generate_key_line(key_id)}",
            f"PORTAL_AUDIT_KEY={generate_key_line(key_id)}",
        ]
        if local:
            lines = [
                "# Local demo settings written by `make run`. Not for production.",
                "DEBUG=0",
                "PORTAL_HTTPS=0",
                "ALLOWED_HOSTS=127.0.0.1,localhost",
                "# The demo's webhook endpoints listen on this machine.",
                "PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS=1",
                f"DEMO_PASSWORD={secrets.token_urlsafe(12)}",
                *lines,
            ]
        self.stdout.write("\n".join(lines))
