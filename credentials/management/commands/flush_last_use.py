"""Write last-use counts still waiting in the cache to the database (once, or in a loop)."""

import logging
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from credentials import usage

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Write the last-use counts that processes left in the shared cache to the database, "
        "at most once per version per PORTAL_LAST_USE_FLUSH_SECONDS. With --every N, repeat "
        "every N seconds. Needs a shared cache (CACHE_URL=redis://...) to see other processes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=0, metavar="SECONDS")

    def handle(self, *args, every=0, **options):
        while True:
            if every:
                # A long-lived loop must not keep a dead or expired connection. Not on a
                # single run: inside a caller's transaction (a test) it would break it.
                close_old_connections()
            try:
                flushed = usage.flush_pending()
            except DatabaseError as error:
                if not every:
                    raise
                log.warning(
                    "last-use flush failed, retrying in %ss: %s", every, type(error).__name__
                )
            else:
                if flushed or not every:
                    self.stdout.write(f"Flushed the last use of {flushed} version(s).")
            if not every:
                return
            time.sleep(every)
