"""Outgoing events, Standard Webhooks style.

- ``signing``: the one signer (every version that may sign adds its signature).
- ``sender``: one POST under the SSRF rules (resolved address checked and pinned).
- ``events``: the outbox that lifecycle functions write to, inside their transaction.
- ``delivery``: one attempt, and the worker's claim / record / retry bookkeeping.
- ``tasks``: the django-tasks task a ``db_worker`` runs; ``clock``: the periodic sweep.
- ``send_test_ping``: a synchronous ``test.ping`` that returns its receipt.

Names are loaded on first use: the lifecycle imports ``events`` while it is itself loading,
and the modules that call back into the lifecycle must not load before it has.
"""

from importlib import import_module

_LAZY = {"send_test_ping": ".ping"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["send_test_ping"]
