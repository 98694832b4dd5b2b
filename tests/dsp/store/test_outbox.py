"""The outbox repository: enqueue, claim rules, settling, operator actions, reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store import audit, outbox
from chfw.dsp.store.outbox import AttemptResult
from chfw.dsp.store.schema import delivery_attempts
from chfw.exceptions import InvalidValueError
from tests.dsp.delivery.helpers import (
    HUB_1,
    HUB_2,
    SUPPLIER_A,
    SUPPLIER_B,
    add_user,
    alert,
    enqueue,
)
from tests.dsp.store.outbox_helpers import claim_due, mark_dead, mark_delivered, mark_retry

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEASE = 60.0


def claim(engine: Engine, now: datetime = T0, limit: int = 100, **kw: object) -> list[str]:
    with engine.begin() as conn:
        return [a.response_id for a in claim_due(conn, now, limit, LEASE, **kw)]  # type: ignore[arg-type]


def settle(engine: Engine, *results: AttemptResult) -> None:
    with engine.begin() as conn:
        outbox.record_results(conn, results)


def states(engine: Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as conn:
        return {r.response_id: (r.display_state, r.attempts) for r in outbox.list_rows(conn)}


class TestNewAlert:
    """Alerts are checked before they reach the table."""

    def test_valid(self) -> None:
        assert alert("R-1").alert_code == "N64"
        assert alert("R-2", code="N999").alert_code == "N999"

    @pytest.mark.parametrize(
        ("changes", "words"),
        [
            ({"alert_code": "N65"}, "not N64 or N999"),
            ({"response_id": ""}, "ResponseID"),
            ({"response_id": "x" * 81}, "1 to 80"),
            ({"document": b""}, "non-empty bytes"),
        ],
    )
    def test_invalid(self, changes: dict[str, object], words: str) -> None:
        base = alert("R-1")
        values = {
            "response_id": base.response_id,
            "user_id": base.user_id,
            "device_id": base.device_id,
            "alert_code": base.alert_code,
            "duis_version": base.duis_version,
            "firmware_version": base.firmware_version,
            "history_id": base.history_id,
            "document": base.document,
            **changes,
        }
        with pytest.raises(InvalidValueError, match=words):
            outbox.NewAlert(**values)  # type: ignore[arg-type]


class TestEnqueue:
    """Enqueued alerts are pending, untried and due at once."""

    def test_rows_written(self, engine: Engine) -> None:
        add_user(engine, SUPPLIER_A, "https://a.example/duis")
        ids = enqueue(engine, [alert("R-1"), alert("R-2", SUPPLIER_B, HUB_2, "N999")], T0)
        with engine.connect() as conn:
            first = outbox.get(conn, ids[0])
            second = outbox.get(conn, "R-2")
        assert first is not None
        assert second is not None
        assert first.row.state == "pending"
        assert first.row.attempts == 0
        assert first.row.created_at == first.row.next_attempt_at == T0
        assert first.document == alert("R-1").document
        assert first.row.document_size == len(alert("R-1").document)
        assert (second.row.alert_code, second.row.user_id) == ("N999", SUPPLIER_B.hex)
        assert second.row.device_id == HUB_2.hex

    def test_nothing_to_write(self, engine: Engine) -> None:
        with engine.begin() as conn:
            assert outbox.enqueue(conn, [], T0) == 0

    def test_naive_time_refused(self, engine: Engine) -> None:
        with engine.begin() as conn, pytest.raises(InvalidValueError, match="timezone"):
            outbox.enqueue(conn, [alert("R-1")], datetime(2026, 1, 1))

    def test_other_zones_are_stored_as_utc(self, engine: Engine) -> None:
        plus_two = T0.astimezone(timezone(timedelta(hours=2)))
        (outbox_id,) = enqueue(engine, [alert("R-1")], plus_two)
        with engine.connect() as conn:
            found = outbox.get(conn, outbox_id)
        assert found is not None
        assert found.row.created_at == T0
        assert found.row.created_at.utcoffset() == timedelta(0)


class TestClaim:
    """Only due, unleased rows at the head of their (CH, user) queue are claimed."""

    def test_claim_joins_the_users_endpoint(self, engine: Engine) -> None:
        add_user(engine, SUPPLIER_A, "https://a.example/duis", max_in_flight=3, ca_bundle="/ca")
        enqueue(engine, [alert("R-1"), alert("R-2", SUPPLIER_B, HUB_2)], T0)
        with engine.begin() as conn:
            first, second = claim_due(conn, T0, 10, LEASE)
        assert (first.response_id, first.user_known, first.endpoint_url) == (
            "R-1",
            True,
            "https://a.example/duis",
        )
        assert (first.max_in_flight, first.tls_ca_bundle, first.attempts) == (3, "/ca", 0)
        assert first.user_id == SUPPLIER_A
        assert first.device_id == HUB_1
        assert first.document == alert("R-1").document
        assert first.created_at == T0
        assert (second.user_known, second.endpoint_url) == (False, None)

    def test_lease_hides_rows_until_it_expires(self, engine: Engine) -> None:
        enqueue(engine, [alert("R-1")], T0)
        assert claim(engine) == ["R-1"]
        assert claim(engine) == []
        assert claim(engine, T0 + timedelta(seconds=LEASE - 1)) == []
        assert claim(engine, T0 + timedelta(seconds=LEASE)) == ["R-1"]

    def test_not_due_yet(self, engine: Engine) -> None:
        enqueue(engine, [alert("R-1")], T0)
        assert claim(engine, T0 - timedelta(seconds=1)) == []

    def test_limit_and_order(self, engine: Engine) -> None:
        hubs = [type(HUB_1).from_int(n) for n in range(5)]
        enqueue(engine, [alert(f"R-{n}", hub=hubs[n]) for n in range(5)], T0)
        assert claim(engine, limit=2) == ["R-0", "R-1"]
        assert claim(engine, limit=0) == []
        assert claim(engine, limit=10) == ["R-2", "R-3", "R-4"]

    def test_earliest_first_per_hub_and_user(self, engine: Engine) -> None:
        enqueue(
            engine,
            [
                alert("A1-1", SUPPLIER_A, HUB_1),
                alert("A1-2", SUPPLIER_A, HUB_1),
                alert("B1-1", SUPPLIER_B, HUB_1),
                alert("A2-1", SUPPLIER_A, HUB_2),
            ],
            T0,
        )
        assert claim(engine) == ["A1-1", "B1-1", "A2-1"]

    def test_later_alert_waits_while_earlier_retries(self, engine: Engine) -> None:
        first, _ = enqueue(engine, [alert("R-1"), alert("R-2")], T0)
        assert claim(engine) == ["R-1"]
        retry_at = T0 + timedelta(seconds=30)
        settle(engine, AttemptResult(first, "retry", T0, 503, "busy", 1.0, retry_at))
        assert claim(engine, T0 + timedelta(seconds=10)) == []  # R-2 still waits for R-1
        assert claim(engine, retry_at) == ["R-1"]
        settle(engine, AttemptResult(first, "delivered", retry_at, 204))
        assert claim(engine, retry_at) == ["R-2"]

    def test_followers_take_the_retry_time_of_their_head(self, engine: Engine) -> None:
        ids = enqueue(
            engine,
            [alert("A1-1"), alert("A1-2"), alert("A1-3"), alert("B1-1", SUPPLIER_B)],
            T0,
        )
        claim(engine)
        retry_at = T0 + timedelta(minutes=5)
        settle(engine, AttemptResult(ids[0], "retry", T0, 503, "busy", None, retry_at))
        with engine.connect() as conn:
            due = {r.response_id: r.next_attempt_at for r in outbox.list_rows(conn)}
        # B1-1 is still in flight: due again only when its lease runs out.
        lease_end = T0 + timedelta(seconds=LEASE)
        assert due == {"A1-1": retry_at, "A1-2": retry_at, "A1-3": retry_at, "B1-1": lease_end}
        # B1-1's lease has run out; of A's chain only its head is claimable.
        assert claim(engine, retry_at) == ["B1-1", "A1-1"]

    def test_dead_alert_does_not_block(self, engine: Engine) -> None:
        first, _ = enqueue(engine, [alert("R-1"), alert("R-2")], T0)
        claim(engine)
        settle(engine, AttemptResult(first, "rejected", T0, 400, "bad signature"))
        assert claim(engine) == ["R-2"]

    def test_excluded_users_are_skipped(self, engine: Engine) -> None:
        enqueue(engine, [alert("A"), alert("B", SUPPLIER_B)], T0)
        assert claim(engine, exclude_users=[SUPPLIER_A.hex]) == ["B"]
        assert claim(engine) == ["A"]

    def test_extend_and_release(self, engine: Engine) -> None:
        ids = enqueue(engine, [alert("R-1"), alert("R-2", hub=HUB_2)], T0)
        claim(engine)
        with engine.begin() as conn:
            outbox.extend_leases(conn, [ids[0]], T0 + timedelta(hours=1))
            outbox.release(conn, [ids[1]], T0)
        with engine.connect() as conn:
            due = {
                r.response_id: (r.next_attempt_at, r.lease_until) for r in outbox.list_rows(conn)
            }
        assert due == {"R-1": (T0 + timedelta(hours=1),) * 2, "R-2": (T0, None)}
        assert claim(engine, T0) == ["R-2"]  # released: claimable at once
        assert claim(engine, T0 + timedelta(seconds=LEASE)) == ["R-2"]  # R-1's lease extended
        assert "R-1" in claim(engine, T0 + timedelta(hours=1))

    def test_a_claim_moves_rows_out_of_the_due_range_until_the_lease_ends(
        self, engine: Engine
    ) -> None:
        enqueue(engine, [alert("R-1"), alert("R-2", hub=HUB_2)], T0)
        assert claim(engine, limit=1) == ["R-1"]
        lease_end = T0 + timedelta(seconds=LEASE)
        with engine.connect() as conn:
            rows = {r.response_id: r for r in outbox.list_rows(conn)}
            # The row in flight is not "waiting": only R-2 counts as due.
            assert outbox.oldest_due_age(conn, T0 + timedelta(seconds=2)) == 2.0
        assert (rows["R-1"].next_attempt_at, rows["R-1"].lease_until) == (lease_end, lease_end)
        assert (rows["R-2"].next_attempt_at, rows["R-2"].lease_until) == (T0, None)
        assert claim(engine, lease_end - timedelta(seconds=1)) == ["R-2"]
        # A worker that died: its row is claimable again exactly when the lease ends.
        assert claim(engine, lease_end) == ["R-1"]


class TestSettle:
    """Results settle rows in batches and every attempt is logged."""

    def test_each_outcome(self, engine: Engine) -> None:
        hubs = [type(HUB_1).from_int(n) for n in range(4)]
        ids = enqueue(engine, [alert(f"R-{n}", hub=hubs[n]) for n in range(4)], T0)
        claim(engine)
        later = T0 + timedelta(seconds=5)
        settle(
            engine,
            AttemptResult(ids[0], "delivered", T0, 204, None, 3.5),
            AttemptResult(ids[1], "retry", T0, 503, "busy", 2.0, later),
            AttemptResult(ids[2], "rejected", T0, 400, "bad signature"),
            AttemptResult(ids[3], "dead", T0, None, "horizon passed"),
        )
        assert states(engine) == {
            "R-0": ("delivered", 1),
            "R-1": ("retrying", 1),
            "R-2": ("dead", 1),
            "R-3": ("dead", 1),
        }
        with engine.connect() as conn:
            retrying = outbox.get(conn, ids[1])
            outcomes = conn.execute(
                sa.select(delivery_attempts.c.outcome).order_by(delivery_attempts.c.outbox_id)
            ).scalars()
            assert list(outcomes) == ["delivered", "retry", "rejected", "dead"]
        assert retrying is not None
        assert retrying.row.next_attempt_at == later
        with engine.connect() as conn:
            finished = {r.id: r.next_attempt_at for r in outbox.list_rows(conn) if r.id != ids[1]}
        # Finished rows keep their last attempt's time, not the lease's end set at the claim.
        assert finished == {ids[0]: T0, ids[2]: T0, ids[3]: T0}
        assert retrying.row.lease_until is None
        assert retrying.row.last_error == "busy"
        (attempt,) = retrying.attempts
        assert (attempt.outcome, attempt.status_code, attempt.duration_ms) == ("retry", 503, 2.0)

    def test_settled_rows_are_not_changed_by_late_results(self, engine: Engine) -> None:
        (outbox_id,) = enqueue(engine, [alert("R-1")], T0)
        settle(engine, AttemptResult(outbox_id, "delivered", T0, 204))
        settle(engine, AttemptResult(outbox_id, "rejected", T0, 400, "late duplicate"))
        assert states(engine) == {"R-1": ("delivered", 1)}
        with engine.connect() as conn:
            detail = outbox.get(conn, outbox_id)
        assert detail is not None
        assert len(detail.attempts) == 2

    def test_long_errors_are_clipped(self, engine: Engine) -> None:
        (outbox_id,) = enqueue(engine, [alert("R-1")], T0)
        retry_at = T0 + timedelta(seconds=1)
        settle(engine, AttemptResult(outbox_id, "retry", T0, 500, "e" * 5000, None, retry_at))
        with engine.connect() as conn:
            detail = outbox.get(conn, outbox_id)
        assert detail is not None
        assert detail.row.last_error is not None
        assert len(detail.row.last_error) == 1000
        assert detail.row.last_error.endswith("…")

    def test_single_row_helpers(self, engine: Engine) -> None:
        ids = enqueue(engine, [alert(f"R-{n}", hub=type(HUB_1).from_int(n)) for n in range(3)], T0)
        with engine.begin() as conn:
            mark_delivered(conn, [AttemptResult(ids[0], "delivered", T0, 204)])
            mark_retry(conn, ids[1], T0 + timedelta(minutes=1), "503", attempted_at=T0)
            mark_dead(conn, ids[2], "400 bad", attempted_at=T0, rejected=True)
            with pytest.raises(InvalidValueError, match="not deliveries"):
                mark_delivered(conn, [AttemptResult(ids[1], "dead", T0)])
        assert states(engine) == {
            "R-0": ("delivered", 1),
            "R-1": ("retrying", 1),
            "R-2": ("dead", 1),
        }

    def test_result_checks(self) -> None:
        with pytest.raises(InvalidValueError, match="next_attempt_at"):
            AttemptResult(1, "retry", T0)
        with pytest.raises(InvalidValueError, match="next_attempt_at"):
            AttemptResult(1, "delivered", T0, next_attempt_at=T0)
        with pytest.raises(InvalidValueError, match="outcome"):
            AttemptResult(1, "lost", T0)  # type: ignore[arg-type]


class TestOperatorActions:
    """retry_now and replay change only rows in the right state, and say what they did."""

    def test_retry_now(self, engine: Engine) -> None:
        ids = enqueue(engine, [alert("R-1"), alert("R-2", hub=HUB_2)], T0)
        settle(
            engine,
            AttemptResult(ids[0], "retry", T0, 503, "busy", None, T0 + timedelta(hours=1)),
            AttemptResult(ids[1], "delivered", T0, 204),
        )
        now = T0 + timedelta(minutes=5)
        with engine.begin() as conn:
            change = outbox.retry_now(conn, [ids[0], ids[1], 999], now)
        assert change.changed == (ids[0],)
        assert change.skipped == {ids[1]: "delivered"}
        assert change.missing == (999,)
        assert claim(engine, now) == ["R-1"]

    def test_replay_keeps_attempts_and_audits(self, engine: Engine) -> None:
        ids = enqueue(engine, [alert("R-1"), alert("R-2", hub=HUB_2)], T0)
        settle(engine, AttemptResult(ids[0], "rejected", T0, 400, "bad"))
        now = T0 + timedelta(hours=2)
        with engine.begin() as conn:
            change = outbox.replay(conn, [ids[0], ids[0], ids[1]], "alice", now)
        assert change.changed == (ids[0],)
        assert change.skipped == {ids[1]: "pending"}
        assert states(engine)["R-1"] == ("retrying", 1)
        assert claim(engine, now) == ["R-2", "R-1"]  # earliest due first: R-1 is due from now
        with engine.connect() as conn:
            (entry,) = audit.list_recent(conn)
        assert (entry.actor, entry.action, entry.at) == ("alice", "outbox.replay", now)
        assert entry.detail == {"ids": [ids[0]], "count": 1}

    def test_replay_of_nothing_is_not_audited(self, engine: Engine) -> None:
        with engine.begin() as conn:
            change = outbox.replay(conn, [42], "alice", T0)
            assert audit.list_recent(conn) == []
        assert change.missing == (42,)
        assert change.changed == ()

    def test_dead_ids_and_resolve(self, engine: Engine) -> None:
        ids = enqueue(engine, [alert("A-1"), alert("B-1", SUPPLIER_B), alert("A-2", hub=HUB_2)], T0)
        settle(
            engine,
            AttemptResult(ids[0], "rejected", T0, 400, "bad"),
            AttemptResult(ids[1], "dead", T0, None, "horizon"),
        )
        with engine.connect() as conn:
            assert outbox.dead_ids(conn) == ids[:2]
            assert outbox.dead_ids(conn, SUPPLIER_B.hex) == [ids[1]]
            found = outbox.resolve(conn, [str(ids[2]), "B-1", "nope", "12345"])
        assert found == {str(ids[2]): ids[2], "B-1": ids[1], "nope": None, "12345": None}


class TestReports:
    """Lists, counts and ages for operators and summaries."""

    @pytest.fixture
    def mixed(self, engine: Engine) -> list[int]:
        hubs = [type(HUB_1).from_int(n) for n in range(5)]
        ids = enqueue(
            engine,
            [
                alert("A-0", SUPPLIER_A, hubs[0]),
                alert("A-1", SUPPLIER_A, hubs[1], "N999"),
                alert("A-2", SUPPLIER_A, hubs[2]),
                alert("B-3", SUPPLIER_B, hubs[3]),
                alert("B-4", SUPPLIER_B, hubs[4]),
            ],
            T0,
        )
        settle(
            engine,
            AttemptResult(ids[0], "delivered", T0, 204),
            AttemptResult(ids[1], "rejected", T0, 400, "bad"),
            AttemptResult(ids[2], "retry", T0, 503, "busy", None, T0 + timedelta(minutes=1)),
        )
        return ids

    def test_counts(self, engine: Engine, mixed: list[int]) -> None:
        with engine.connect() as conn:
            assert outbox.counts(conn) == {
                "pending": 3,
                "retrying": 1,
                "delivered": 1,
                "dead": 1,
                "parked": 0,
            }

    def test_counts_on_an_empty_outbox(self, engine: Engine) -> None:
        with engine.connect() as conn:
            assert outbox.counts(conn) == {
                "pending": 0,
                "retrying": 0,
                "delivered": 0,
                "dead": 0,
                "parked": 0,
            }
            assert outbox.counts_by(conn) == []
            assert outbox.oldest_due_age(conn, T0) is None
            assert outbox.next_due_at(conn) is None

    def test_counts_by_code_user_state(self, engine: Engine, mixed: list[int]) -> None:
        with engine.connect() as conn:
            rows = {
                (r.alert_code, r.user_id, r.state): (r.count, r.retrying)
                for r in outbox.counts_by(conn)
            }
        assert rows == {
            ("N64", SUPPLIER_A.hex, "delivered"): (1, 0),
            ("N64", SUPPLIER_A.hex, "pending"): (1, 1),
            ("N999", SUPPLIER_A.hex, "dead"): (1, 0),
            ("N64", SUPPLIER_B.hex, "pending"): (2, 0),
        }

    def test_list_filters(self, engine: Engine, mixed: list[int]) -> None:
        with engine.connect() as conn:
            newest_first = [r.response_id for r in outbox.list_rows(conn)]
            pending = [r.response_id for r in outbox.list_rows(conn, state="pending")]
            retrying = [r.response_id for r in outbox.list_rows(conn, state="retrying")]
            of_b = [r.response_id for r in outbox.list_rows(conn, user_id=SUPPLIER_B.hex)]
            hub = [
                r.response_id for r in outbox.list_rows(conn, device_id=type(HUB_1).from_int(1).hex)
            ]
            limited = outbox.list_rows(conn, limit=2)
            with pytest.raises(InvalidValueError, match="retrying"):
                outbox.list_rows(conn, state="lost")
        assert newest_first == ["B-4", "B-3", "A-2", "A-1", "A-0"]
        assert pending == ["B-4", "B-3", "A-2"]
        assert retrying == ["A-2"]
        assert of_b == ["B-4", "B-3"]
        assert hub == ["A-1"]
        assert len(limited) == 2

    def test_ages(self, engine: Engine, mixed: list[int]) -> None:
        with engine.connect() as conn:
            assert outbox.oldest_due_age(conn, T0 + timedelta(seconds=30)) == 30.0
            assert outbox.next_due_at(conn) == T0

    def test_get_unknown(self, engine: Engine) -> None:
        with engine.connect() as conn:
            assert outbox.get(conn, 1) is None
            assert outbox.get(conn, "90-B3:1") is None
