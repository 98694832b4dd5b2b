"""Signed-out dashboard sessions, kept in the database the dashboard reads.

A dashboard's session cookie is signed, not stored (:mod:`chfw.shared.web.auth`),
so signing out must leave something on the server for a replayed cookie to
be refused: its random session id, here, until the cookie would have expired
anyway. In the database rather than in memory, so that every process serving
the dashboard (several intakes behind a load balancer) refuses it at once.
Expired rows are deleted whenever a session is signed out.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.clock import utc_now
from chfw.shared.db.sql import insert_for, to_db


class DatabaseRevocations:
    """:class:`chfw.shared.web.auth.SessionRevocations` in a product's ``revoked_sessions``.

    ``table`` is made by :func:`chfw.shared.db.types.revoked_sessions_table`.
    """

    def __init__(self, engine: Engine, table: sa.Table) -> None:
        self.engine = engine
        self.table = table

    def revoke(self, session_id: str, until: float) -> None:
        expires = datetime.fromtimestamp(until, UTC)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(self.table.c.expires_at <= to_db(utc_now())))
            conn.execute(
                insert_for(conn, self.table)
                .values(session_id=session_id, expires_at=expires)
                .on_conflict_do_nothing(index_elements=["session_id"])
            )

    def is_revoked(self, session_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(self.table.c.session_id).where(
                    self.table.c.session_id == session_id,
                    self.table.c.expires_at > to_db(utc_now()),
                )
            ).first()
        return found is not None
