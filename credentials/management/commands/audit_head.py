"""Print the audit chain's head as SEQ:HASH, for keeping outside the database."""

from django.core.management.base import BaseCommand, CommandError

from credentials.audit import GENESIS_HASH
from credentials.models import AuditChainHead, AuditEvent


class Command(BaseCommand):
    help = (
        "Print the newest audit event's sequence number and hash as SEQ:HASH, alone on stdout. "
        "Keep the line somewhere the database's writers cannot reach (a log shipped off the "
        "host, a ticket, a printout); `verify_audit --expect-head SEQ:HASH` later proves the "
        "chain still holds that event, so deleting the newest events and rewinding the head "
        "is caught."
    )

    def handle(self, *args, **options):
        head = AuditChainHead.objects.filter(pk=1).first()
        seq, digest = (head.seq, head.hash) if head and head.seq else (0, GENESIS_HASH)
        if seq:
            # The head row and the event it names must agree, or exporting it would vouch for
            # a chain that is already inconsistent.
            event = AuditEvent.objects.filter(seq=seq).only("hash").first()
            if event is None or event.hash != digest:
                raise CommandError(
                    f"The chain head names event #{seq}, which is missing or does not match it. "
                    "Run `verify_audit` to find where the chain breaks.",
                    returncode=1,
                )
        self.stdout.write(f"{seq}:{digest}")
