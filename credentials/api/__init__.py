"""Keyturn's machine-facing API, mounted at ``/api/v1/``."""
