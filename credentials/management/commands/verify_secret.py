"""Say whether API keys or client secrets read from stdin verify, without echoing them."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.views.decorators.debug import sensitive_variables

from credentials.models import Credential
from credentials.verification import verify_bearers

MAX_SECRETS = 100


class Command(BaseCommand):
    help = (
        "Read API keys or client secrets from stdin, one per line, and say for each (by line "
        "number, never by its text) whether it verifies and as which credential and version. "
        "Exits 1 unless every one verifies. Secrets are read from stdin, not the command line, "
        "so they stay out of shell history and the process list. Meant for a canary key kept "
        "with the key backups: after a restore it proves PORTAL_TOKEN_HASH_KEYS are the right "
        "ones, which nothing in the database can (its digests are one-way)."
    )

    @sensitive_variables("lines", "secrets")
    def handle(self, *args, **options):
        lines = sys.stdin.read(MAX_SECRETS * 200).splitlines()
        secrets = [line.strip() for line in lines if line.strip()][:MAX_SECRETS]
        if not secrets:
            raise CommandError("Give the secrets on stdin, one per line.")
        answers = verify_bearers(secrets)
        names = dict(
            Credential.objects.filter(
                pk__in={a.credential_id for a in answers if a is not None}
            ).values_list("pk", "name")
        )
        for number, answer in enumerate(answers, start=1):
            if answer is None:
                self.stdout.write(f"{number}: does not verify")
            else:
                self.stdout.write(
                    f"{number}: verifies: credential {answer.credential_id} "
                    f"({names.get(answer.credential_id, '?')}), version {answer.number} "
                    f"({answer.state})"
                )
        refused = sum(answer is None for answer in answers)
        if refused:
            raise CommandError(
                f"{refused} of {len(answers)} secret(s) did not verify.", returncode=1
            )
