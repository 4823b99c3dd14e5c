"""Send a signed test.ping to one endpoint now and print its receipt."""

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from credentials.admin.access import as_id
from credentials.audit import Actor
from credentials.models import Endpoint
from credentials.webhooks import send_test_ping


class Command(BaseCommand):
    help = (
        "Send a test.ping to an endpoint (by id or exact URL) through the real signer and "
        "sender, and print the receipt. Exit status 1 if the endpoint did not answer 2xx."
    )

    def add_arguments(self, parser):
        parser.add_argument("endpoint", help="the endpoint's id, or its exact URL")

    def handle(self, *args, endpoint, **options):
        target = self._find(endpoint)
        receipt = send_test_ping(endpoint=target, actor=Actor.system("send_test_event command"))
        status = receipt.status_code if receipt.status_code is not None else "no response"
        self.stdout.write(f"Sent test.ping {receipt.delivery.message.message_id} to {target.url}")
        self.stdout.write(f"  status:    {status} ({receipt.latency_ms} ms)")
        self.stdout.write(f"  signed by: version(s) {receipt.signed_versions or 'none'}")
        if receipt.error:
            self.stdout.write(f"  error:     {receipt.error}")
        if receipt.response_excerpt:
            self.stdout.write(f"  response:  {receipt.response_excerpt[:200]}")
        path = reverse("admin:credentials_deliveryreceipt_change", args=[receipt.pk])
        self.stdout.write(f"  receipt:   #{receipt.pk} ({path})")
        if not receipt.succeeded:
            raise CommandError("The endpoint did not accept the test event.")

    def _find(self, text: str) -> Endpoint:
        pk = as_id(text)
        found = Endpoint.objects.filter(pk=pk).first() if pk is not None else None
        found = found or Endpoint.objects.filter(url=text).order_by("pk").first()
        if found is None:
            raise CommandError(f"No endpoint has the id or URL {text[:200]!r}.")
        return found
