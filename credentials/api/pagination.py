"""Keyset (cursor) pagination for the API's lists: stable while rows are added, O(page)."""

from __future__ import annotations

import base64
import binascii

from .problems import Problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 100  # a page never holds more rows than this, whatever the client asks
MAX_ID = 2**63 - 1  # the largest id any supported database stores


def encode(position: int) -> str:
    return base64.urlsafe_b64encode(f"k1:{position}".encode()).decode().rstrip("=")


def decode(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, number = text.partition(":")
        position = int(number)
        if prefix != "k1" or not number.isdigit() or not 0 <= position <= MAX_ID:
            raise ValueError
    except (ValueError, UnicodeError, binascii.Error):
        raise Problem("invalid-cursor", "Pass back a next_cursor exactly as received.") from None
    return position


def page(queryset, *, field: str, cursor: str | None, limit: int, descending: bool = False):
    """One page of ``queryset`` ordered by the unique integer ``field``; returns
    ``(rows, next_cursor)``."""
    position = decode(cursor)
    if position is not None:
        lookup = f"{field}__lt" if descending else f"{field}__gt"
        queryset = queryset.filter(**{lookup: position})
    rows = list(queryset.order_by(f"-{field}" if descending else field)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode(getattr(rows[-1], field)) if more else None)
