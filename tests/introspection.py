"""Shared by the introspection tests: how a service calls ``POST /api/v1/introspect``."""

from urllib.parse import urlencode

URL = "/api/v1/introspect"
FORM = "application/x-www-form-urlencoded"


def introspect(client, token, caller=None, **extra):
    """POST ``token`` form-encoded, as the holder of the ``caller`` key (if any)."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {caller}"} if caller else {}
    return client.post(URL, urlencode({"token": token}), content_type=FORM, **headers, **extra)


# Requests that reached ``note_below`` (tests/test_introspect_fast_path.py puts it at the
# bottom of the middleware): kept here, in a module imported once under one name.
noted_below = []


def note_below(get_response):
    """A middleware that notes each request reaching it: (method, path_info)."""

    def middleware(request):
        noted_below.append((request.method, request.path_info))
        return get_response(request)

    return middleware
