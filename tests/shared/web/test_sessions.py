"""Signed-out dashboard sessions in the database: refused until their cookie's expiry, then gone."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store.schema import revoked_sessions
from chfw.shared.web.sessions import DatabaseRevocations

SID = "0123456789abcdef0123456789abcdef"


class TestRevocations:
    def test_revoked_until_expiry(self, engine: Engine) -> None:
        store = DatabaseRevocations(engine, revoked_sessions)
        assert not store.is_revoked(SID)
        store.revoke(SID, time.time() + 3600)
        assert store.is_revoked(SID)
        store.revoke(SID, time.time() + 3600)  # twice: still one row
        assert not store.is_revoked("f" * 32)

    def test_expired_rows_do_not_count_and_are_deleted(self, engine: Engine) -> None:
        store = DatabaseRevocations(engine, revoked_sessions)
        store.revoke(SID, time.time() - 1)
        assert not store.is_revoked(SID)
        store.revoke("f" * 32, time.time() + 3600)
        with engine.connect() as conn:
            left = conn.execute(sa.select(revoked_sessions.c.session_id)).scalars().all()
        assert left == ["f" * 32]
