"""Routes for the introspection benchmark's server: the portal's, and a trivial JSON view.

Benchmark only: the product never routes to anything here.
"""

import time

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from credentials.models import CredentialVersion
from portal.urls import urlpatterns as portal_urlpatterns

_UPDATE = f'UPDATE "{CredentialVersion._meta.db_table}"'


@csrf_exempt
def trivial(request):
    """The floor: a Django view that answers a small JSON document and reads nothing."""
    return JsonResponse({"active": False})


def count_last_use_writes(get_response):
    """On introspection requests, report the versions whose row this request updated.

    Sent back as ``X-Bench-Version-Writes: 12@1764620000.123,40@...`` (version id and the
    server's clock at the write) so the client can check, across all
    workers, that no version is written more than once per interval. The trivial view does
    not pass through it, so its small cost falls on introspection only.
    """

    def middleware(request):
        if request.path != "/api/v1/introspect":
            return get_response(request)
        written = []

        def watch(execute, sql, params, many, context):
            if sql.startswith(_UPDATE):
                # One UPDATE writes a batch of versions (usage._update_rows): their ids are
                # the parameters of its closing "id IN (...)"; a one-row UPDATE ends in its id.
                batch = sql.rsplit(" IN (", 1)[1].count("%s") if " IN (" in sql else 1
                ids = params[-batch:]
                written.extend(f"{version_id}@{time.time():.3f}" for version_id in ids)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(watch):
            response = get_response(request)
        if written:
            response["X-Bench-Version-Writes"] = ",".join(written)
        return response

    return middleware


urlpatterns = [*portal_urlpatterns, path("bench/trivial", trivial)]
