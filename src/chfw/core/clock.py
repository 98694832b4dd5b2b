"""The one wall clock: what "now" is, everywhere in chfw.

Always timezone-aware UTC, as the store writes times and DUIS documents carry them.
Code that needs now takes a ``clock`` (or ``now``) parameter defaulting to
:func:`utc_now`, so tests pass a controllable clock instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
