"""One pass of the clock, for cron: `manage.py sweep`."""

from django.core.management.base import BaseCommand

from credentials.webhooks.clock import sweep


class Command(BaseCommand):
    help = (
        "Expire versions past their time, send credential.expiring notices, re-queue webhook "
        "deliveries whose worker died, prune old receipts. Safe to run from several hosts."
    )

    def handle(self, *args, **options):
        self.stdout.write(str(sweep()))
