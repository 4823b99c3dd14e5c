"""Keyturn's admin: importing this package registers every model page with the site."""

from . import audit, credentials, lockouts, organisation, two_factor, users, webhooks  # noqa: F401
