"""Concurrent claims on PostgreSQL: SKIP LOCKED shares the outbox, per-(CH, user) order holds.

Each "worker" here is its own engine (its own connections), the way separate
worker processes are. Transactions are held open on purpose to stage the
interleavings that matter; ``lock_timeout`` turns an unexpected lock wait
into an error instead of a hung test.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from chfw.core.domain.values import DeviceId, UserId
from chfw.dsp.store import outbox
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.shared.db.engine import create_engine_for
from tests.dsp.store.outbox_helpers import claim_due

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEASE = 3600.0  # long enough never to expire during a test: a re-claim would be a bug
USER = UserId.parse("90-B3-D5-1F-30-01-00-0A")
HUB_X = DeviceId.parse("00-DB-12-34-56-78-90-01")
HUB_Y = DeviceId.parse("00-DB-12-34-56-78-90-02")


def new_alert(response_id: str, hub: DeviceId, user: UserId = USER) -> outbox.NewAlert:
    return outbox.NewAlert(
        response_id=response_id,
        user_id=user,
        device_id=hub,
        alert_code="N64",
        duis_version="5.1",
        firmware_version="0102ABCD",
        history_id=None,
        document=f"<alert>{response_id}</alert>".encode(),
    )


def enqueue(engine: Engine, alerts: list[outbox.NewAlert]) -> dict[str, int]:
    """Write alerts in order; their outbox ids by ResponseID."""
    with engine.begin() as conn:
        outbox.enqueue(conn, alerts, NOW)
        rows = conn.execute(sa.select(outbox_table.c.response_id, outbox_table.c.id)).all()
    return {rid: oid for rid, oid in rows}


def claim(conn: Connection, limit: int = 10) -> list[str]:
    """Claim as a worker would, failing fast if the claim ever waited on another's lock."""
    conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
    return [a.response_id for a in claim_due(conn, NOW, limit, LEASE)]


def deliver(engine: Engine, ids: list[int]) -> None:
    with engine.begin() as conn:
        outbox.record_results(conn, [outbox.AttemptResult(i, "delivered", NOW) for i in ids])


@pytest.fixture
def engines(pg_database_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two workers' engines on one PostgreSQL database."""
    a, b = create_engine_for(pg_database_url), create_engine_for(pg_database_url)
    yield a, b
    a.dispose()
    b.dispose()


class TestStagedInterleavings:
    """While one worker holds a chain's head, another never takes the row behind it."""

    def test_locked_unleased_head_keeps_the_next_row_blocked(
        self, engines: tuple[Engine, Engine]
    ) -> None:
        a, b = engines
        enqueue(a, [new_alert("x1", HUB_X), new_alert("x2", HUB_X), new_alert("y1", HUB_Y)])
        with a.begin() as conn_a:
            # A has locked x1 and written its lease, but not committed: to B, x1 still
            # looks unleased, and SKIP LOCKED passes over it.
            assert claim(conn_a, limit=1) == ["x1"]
            with b.begin() as conn_b:
                taken_by_b = claim(conn_b)
        assert taken_by_b == ["y1"]  # neither the locked x1 nor x2 behind it

    def test_leased_head_keeps_the_next_row_blocked(self, engines: tuple[Engine, Engine]) -> None:
        a, b = engines
        ids = enqueue(a, [new_alert("x1", HUB_X), new_alert("x2", HUB_X)])
        with a.begin() as conn_a:
            assert claim(conn_a) == ["x1"]
        with b.begin() as conn_b:
            assert claim(conn_b) == []  # x1 leased and in flight; x2 must wait
        deliver(a, [ids["x1"]])
        with b.begin() as conn_b:
            assert claim(conn_b) == ["x2"]

    def test_uncommitted_delivery_does_not_release_the_next_row(
        self, engines: tuple[Engine, Engine]
    ) -> None:
        a, b = engines
        ids = enqueue(a, [new_alert("x1", HUB_X), new_alert("x2", HUB_X)])
        with a.begin() as conn_a:
            claim(conn_a)
        with a.begin() as conn_a:
            outbox.record_results(conn_a, [outbox.AttemptResult(ids["x1"], "delivered", NOW)])
            with b.begin() as conn_b:
                before_commit = claim(conn_b)
        with b.begin() as conn_b:
            after_commit = claim(conn_b)
        assert (before_commit, after_commit) == ([], ["x2"])

    def test_next_row_claimed_by_one_worker_is_skipped_by_the_other(
        self, engines: tuple[Engine, Engine]
    ) -> None:
        a, b = engines
        ids = enqueue(a, [new_alert("x1", HUB_X), new_alert("x2", HUB_X)])
        deliver(a, [ids["x1"]])
        with a.begin() as conn_a:
            assert claim(conn_a) == ["x2"]
            with b.begin() as conn_b:
                assert claim(conn_b) == []

    def test_retrying_head_blocks_its_chain_only(self, engines: tuple[Engine, Engine]) -> None:
        a, b = engines
        ids = enqueue(a, [new_alert("x1", HUB_X), new_alert("x2", HUB_X), new_alert("y1", HUB_Y)])
        later = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
        with a.begin() as conn_a:
            assert claim(conn_a, limit=1) == ["x1"]
            outbox.record_results(
                conn_a, [outbox.AttemptResult(ids["x1"], "retry", NOW, 503, "busy", None, later)]
            )
        with b.begin() as conn_b:
            assert claim(conn_b) == ["y1"]


def random_alerts(seed: int, count: int) -> list[outbox.NewAlert]:
    """``count`` alerts over 12 CHs and 3 users, so that chains interleave."""
    rng = random.Random(seed)
    hubs = [DeviceId(bytes([0, 0xDB, 0, 0, 0, 0, 0, n])) for n in range(1, 13)]
    users = [UserId(bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 1, 0, n])) for n in range(1, 4)]
    return [new_alert(f"r{n:04d}", rng.choice(hubs), rng.choice(users)) for n in range(count)]


class Race:
    """Threads, each with its own engine (as separate processes have), over one outbox.

    :meth:`worker` drains the outbox as ``chfw worker`` does (claim, "POST", settle)
    until its claims keep finding nothing; any thread's exception lands in ``errors``.
    """

    def __init__(self, url: str, alerts: list[outbox.NewAlert], threads: int) -> None:
        self.url = url
        setup = create_engine_for(url)
        self.ids = enqueue(setup, alerts)
        setup.dispose()
        self.chain_of = {self.ids[a.response_id]: (a.device_id.hex, a.user_id.hex) for a in alerts}
        self.delivered: list[int] = []  # in the order "POSTs" completed, across all workers
        self.errors: list[BaseException] = []
        self.start = threading.Barrier(threads)
        self._lock = threading.Lock()

    def run(self, targets: list[Callable[[], None]], timeout: float = 120) -> None:
        threads = [threading.Thread(target=self.guarded, args=(t,)) for t in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=timeout)

    def guarded(self, target: Callable[[], None]) -> None:
        try:
            self.start.wait()
            target()
        except BaseException as exc:
            self.errors.append(exc)

    def worker(self, seed: int, max_batch: int = 6) -> None:
        engine = create_engine_for(self.url)
        local = random.Random(seed)
        try:
            idle = 0
            while idle < 20:
                with engine.begin() as conn:
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                    batch = claim_due(conn, NOW, local.randint(1, max_batch), LEASE)
                if not batch:
                    idle += 1
                    continue
                idle = 0
                with self._lock:
                    self.delivered.extend(a.id for a in batch)  # the POST: before settling
                deliver(engine, [a.id for a in batch])
        finally:
            engine.dispose()

    def chains_in_order(self) -> bool:
        by_chain: dict[tuple[str, str], list[int]] = {}
        for outbox_id in self.delivered:
            by_chain.setdefault(self.chain_of[outbox_id], []).append(outbox_id)
        return all(seq == sorted(seq) for seq in by_chain.values())


class TestManyClaimers:
    """Eight workers race over one outbox: each row claimed once, each chain delivered in order."""

    def test_threads_with_their_own_engines(self, pg_database_url: str) -> None:
        alerts = random_alerts(5, 600)
        race = Race(pg_database_url, alerts, 8)
        race.run([partial(race.worker, seed) for seed in range(8)])
        check = create_engine_for(pg_database_url)
        with check.connect() as conn:
            counts = outbox.counts(conn)
        check.dispose()

        assert race.errors == []
        assert sorted(race.delivered) == sorted(race.ids.values())  # every row, none twice
        assert (counts["delivered"], counts["pending"]) == (len(alerts), 0)
        assert race.chains_in_order()


class TestClaimPlans:
    """A claim is planned for the outbox as it is now, never from a plan kept since it was empty."""

    def test_claims_are_never_run_from_a_generic_plan(self, pg_database_url: str) -> None:
        # psycopg prepares a statement from its fifth run; PostgreSQL may then switch the
        # prepared statement to one generic plan, made while this outbox holds a handful of
        # rows. Count the plans the claim statement got in this session.
        engine = create_engine_for(pg_database_url)
        try:
            enqueue(engine, [new_alert(f"p{n}", HUB_X) for n in range(3)])
            with engine.connect() as conn:
                for _ in range(12):
                    with conn.begin():
                        claim_due(conn, NOW, 1, 0.0)  # lease 0: claimable again at once
                plans = conn.execute(
                    sa.text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                        " WHERE statement LIKE '%FOR UPDATE OF outbox SKIP LOCKED%'"
                    )
                ).all()
        finally:
            engine.dispose()
        assert plans, "the claim was not prepared: this test no longer sees its plans"
        assert [generic for generic, _ in plans] == [0] * len(plans)
        assert sum(custom for _, custom in plans) >= 7


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


class Captured:
    """The SQL and parameters of the statements run through an engine, to EXPLAIN them."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: object, cursor: object, statement: str, params: Any, *_: object) -> None:
        self.statements.append((statement, params))

    def plan(self, conn: Connection, marker: str) -> list[dict[str, Any]]:
        """The plan PostgreSQL makes now for the last statement holding ``marker``."""
        statement, params = next(s for s in reversed(self.statements) if marker in s[0])
        (explained,) = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params).one()
        return list(_plan_nodes(explained[0]["Plan"]))


class TestPlansFromStaleStatistics:
    """A wave after a quiet spell: statistics from an outbox of delivered rows only say that
    pending rows are rare. The claim, the settle and holding a retry's followers must still
    find rows through the index that bounds their work, never read every pending row."""

    @pytest.fixture
    def stale(self, pg_database_url: str) -> Iterator[tuple[Engine, Captured, dict[str, int]]]:
        engine = create_engine_for(pg_database_url)
        with engine.begin() as conn:  # keep the statistics taken below for the whole test
            conn.exec_driver_sql("ALTER TABLE outbox SET (autovacuum_enabled = false)")
        hubs = [DeviceId.from_int(0x00DB000000000000 + n) for n in range(300)]
        quiet = enqueue(engine, [new_alert(f"old{n}", hub) for n, hub in enumerate(hubs)])
        deliver(engine, list(quiet.values()))
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE outbox")
        wave = [new_alert(f"{k}{n}", hub) for n, hub in enumerate(hubs) for k in ("a", "b")]
        ids = enqueue(engine, wave)
        yield engine, Captured(engine), ids
        engine.dispose()

    def test_the_claim_walks_the_due_index_and_checks_order_by_ch(
        self, stale: tuple[Engine, Captured, dict[str, int]]
    ) -> None:
        engine, captured, _ = stale
        with engine.begin() as conn:
            claimed = claim(conn, limit=50)
            nodes = captured.plan(conn, "SKIP LOCKED")
        # Behaviour first: the heads of 50 CHs, none of the rows behind them.
        assert claimed == [f"a{n}" for n in range(50)]
        kinds = {node["Node Type"] for node in nodes}
        assert not kinds & {"Sort", "Bitmap Heap Scan", "Seq Scan", "Hash Join"}, kinds
        by_alias = {node.get("Alias"): node.get("Index Name") for node in nodes if "Alias" in node}
        assert by_alias["outbox"] == "ix_outbox_due"
        assert by_alias["earlier"] == "ix_outbox_order"

    def test_settling_finds_rows_by_id(
        self, stale: tuple[Engine, Captured, dict[str, int]]
    ) -> None:
        engine, captured, ids = stale
        with engine.begin() as conn:
            outbox.record_results(
                conn, [outbox.AttemptResult(ids[f"a{n}"], "delivered", NOW) for n in range(20)]
            )
            nodes = captured.plan(conn, "UPDATE outbox SET state")
        # Not the pending rows' index: that would read every pending row to settle 20.
        # (On a table this small, reading it whole is the planner's honest choice.)
        indexes = {node.get("Index Name") for node in nodes}
        assert "ix_outbox_due" not in indexes, [(n["Node Type"], n.get("Alias")) for n in nodes]

    def test_a_retry_holds_its_followers_through_the_ch_index(
        self, stale: tuple[Engine, Captured, dict[str, int]]
    ) -> None:
        engine, captured, ids = stale
        later = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
        with engine.begin() as conn:
            outbox.record_results(
                conn,
                [outbox.AttemptResult(ids["a7"], "retry", NOW, 503, "busy", 1.0, later)],
            )
            nodes = captured.plan(conn, "head.device_id")
            follower = conn.execute(
                sa.select(outbox_table.c.next_attempt_at).where(outbox_table.c.id == ids["b7"])
            ).scalar_one()
        assert follower == later
        scans = {node.get("Alias"): node.get("Index Name") for node in nodes if "Alias" in node}
        assert scans["outbox"] == "ix_outbox_order", scans
