"""The clock: record expiries and prune used one-time form tokens (once, or in a loop)."""

import logging
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from credentials import once
from credentials.lifecycle import versions_expire

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Expire versions past their lifetime or overlap and prune old one-time form tokens. "
        "With --every N, repeat every N seconds; a database error is logged and retried."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=0, metavar="SECONDS")

    def handle(self, *args, every=0, **options):
        while True:
            try:
                count = versions_expire()
                once.prune()
            except DatabaseError as error:
                if not every:
                    raise
                log.warning("expiry sweep failed, retrying in %ss: %s", every, type(error).__name__)
            else:
                if count or not every:
                    self.stdout.write(f"Expired {count} version(s).")
            if not every:
                return
            time.sleep(every)
            # A long-lived loop must not keep a dead connection. Not before the first pass:
            # inside a caller's transaction (a test) it would close the connection under it.
            close_old_connections()
