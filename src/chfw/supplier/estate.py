"""The supplier's own estate: the CHs it is Responsible Supplier of, from its own records.

The back office otherwise knows only CHs that sent an alert, so readiness
said "147 ready, 0 below" for a supplier of 158 CHs. ``chfw receiver hubs
import FILE`` (a cohort-shaped file, :mod:`chfw.supplier.cohort`, with an
optional ``label`` column) records them in ``bo_estate``; a CH imported but
never heard of counts as ``unknown`` in readiness. Importing again adds the
new CHs and updates labels given; nothing is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId
from chfw.shared.db.sql import chunked, from_db, insert_for, to_db
from chfw.supplier.schema import bo_estate, bo_hubs

CHUNK = 500


@dataclass(frozen=True, slots=True)
class EstateImport:
    """What one import did: CHs new to the estate, CHs already in it."""

    added: int
    known: int


def import_hubs(
    conn: Connection,
    device_ids: Sequence[DeviceId],
    labels: Mapping[DeviceId, str],
    now: datetime,
) -> EstateImport:
    """Add these CHs to the estate (a label given replaces the one recorded)."""
    added = 0
    at = to_db(now)
    for chunk in chunked(dict.fromkeys(device_ids), CHUNK):
        hexes = [device.hex for device in chunk]
        known = set(
            conn.execute(
                sa.select(bo_estate.c.device_id).where(bo_estate.c.device_id.in_(hexes))
            ).scalars()
        )
        added += len(hexes) - len(known)
        statement = insert_for(conn, bo_estate)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["device_id"],
                set_={"label": sa.func.coalesce(statement.excluded.label, bo_estate.c.label)},
            ),
            [
                {"device_id": device.hex, "label": labels.get(device), "imported_at": at}
                for device in chunk
            ],
        )
    return EstateImport(added=added, known=len(dict.fromkeys(device_ids)) - added)


def estate_size(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(bo_estate)).scalar_one())


def never_alerted(conn: Connection) -> int:
    """Imported CHs the back office has no alert for: their version is unknown."""
    query = (
        sa.select(sa.func.count())
        .select_from(bo_estate.outerjoin(bo_hubs, bo_hubs.c.device_id == bo_estate.c.device_id))
        .where(bo_hubs.c.device_id.is_(None))
    )
    return int(conn.execute(query).scalar_one())


def membership(conn: Connection, device_id: DeviceId) -> tuple[str | None, datetime] | None:
    """(label, imported at) of a CH of the estate, or None when it was never imported."""
    row = conn.execute(
        sa.select(bo_estate.c.label, bo_estate.c.imported_at).where(
            bo_estate.c.device_id == device_id.hex
        )
    ).first()
    return None if row is None else (row.label, from_db(row.imported_at))
