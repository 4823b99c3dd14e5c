"""Routes under ``/api/v1/``. Introspection is a plain view, outside the framework (it is the
hot path); everything else is the management API, and anything no route claims is a
problem+json 404."""

from django.urls import include, path, re_path

from .introspection import introspect
from .management import api
from .problems import boundary, not_found

management_patterns, _, _ = api.urls
for pattern in management_patterns:
    # Whatever the framework answers or raises leaves as problem+json.
    pattern.callback = boundary(pattern.callback)

app_name = "api"
urlpatterns = [
    path("introspect", introspect, name="introspect"),
    path("", include((management_patterns, "management"))),
    re_path(r"^", boundary(not_found), name="not_found"),
]
