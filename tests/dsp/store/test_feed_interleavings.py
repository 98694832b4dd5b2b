"""The feed's cursor under concurrent writers (PostgreSQL): whatever order transactions
begin, write, commit or roll back in, and wherever reads fall between them, a reader
that follows the cursor sees every committed change exactly once and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection, Engine

from chfw.dsp.store import feed
from chfw.dsp.store.schema import firmware_history
from tests.small_dsp import ALICE, CH1, CH2, build_dsp

WRITERS = 3
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_versions = count(0x01000000)

Op = tuple[str, int]
ops = st.lists(
    st.tuples(st.sampled_from(["write", "write", "commit", "rollback", "read"]), st.integers(0, 2)),
    max_size=40,
)


@pytest.fixture
def pg_engine(engine: Engine, db_backend: str) -> Engine:
    if db_backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing to interleave")
    build_dsp(engine)
    return engine


def insert_change(conn: Connection, version: str, device_hex: str) -> None:
    conn.execute(
        sa.insert(firmware_history).values(
            device_id=device_hex,
            originator_counter=str(int(version, 16)),
            event="outcome",
            source="response",
            result="success",
            decision="new_version",
            reported_version=version,
            version_after=version,
            occurred_at=AT,
            recorded_at=AT,
            sender="90B3D51F30010000",
        )
    )


class Reader:
    """Follows ALICE's feed in small pages, as a supplier would."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cursor = 0
        self.seen: list[str] = []

    def read(self) -> None:
        while True:
            with self.engine.begin() as conn:
                end = feed.sequence(conn)
            with self.engine.connect() as conn:
                page = feed.read(conn, ALICE, self.cursor, end, 2)
            self.seen += [c.firmware_version.hex for c in page.changes if c.firmware_version]
            assert page.last >= self.cursor  # never backwards
            self.cursor = page.last
            if not page.changes:
                return


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schedule=ops)
def test_every_committed_change_is_read_exactly_once(pg_engine: Engine, schedule: list[Op]) -> None:
    reader = Reader(pg_engine)
    reader.read()  # start from now: earlier examples' changes are behind the cursor
    reader.seen.clear()
    open_: dict[int, tuple[Connection, list[str]]] = {}
    committed: list[str] = []
    try:
        for op, w in schedule:
            if op == "write":
                if w not in open_:
                    conn = pg_engine.connect()
                    conn.begin()
                    open_[w] = (conn, [])
                version = f"{next(_versions):08X}"
                insert_change(open_[w][0], version, (CH1, CH2)[len(open_[w][1]) % 2].hex)
                open_[w][1].append(version)
            elif op in ("commit", "rollback") and w in open_:
                conn, written = open_.pop(w)
                if op == "commit":
                    conn.commit()
                    committed += written
                else:
                    conn.rollback()
                conn.close()
            elif op == "read":
                reader.read()
        for w in sorted(open_):  # what is still open commits last, in writer order
            conn, written = open_.pop(w)
            conn.commit()
            committed += written
            conn.close()
    finally:
        for conn, _ in open_.values():
            conn.close()
    reader.read()
    assert sorted(reader.seen) == sorted(committed)
    assert len(set(reader.seen)) == len(reader.seen)
