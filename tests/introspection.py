"""Shared by the introspection tests: how a service calls ``POST /api/v1/introspect``."""

from urllib.parse import urlencode

URL = "/api/v1/introspect"
FORM = "application/x-www-form-urlencoded"


def introspect(client, token, caller=None, **extra):
    """POST ``token`` form-encoded, as the holder of the ``caller`` key (if any)."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {caller}"} if caller else {}
    return client.post(URL, urlencode({"token": token}), content_type=FORM, **headers, **extra)
