"""Put firmware alerts straight into a back office (no HTTP, no signatures): known times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.supplier import backoffice
from chfw.supplier.facts import AlertFacts

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
_ids = count(1)


def device(n: int) -> DeviceId:
    return DeviceId.from_int(0x001DA10000000000 + n)


def record(
    engine: Engine,
    hub: DeviceId,
    version: str | None,
    at: datetime,
) -> backoffice.RecordResult:
    """An N64 carrying ``version``, or with None an N999 standing in for an N64."""
    number = next(_ids)
    facts = AlertFacts(
        response_id=f"90-B3-D5-1F-30-00-00-02:{hub}:{number}",
        alert_code="N64" if version else "N999",
        schema_version="5.1" if version else "5.0",
        alert_time=at,
        device_id=hub,
        firmware_version=version or None,
        counter=number,
        mismatch_alert_code=None if version else "N64",
    )
    with engine.begin() as conn:
        return backoffice.record_alert(
            conn,
            facts,
            document=b"<recorded/>",
            signer="CN=test DSP",
            digest=f"{number:064x}",
            now=at + timedelta(seconds=1),
        )


def hub_state(engine: Engine, hub: DeviceId) -> backoffice.HubView:
    with engine.connect() as conn:
        view = backoffice.hub_view(conn, hub)
    assert view is not None, hub
    return view
