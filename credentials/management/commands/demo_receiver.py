"""A local webhook receiver for the demo (`make run`): prints each event it gets.

It checks each delivery's signatures against the endpoint's current signing keys, answers 204
and recognises a resent message by its ``webhook-id``, as a real receiver should. Demo only:
it listens on 127.0.0.1, which deliveries may reach only with
PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS on (``make run`` turns it on).
"""

import hmac
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from credentials.models import Endpoint
from credentials.webhooks.signing import signature_header, signing_keys

# Where the demo endpoints point (seed_demo) and the receiver listens.
DEMO_RECEIVER = os.environ.get("KEYTURN_DEMO_RECEIVER", "127.0.0.1:8001")


class Command(BaseCommand):
    help = f"Receive the demo endpoints' webhooks on http://{DEMO_RECEIVER}/ and print them."

    def handle(self, *args, **options):
        bind = DEMO_RECEIVER
        host, port = bind.rsplit(":", 1)
        seen: set[str] = set()
        out = self.stdout

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(min(int(self.headers.get("content-length", 0)), 1 << 20))
                message_id = self.headers.get("webhook-id", "")
                verdict = _check(self.path, self.headers, body)
                try:
                    event_type = json.loads(body).get("type", "?")
                except ValueError:
                    event_type = "?"
                again = " (again: already handled)" if message_id in seen else ""
                if verdict == "signature ok":
                    seen.add(message_id)
                out.write(f"{self.path}: {event_type} {message_id} — {verdict}{again}")
                self.send_response(204 if verdict == "signature ok" else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer((host, int(port)), Handler)
        self.stdout.write(f"Demo webhook receiver on http://{bind}/")
        server.serve_forever()


def _check(path, headers, body) -> str:
    close_old_connections()
    url = f"http://{DEMO_RECEIVER}{path}"
    endpoint = Endpoint.objects.filter(url=url).first()
    if endpoint is None:
        return "no endpoint has this URL"
    timestamp = headers.get("webhook-timestamp", "")
    if not timestamp.isdigit():
        return "missing webhook-timestamp"
    sent = set(headers.get("webhook-signature", "").split(" "))
    for key in signing_keys(endpoint):
        expected = signature_header(
            message_id=headers.get("webhook-id", ""),
            timestamp=int(timestamp),
            body=body,
            keys=[key],
        )
        if any(hmac.compare_digest(expected, given) for given in sent):
            return "signature ok"
    return "signature NOT valid"
