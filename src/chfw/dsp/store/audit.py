"""The DSP's audit log (``audit_log``): who changed what, from the operator CLI and dashboard.

The mechanism is :mod:`chfw.shared.db.audit`; these bind it to the DSP's table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from chfw.dsp.store.schema import audit_log
from chfw.shared.db import audit as shared_audit
from chfw.shared.db.audit import AuditEntry, current_actor

__all__ = ["AuditEntry", "current_actor", "list_recent", "record"]


def record(
    conn: Connection,
    actor: str,
    action: str,
    detail: dict[str, Any],
    at: datetime | None = None,
) -> int:
    """Add an entry to the DSP's audit log, in ``conn``'s transaction."""
    return shared_audit.record(conn, audit_log, actor, action, detail, at)


def list_recent(conn: Connection, limit: int = 50) -> list[AuditEntry]:
    """The DSP's newest audit entries first."""
    return shared_audit.list_recent(conn, audit_log, limit)
