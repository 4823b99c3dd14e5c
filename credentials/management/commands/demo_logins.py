"""Print where the local portal is and how to sign in to it."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand
from django_otp.plugins.otp_static.models import StaticToken

from credentials.crypto.backup_codes import backup_code_digest, format_backup_code

from .seed_demo import DEMO_USERS, demo_backup_codes

SHOWN_CODES = 3


class Command(BaseCommand):
    help = "Print the local portal URL, the demo logins and their unused backup codes (make run)."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "")
        bind = os.environ.get("KEYTURN_BIND", "127.0.0.1:8000")
        shown = password or "(DEMO_PASSWORD from .env)"
        lines = [
            "",
            f"Keyturn is starting on http://{bind}/admin/",
            "Demo logins (password from DEMO_PASSWORD in .env), then a backup code as the",
            "second factor (each works once; set up an authenticator app from the user menu):",
            f"  security  / {shown}   Security staff: issue, rotate, revoke",
            f"  auditor   / {shown}   Auditors: read everything, change nothing",
            f"  admin     / {shown}   Administrators: also exposures and users",
        ]
        if password:
            lines.append("Unused backup codes:")
            for username in DEMO_USERS:
                codes = self._unused_codes(password, username)
                lines.append(f"  {username:<9} " + (" ".join(codes) or "none left"))
        lines.append("")
        self.stdout.write("\n".join(lines))

    def _unused_codes(self, password, username):
        _key_id, key = settings.PORTAL_TOKEN_HASH_KEYS.current
        codes = demo_backup_codes(password, username)
        stored = set(
            StaticToken.objects.filter(
                device__user__username=username,
                token__in=[backup_code_digest(code, key) for code in codes],
            ).values_list("token", flat=True)
        )
        unused = [code for code in codes if backup_code_digest(code, key) in stored]
        return [format_backup_code(code) for code in unused[:SHOWN_CODES]]
