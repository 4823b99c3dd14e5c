"""The clock as a long-running process (the Procfile's `clock`): a sweep every interval."""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from credentials.webhooks.clock import sweep

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run `sweep` every PORTAL_CLOCK_INTERVAL_SECONDS (or --every N) until stopped. Two "
        "clocks at once are safe; a database error is logged and the next pass retries."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=None, metavar="SECONDS")
        parser.add_argument(
            "--passes", type=int, default=None, help="Stop after this many passes (for tests)."
        )

    def handle(self, *args, every=None, passes=None, **options):
        every = every or settings.PORTAL_CLOCK_INTERVAL_SECONDS
        done = 0
        while passes is None or done < passes:
            if done:
                # A long-lived loop must not keep a dead connection (not before the first
                # pass: inside a caller's transaction that would close it under the caller).
                close_old_connections()
            try:
                report = sweep()
            except DatabaseError as error:
                log.warning("clock pass failed, retrying in %ss: %s", every, type(error).__name__)
            else:
                if report.expired or report.expiring_notices or report.requeued:
                    self.stdout.write(str(report))
            done += 1
            if passes is None or done < passes:
                time.sleep(every)
