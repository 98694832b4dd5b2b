"""The audit log: who changed what, from the operator CLI. Written in the change's transaction."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.clock import utc_now
from chfw.dsp.store.schema import audit_log
from chfw.shared.db.sql import from_db, to_db


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


def current_actor() -> str:
    """The operating-system user running the command, as the actor of CLI changes."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def record(
    conn: Connection,
    actor: str,
    action: str,
    detail: dict[str, Any],
    at: datetime | None = None,
    *,
    table: sa.Table = audit_log,
) -> int:
    """Add an entry; ``detail`` must be JSON-serialisable (say what changed, before and after).

    ``table``: another log of the same columns (the supplier's back office keeps its own,
    ``bo_audit_log``, passed in by the CLI that composes both).
    """
    new_id = conn.execute(
        sa.insert(table)
        .values(at=to_db(at or utc_now()), actor=actor[:200], action=action[:100], detail=detail)
        .returning(table.c.id)
    ).scalar_one()
    return int(new_id)


def list_recent(
    conn: Connection, limit: int = 50, *, table: sa.Table = audit_log
) -> list[AuditEntry]:
    """The newest entries first (of ``table``, as for :func:`record`)."""
    rows = conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(limit))
    return [
        AuditEntry(int(row.id), from_db(row.at), row.actor, row.action, dict(row.detail))
        for row in rows
    ]
