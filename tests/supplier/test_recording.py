"""record_alerts: a batch recorded in a few statements means the same as one alert at a time."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.supplier import backoffice
from chfw.supplier.facts import AlertFacts
from chfw.supplier.recording import NewAlert, NewRejection, record_alerts, record_rejections
from chfw.supplier.schema import bo_alerts, bo_firmware_events, bo_hubs
from tests.supplier.helpers import CH, CH2, T0, count_rows

NOW = T0 + timedelta(days=1)


def _alert(
    counter: int,
    version: str | None,
    minutes: int,
    *,
    device: DeviceId = CH,
    digest: str = "00" * 32,
    code: str | None = None,
) -> NewAlert:
    facts = AlertFacts(
        response_id=f"90-B3-D5-1F-30-00-00-02:{device}:{counter}",
        alert_code=code or ("N64" if version else "N999"),
        schema_version="5.1" if version else "5.0",
        alert_time=T0 + timedelta(minutes=minutes),
        device_id=device,
        firmware_version=version or None,
        counter=counter,
        mismatch_alert_code=None if version or code else "N64",
    )
    return NewAlert(facts, b"<doc/>", "CN=DSP", digest, NOW)


def _hub(engine: Engine, device: DeviceId = CH) -> backoffice.HubView:
    with engine.connect() as conn:
        view = backoffice.hub_view(conn, device)
    assert view is not None
    return view


class TestOneBatch:
    """Within one batch, alerts are taken in arrival order, exactly as one by one."""

    def test_duplicates_inside_the_batch(self, engine: Engine) -> None:
        with engine.begin() as conn:
            results = record_alerts(
                conn,
                [_alert(1, "01", 0), _alert(1, "01", 0), _alert(1, "01", 0, digest="ff" * 32)],
            )
        assert [r.duplicate for r in results] == [False, True, True]
        assert [r.same_content for r in results] == [True, True, False]
        with engine.connect() as conn:
            (row,) = backoffice.list_alerts(conn)
        assert row.duplicates == 2
        assert count_rows(engine, "bo_firmware_events") == 1

    def test_out_of_order_inside_the_batch(self, engine: Engine) -> None:
        with engine.begin() as conn:
            results = record_alerts(
                conn, [_alert(1, "03", 30), _alert(2, "01", 0), _alert(3, "02", 10)]
            )
        assert [r.applied for r in results] == [True, False, False]
        view = _hub(engine)
        assert (view.active_version, view.changed_at) == ("03", T0 + timedelta(minutes=30))
        assert [e.firmware_version for e in view.history] == ["01", "02", "03"]

    def test_n999_then_n64_for_one_ch(self, engine: Engine) -> None:
        with engine.begin() as conn:
            results = record_alerts(conn, [_alert(1, None, 0), _alert(2, "02", 5)])
        assert results[0].lookup_needed  # at the time it was recorded
        view = _hub(engine)
        assert (view.active_version, view.lookup_pending) == ("02", False)

    def test_same_version_twice_keeps_its_change_time(self, engine: Engine) -> None:
        with engine.begin() as conn:
            record_alerts(conn, [_alert(1, "02", 0), _alert(2, "02", 20)])
        view = _hub(engine)
        assert view.changed_at == T0
        assert view.latest_alert_at == T0 + timedelta(minutes=20)

    def test_many_hubs_and_other_codes(self, engine: Engine) -> None:
        batch = [_alert(n, "01", n, device=DeviceId.from_int(0x1000 + n)) for n in range(50)]
        batch.append(_alert(99, None, 0, code="N12"))
        with engine.begin() as conn:
            results = record_alerts(conn, batch)
        assert all(r.applied for r in results[:50])
        assert not results[50].applied
        assert count_rows(engine, "bo_hubs") == 50
        assert count_rows(engine, "bo_alerts") == 51


class TestAcrossBatches:
    """A later batch sees what earlier ones recorded."""

    def test_replay_and_older_alert_in_a_later_batch(self, engine: Engine) -> None:
        with engine.begin() as conn:
            record_alerts(conn, [_alert(1, "02", 10), _alert(2, "01", 0, device=CH2)])
        with engine.begin() as conn:
            results = record_alerts(
                conn, [_alert(1, "02", 10), _alert(3, "01", 5), _alert(4, "02", 20, device=CH2)]
            )
        assert [(r.duplicate, r.applied) for r in results] == [
            (True, False),
            (False, False),
            (False, True),
        ]
        assert _hub(engine).active_version == "02"
        assert _hub(engine, CH2).active_version == "02"

    def test_empty_batches_do_nothing(self, engine: Engine) -> None:
        with engine.begin() as conn:
            assert record_alerts(conn, []) == []
            record_rejections(conn, [])
        assert count_rows(engine, "bo_alerts") == count_rows(engine, "bo_rejections") == 0

    def test_rejections_in_bulk(self, engine: Engine) -> None:
        with engine.begin() as conn:
            record_rejections(
                conn,
                [NewRejection(NOW, 400, f"bad {n}", "10.0.0.1" * 20, n) for n in range(3)],
            )
        with engine.connect() as conn:
            rows = backoffice.list_rejections(conn)
        assert [r.reason for r in rows] == ["bad 2", "bad 1", "bad 0"]
        assert all(r.remote is not None and len(r.remote) == 100 for r in rows)


def _state(engine: Engine) -> tuple[str | None, object, str]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                bo_hubs.c.active_version, bo_hubs.c.latest_alert_at, bo_hubs.c.latest_response_id
            ).where(bo_hubs.c.device_id == CH.hex)
        ).one()
    return row.active_version, row.latest_alert_at, row.latest_response_id


class TestOrderWithoutTies:
    """Alerts with one alert time are ordered by ResponseID counter, never by arrival."""

    def test_the_higher_counter_wins_a_tie_whichever_arrives_first(self, engine: Engine) -> None:
        with engine.begin() as conn:
            results = record_alerts(conn, [_alert(8, "02", 0), _alert(7, "01", 0)])
        assert [r.applied for r in results] == [True, False]
        assert _hub(engine).active_version == "02"

    def test_a_late_copy_of_the_older_alert_in_a_later_batch(self, engine: Engine) -> None:
        with engine.begin() as conn:
            record_alerts(conn, [_alert(7, "01", 0)])
        with engine.begin() as conn:
            record_alerts(conn, [_alert(8, "02", 0)])
        with engine.begin() as conn:
            (late,) = record_alerts(conn, [_alert(7, "01", 0)])
        assert (late.duplicate, _hub(engine).active_version) == (True, "02")

    def test_the_upsert_guard_refuses_an_older_state(self, engine: Engine) -> None:
        """Another process's newer state stands: the guard, not only the fold, says so."""
        with engine.begin() as conn:
            record_alerts(conn, [_alert(9, "03", 0)])
        with engine.begin() as conn:
            conn.execute(sa.delete(bo_alerts))  # as if this process never saw alert 9
            record_alerts(conn, [_alert(5, "01", 0)])
        assert _hub(engine).active_version == "03"

    @settings(
        max_examples=60,
        deadline=None,
        # The engine fixture is reset per example; one instance per backend runs it.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    def test_any_arrival_order_ends_in_the_state_of_arrival_in_order(
        self, engine: Engine, data: st.DataObject
    ) -> None:
        size = data.draw(st.integers(2, 8), label="alerts")
        minutes = data.draw(st.lists(st.integers(0, 2), min_size=size, max_size=size))
        alerts = [
            _alert(counter, f"{counter:02X}", minute, digest=f"{counter:064x}")
            for counter, minute in enumerate(minutes, start=1)
        ]
        order = data.draw(st.permutations(alerts), label="arrival")
        cuts = sorted(data.draw(st.sets(st.integers(1, size - 1)), label="batch cuts"))
        replays = data.draw(st.lists(st.sampled_from(alerts), max_size=3), label="replays")

        def recorded(arrivals: list[NewAlert], at: list[int]) -> tuple[str | None, object, str]:
            with engine.begin() as conn:
                for table in (bo_alerts, bo_hubs, bo_firmware_events):
                    conn.execute(sa.delete(table))
            for start, end in zip([0, *at], [*at, len(arrivals)], strict=True):
                with engine.begin() as conn:
                    record_alerts(conn, arrivals[start:end])
            return _state(engine)

        in_order = recorded(sorted(alerts, key=lambda a: a.facts.order), [])
        newest = max(alerts, key=lambda a: a.facts.order).facts
        assert in_order[0] == newest.firmware_version
        assert recorded([*order, *replays], cuts) == in_order
