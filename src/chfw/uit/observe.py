"""What the endpoint recorded, where it offers a way to tell; else "not checked".

An HTTP answer says whether the endpoint accepted an alert, not what it
stored: that a replay was counted once, or that a value split by a comment
was recorded whole. An :class:`Observer` answers that by ResponseID. chfw's
own back office is one (:class:`ChfwBackOffice`); another endpoint needs its
own, and without one those checks are reported as not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import Engine

from chfw.shared.db.engine import reading
from chfw.supplier import backoffice


@dataclass(frozen=True, slots=True)
class Recorded:
    """One alert as the endpoint recorded it: how many records, and the values it kept."""

    copies: int
    device_id: str | None
    firmware_version: str | None


class Observer(Protocol):
    """Looks up what the endpoint recorded under a ResponseID (None: nothing)."""

    def recorded(self, response_id: str) -> Recorded | None: ...


class ChfwBackOffice:
    """chfw's receiver, observed through its back office database (``--chfw-database``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def recorded(self, response_id: str) -> Recorded | None:
        with reading(self._engine) as conn:
            alert = backoffice.received_alert(conn, response_id)
        if alert is None:
            return None
        # ResponseID is the table's key: a replay adds to `duplicates`, never a second row.
        return Recorded(1, alert.device_id, alert.firmware_version)
