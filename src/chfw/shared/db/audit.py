"""An audit log: who changed what, written in the change's own transaction.

Both products keep one, each in its own database and on its own metadata (the DSP's
``audit_log``, the back office's ``bo_audit_log``), made by :func:`audit_log_table`;
the functions here take the table.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.clock import utc_now
from chfw.shared.db.sql import from_db, to_db
from chfw.shared.db.types import BIGID, UTC_TIME


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


def audit_log_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """A product's audit log table called ``name`` on its ``metadata``."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )


def current_actor() -> str:
    """The operating-system user running the command, as the actor of CLI changes."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def record(
    conn: Connection,
    table: sa.Table,
    actor: str,
    action: str,
    detail: dict[str, Any],
    at: datetime | None = None,
) -> int:
    """Add an entry to ``table``; ``detail`` must be JSON-serialisable (say what changed,
    before and after)."""
    new_id = conn.execute(
        sa.insert(table)
        .values(at=to_db(at or utc_now()), actor=actor[:200], action=action[:100], detail=detail)
        .returning(table.c.id)
    ).scalar_one()
    return int(new_id)


def list_recent(conn: Connection, table: sa.Table, limit: int = 50) -> list[AuditEntry]:
    """The newest entries of ``table`` first."""
    rows = conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(limit))
    return [
        AuditEntry(int(row.id), from_db(row.at), row.actor, row.action, dict(row.detail))
        for row in rows
    ]
