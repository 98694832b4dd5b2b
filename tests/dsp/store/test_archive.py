"""Archiving moves old delivered alerts (and their attempts) out of the outbox, nothing else."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.dsp.store import archive, audit, outbox, stats
from chfw.dsp.store.outbox import AttemptResult
from chfw.dsp.store.schema import delivery_attempts, delivery_attempts_archive, outbox_archive
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.exceptions import InvalidValueError
from chfw.shared.db.engine import create_engine_for
from tests.dsp.delivery.helpers import HUB_1, HUB_2, SUPPLIER_A, SUPPLIER_B, alert, enqueue
from tests.dsp.store.outbox_helpers import claim_due
from tests.dsp.store.test_outbox_claims_pg import NOW, Race, random_alerts

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=40)  # "now" when archiving
CUTOFF = LATER - timedelta(days=30)


def states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_table.c.response_id, outbox_table.c.state))
        return {rid: state for rid, state in rows}


def archived(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(outbox_archive.c.response_id).order_by(outbox_archive.c.id)
            ).scalars()
        )


@pytest.fixture
def mixed(engine: Engine) -> list[int]:
    """Old delivered (retried once first), old dead, pending, and recently delivered rows."""
    ids = enqueue(
        engine,
        [
            alert("OLD-1", SUPPLIER_A, HUB_1),
            alert("OLD-2", SUPPLIER_B, HUB_1, "N999"),
            alert("DEAD", SUPPLIER_A, HUB_2),
            alert("PENDING", SUPPLIER_B, HUB_2),
            alert("RECENT", SUPPLIER_A, DeviceId.parse("00-DB-12-34-56-78-90-03")),
        ],
        T0,
    )
    retry_at = T0 + timedelta(minutes=1)
    with engine.begin() as conn:
        outbox.record_results(
            conn,
            [
                AttemptResult(ids[0], "retry", T0, 503, "answered 503", 5.0, retry_at),
                AttemptResult(ids[1], "delivered", T0, 204, None, 4.0),
                AttemptResult(ids[2], "rejected", T0, 400, "answered 400", 3.0),
            ],
        )
        outbox.record_results(conn, [AttemptResult(ids[0], "delivered", retry_at, 204)])
        outbox.record_results(
            conn, [AttemptResult(ids[4], "delivered", LATER - timedelta(days=1), 204)]
        )
    return ids


class TestArchive:
    def test_only_delivered_rows_older_than_the_cutoff_move(
        self, engine: Engine, mixed: list[int]
    ) -> None:
        result = archive.archive_delivered(engine, CUTOFF, LATER, actor="ops")
        assert (result.alerts, result.attempts, result.batches) == (2, 3, 1)
        assert states(engine) == {"DEAD": "dead", "PENDING": "pending", "RECENT": "delivered"}
        assert archived(engine) == ["OLD-1", "OLD-2"]
        with engine.connect() as conn:
            left = conn.execute(sa.select(delivery_attempts.c.outbox_id)).scalars().all()
            moved = conn.execute(
                sa.select(
                    delivery_attempts_archive.c.outbox_id, delivery_attempts_archive.c.outcome
                ).order_by(delivery_attempts_archive.c.id)
            ).all()
            (entry,) = audit.list_recent(conn)
        assert sorted(left) == sorted([mixed[2], mixed[4]])
        assert moved == [(mixed[0], "retry"), (mixed[1], "delivered"), (mixed[0], "delivered")]
        with engine.connect() as conn:
            assert stats.attempts_by_outcome(conn) == {"retry": 1, "delivered": 3, "rejected": 1}
        assert (entry.actor, entry.action) == ("ops", "outbox.archive")
        assert entry.detail["alerts"] == 2
        assert entry.detail["attempts"] == 3

    def test_an_archived_alert_keeps_what_operators_ask_about(
        self, engine: Engine, mixed: list[int]
    ) -> None:
        with engine.connect() as conn:
            before = outbox.get(conn, "OLD-1")
        assert before is not None
        archive.archive_delivered(engine, CUTOFF, LATER, actor="ops")
        with engine.connect() as conn:
            assert outbox.get(conn, "OLD-1") is None
            by_response_id = archive.get_archived(conn, "OLD-1")
            by_id = archive.get_archived(conn, str(mixed[0]))
            assert archive.get_archived(conn, "PENDING") is None
        assert by_response_id is not None
        assert by_id == by_response_id
        row = by_response_id.row
        assert row.state == "archived"
        assert by_response_id.document == before.document
        assert by_response_id.attempts == before.attempts
        assert (row.id, row.user_id, row.device_id, row.alert_code) == (
            before.row.id,
            before.row.user_id,
            before.row.device_id,
            before.row.alert_code,
        )
        assert (row.attempts, row.created_at, row.delivered_at) == (
            2,
            before.row.created_at,
            before.row.delivered_at,
        )

    def test_batches_until_done_then_nothing_left(self, engine: Engine) -> None:
        hubs = [DeviceId.from_int(0x00DB000000000000 + n) for n in range(12)]
        ids = enqueue(engine, [alert(f"R{n}", SUPPLIER_A, hub) for n, hub in enumerate(hubs)], T0)
        with engine.begin() as conn:
            outbox.record_results(conn, [AttemptResult(i, "delivered", T0, 204) for i in ids])
            assert archive.archivable(conn, CUTOFF) == 12
        seen: list[int] = []
        result = archive.archive_delivered(
            engine, CUTOFF, LATER, actor="ops", batch=5, progress=seen.append
        )
        assert seen == [5, 5, 2]
        assert (result.alerts, result.batches) == (12, 3)
        assert archived(engine) == [f"R{n}" for n in range(12)]
        again = archive.archive_delivered(engine, CUTOFF, LATER, actor="ops", batch=5)
        assert (again.alerts, again.batches) == (0, 0)
        with engine.connect() as conn:  # all-time counts add up across batches and runs
            assert stats.attempts_by_outcome(conn) == {"delivered": 12}

    def test_a_failed_batch_moves_nothing(self, engine: Engine, mixed: list[int]) -> None:
        moved: list[tuple[int, int]] = []

        def crash_before_commit() -> None:
            with engine.begin() as conn:
                moved.append(archive.archive_batch(conn, CUTOFF, LATER, 100))
                raise RuntimeError("crash before commit")

        with pytest.raises(RuntimeError):
            crash_before_commit()
        assert moved == [(2, 3)]
        assert set(states(engine)) == {"OLD-1", "OLD-2", "DEAD", "PENDING", "RECENT"}
        assert archived(engine) == []

    def test_workers_carry_on_after_archiving(self, engine: Engine, mixed: list[int]) -> None:
        # The pending row's CH had an archived delivered row before it: it is not blocked.
        archive.archive_delivered(engine, CUTOFF, LATER, actor="ops")
        more = enqueue(engine, [alert("NEXT", SUPPLIER_A, HUB_1)], LATER)
        with engine.begin() as conn:
            claimed = [a.response_id for a in claim_due(conn, LATER, 10, 60.0)]
        assert sorted(claimed) == ["NEXT", "PENDING"]
        assert more[0] > mixed[-1]

    @pytest.mark.parametrize(
        ("before", "batch", "message"),
        [(LATER + timedelta(seconds=1), 10, "in the future"), (CUTOFF, 0, "at least 1")],
    )
    def test_refuses_nonsense(
        self, engine: Engine, before: datetime, batch: int, message: str
    ) -> None:
        with pytest.raises(InvalidValueError, match=message):
            archive.archive_delivered(engine, before, LATER, actor="ops", batch=batch)


class TestArchiveWhileWorkersDeliver:
    """PostgreSQL, workers and archivers at once: every alert ends delivered exactly once,
    in exactly one of the outbox and the archive, each chain in order."""

    def test_threads_with_their_own_engines(self, pg_database_url: str) -> None:
        alerts = random_alerts(9, 400)
        race = Race(pg_database_url, alerts, 6)
        workers_done = threading.Event()
        cutoff, now = NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)

        def archive_away() -> None:
            engine = create_engine_for(pg_database_url)
            try:
                while not workers_done.is_set():
                    archive.archive_delivered(engine, cutoff, now, actor="ops", batch=7)
            finally:
                engine.dispose()

        archivers = [threading.Thread(target=race.guarded, args=(archive_away,)) for _ in range(2)]
        for thread in archivers:
            thread.start()
        race.run([partial(race.worker, seed, 8) for seed in range(4)])
        workers_done.set()
        for thread in archivers:
            thread.join(timeout=60)
        setup = create_engine_for(pg_database_url)
        last = archive.archive_delivered(setup, cutoff, now, actor="ops")
        with setup.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(outbox_table)).scalar()
            in_archive = conn.execute(sa.select(outbox_archive.c.id)).scalars().all()
            attempts = conn.execute(sa.select(delivery_attempts_archive.c.outbox_id)).all()
            runs = [e for e in audit.list_recent(conn, 10_000) if e.action == "outbox.archive"]
        setup.dispose()

        assert race.errors == []
        assert sorted(race.delivered) == sorted(race.ids.values())  # each delivered once
        assert left == 0
        assert sorted(in_archive) == sorted(race.ids.values())  # each archived once
        assert len(attempts) == len(alerts)
        assert sum(run.detail["alerts"] for run in runs) == len(alerts)
        assert last.alerts < len(alerts)  # the archivers did move rows while workers ran
        assert race.chains_in_order()
