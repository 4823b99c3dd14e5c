"""Issue a credential from the command line and print its secret once, for bootstrapping."""

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from credentials import lifecycle
from credentials.audit import Actor
from credentials.models import App, Kind


class Command(BaseCommand):
    help = (
        "Issue a new credential for an app. The secret is printed once, alone, on stdout "
        "(details go to stderr), so `KEY=$(manage.py issue_credential ...)` captures just it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app", required=True, metavar="CLIENT_ID")
        parser.add_argument("--kind", required=True, choices=Kind.values)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", default="", help="Comma-separated scopes from the catalogue."
        )
        parser.add_argument("--lifetime-days", type=int, default=None)
        parser.add_argument("--endpoint-url", help="For endpoint_secret: the endpoint to create.")
        parser.add_argument(
            "--public-key-file", type=Path, help="For service_account_key: the public key (PEM)."
        )

    @sensitive_variables("issued")
    def handle(self, *args, **options):
        app = App.objects.filter(client_id=options["app"]).first()
        if app is None:
            raise CommandError(f"No app has client_id {options['app']!r}.")
        kind = options["kind"]
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        actor = Actor.system(f"command line ({getpass.getuser()})")
        public_key = None
        if kind == Kind.SERVICE_ACCOUNT_KEY:
            if options["public_key_file"] is None:
                raise CommandError("--public-key-file is required for service_account_key.")
            try:
                public_key = options["public_key_file"].read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as error:
                raise CommandError(
                    f"Cannot read the public key file: {error.__class__.__name__}."
                ) from None
        elif options["public_key_file"] is not None:
            raise CommandError("--public-key-file is only for service_account_key.")
        if (kind == Kind.ENDPOINT_SECRET) != bool(options["endpoint_url"]):
            raise CommandError("--endpoint-url is required for endpoint_secret, and only for it.")
        try:
            with transaction.atomic():
                if kind == Kind.ENDPOINT_SECRET:
                    issued = lifecycle.endpoint_create(
                        actor=actor, app=app, url=options["endpoint_url"], name=options["name"]
                    )
                else:
                    issued = lifecycle.credential_issue(
                        actor=actor,
                        app=app,
                        kind=kind,
                        name=options["name"],
                        scopes=scopes,
                        lifetime_days=options["lifetime_days"],
                        public_key_pem=public_key,
                    )
                if issued.plaintext is not None:
                    lifecycle.version_record_reveal(
                        actor=actor, version=issued.version, channel="command line"
                    )
        except lifecycle.LifecycleError as error:
            raise CommandError(str(error)) from None
        version = issued.version
        self.stderr.write(
            f"Issued {version.credential} v{version.number}, {version.masked}, "
            f"{version.fingerprint}, expires {version.expires_at:%Y-%m-%d}."
        )
        if issued.plaintext is not None:
            self.stderr.write("The secret follows on stdout. It is shown once: store it now.")
            self.stdout.write(issued.plaintext)
