"""Keyturn's admin: importing this package registers every model page with the site."""

from . import audit, credentials, organisation, users, webhooks  # noqa: F401
