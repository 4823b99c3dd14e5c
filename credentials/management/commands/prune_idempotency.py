"""Delete the automation API's stored idempotent answers older than 24 hours."""

from django.core.management.base import BaseCommand

from credentials.api import idempotency


class Command(BaseCommand):
    help = (
        "Delete stored Idempotency-Key answers older than 24 hours (they may hold a rotated "
        "secret). Safe to run from cron or the clock, in several processes at once."
    )

    def handle(self, *args, **options):
        deleted = idempotency.prune()
        self.stdout.write(f"Deleted {deleted} stored answer(s) older than 24 hours.")
