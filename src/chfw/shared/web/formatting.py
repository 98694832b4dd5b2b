"""How the dashboards write numbers, times and IDs as text (template filters, live figures).

Plain text, never markup: the templates escape whatever these return.
"""

from __future__ import annotations

from datetime import datetime

from chfw.core.domain import DeviceId
from chfw.exceptions import InvalidValueError

#: What a cell shows for a value that is absent.
DASH = "—"


def dash(value: object) -> object:
    """``value``, or an em dash when it is None."""
    return DASH if value is None else value


def fmt_int(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def fmt_share(part: int, whole: int) -> str:
    return DASH if whole <= 0 else f"{100 * part / whole:.1f}\u00a0%"


def fmt_time(moment: datetime | None) -> str:
    """UTC to the second, as operators compare it with logs."""
    return DASH if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def device_label(device_hex: str) -> str:
    """A Device ID as operators write it (``00-1D-A1-...``)."""
    return str(DeviceId.parse(device_hex))


def user_label(user_hex: str) -> str:
    """A User ID in the same EUI-64 form as Device IDs; left as it is when it is not one."""
    try:
        return device_label(user_hex)
    except InvalidValueError:
        return user_hex
