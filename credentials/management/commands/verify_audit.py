"""Check the audit chain; exit non-zero naming the first broken event."""

import re

from django.core.management.base import BaseCommand, CommandError

from credentials.audit import ChainReport, record_verification, verify_chain
from credentials.models import AuditEvent

_HEAD = re.compile(r"([0-9]{1,18}):([0-9a-fA-F]{64})")


class Command(BaseCommand):
    help = "Verify the HMAC chain of the audit trail. Exits 0 if intact, 1 naming the first break."

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-head",
            metavar="SEQ:HASH",
            help="A chain head recorded earlier (outside the database); the chain must still "
            "contain that event with that hash.",
        )

    def handle(self, *args, expect_head=None, **options):
        expected = None
        if expect_head:
            expected = _HEAD.fullmatch(expect_head)
            if expected is None:
                raise CommandError("--expect-head takes SEQ:HASH (a number and 64 hex digits).")
        report = verify_chain()
        if report.ok and expected is not None:
            seq, digest = int(expected.group(1)), expected.group(2).lower()
            event = AuditEvent.objects.filter(seq=seq).first()
            if event is None or event.hash != digest:
                report = ChainReport(
                    False, report.checked, report.head_seq, report.head_hash, seq,
                    f"event #{seq} no longer matches the head recorded earlier "
                    "(the newest events were removed or rewritten)",
                )  # fmt: skip
        record_verification(report, checked_by="verify_audit command")
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at event #{report.broken_seq}: {report.problem}. "
                f"({report.checked} event(s) verified before it.)",
                returncode=1,
            )
        self.stdout.write(
            f"Audit chain intact: {report.checked} event(s), head #{report.head_seq} "
            f"{report.head_hash}"
        )
