"""Routes under ``/api/v1/``. Introspection is a plain view; the management API comes later."""

from django.urls import path

from .introspection import introspect

app_name = "api"
urlpatterns = [
    path("introspect", introspect, name="introspect"),
]
