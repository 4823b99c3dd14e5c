"""Print where the local portal is and how to sign in to it."""

import os

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the local portal URL and the demo logins (make run)."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or "(DEMO_PASSWORD from .env)"
        bind = os.environ.get("KEYTURN_BIND", "127.0.0.1:8000")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Keyturn is starting on http://{bind}/admin/",
                    "Demo logins (password from DEMO_PASSWORD in .env):",
                    f"  security  / {password}   Security staff: issue, rotate, revoke",
                    f"  auditor   / {password}   Auditors: read everything, change nothing",
                    f"  admin     / {password}   Administrators: also exposures and users",
                    "",
                ]
            )
        )
