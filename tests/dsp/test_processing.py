"""One transaction per submission: decide, record history, update inventory, write alerts."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.core.gbcs import encode_accepted, encode_alert, encode_response, message_bytes
from chfw.core.signing import verify_document
from chfw.dsp.processing import ActivationService, Status, batch
from chfw.dsp.store import counters, estate, inventory, outbox, parked_outcomes, rejections
from chfw.dsp.store.counters import CounterBlock
from chfw.dsp.store.schema import outbox as outbox_table
from tests.small_dsp import (
    ALICE,
    BOB,
    CAROL,
    CH1,
    CH2,
    CH3,
    CH4,
    SIGNER,
    TRUST,
    Dsp,
    Sequential,
    build_dsp,
)

SENDER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
V1 = FirmwareVersion.parse("02010300")
V2 = FirmwareVersion.parse("02010400")


def response(
    device: DeviceId, counter: int, result: ActivationResult = ActivationResult.SUCCESS, v=V1
) -> bytes:
    return encode_response(
        device_id=device, recipient=SENDER, counter=counter, result=result, firmware_version=v
    )


@pytest.fixture
def dsp(engine: Engine) -> Dsp:
    return build_dsp(engine)


def outbox_rows(engine: Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id)))


class TestNewVersion:
    """A success with a new version updates the inventory and writes one alert per supplier."""

    def test_n64_and_n999_per_recipient(self, dsp: Dsp) -> None:
        (result,) = dsp.service.submit([response(CH1, 10)], "north")
        assert result.status is Status.PROCESSED
        assert result.decision == "new_version"
        assert result.alerts == {"N64": 1, "N999": 1}
        rows = outbox_rows(dsp.engine)
        assert {(r.user_id, r.alert_code, r.duis_version) for r in rows} == {
            (ALICE.hex, "N64", "5.1"),
            (BOB.hex, "N999", "5.0"),
        }
        for row in rows:
            assert row.state == "pending"
            verified = verify_document(row.document, TRUST)
            assert verified.root.get("schemaVersion") == row.duis_version
            assert row.response_id.split(":")[1] == str(CH1)
        with dsp.engine.connect() as conn:
            hub = estate.get_hub(conn, CH1)
            assert hub is not None
            assert hub.active_firmware == V1
            (entry,) = inventory.history_for(conn, CH1)
            assert entry.alerts_created == 2

    def test_hex_text_input(self, dsp: Dsp) -> None:
        (result,) = dsp.service.submit([response(CH2, 11).hex(" ")], "north")
        assert result.status is Status.PROCESSED
        assert result.alerts == {"N64": 1}

    def test_response_ids_are_unique(self, dsp: Dsp) -> None:
        dsp.service.submit([response(CH1, 1), response(CH2, 2)], "north")
        dsp.service.submit([response(CH1, 3, v=V2)], "north")
        ids = [r.response_id for r in outbox_rows(dsp.engine)]
        assert len(ids) == 5
        assert len(set(ids)) == 5


class TestNothingToSend:
    """Same version, failures, pending activations and supplier-less hubs send nothing."""

    def test_same_version_twice_by_different_commands(self, dsp: Dsp) -> None:
        dsp.service.submit([response(CH2, 1)], "north")
        (again,) = dsp.service.submit([response(CH2, 2)], "north")
        assert again.status is Status.PROCESSED
        assert again.decision == "same_version"
        assert len(outbox_rows(dsp.engine)) == 1

    def test_failure_is_history_only(self, dsp: Dsp) -> None:
        (result,) = dsp.service.submit(
            [response(CH1, 5, ActivationResult.HASH_MISMATCH, V2)], "north"
        )
        assert result.decision == "failure"
        assert outbox_rows(dsp.engine) == []
        with dsp.engine.connect() as conn:
            hub = estate.get_hub(conn, CH1)
            assert hub is not None
            assert hub.active_firmware is None
            (entry,) = inventory.history_for(conn, CH1)
            assert entry.result == ActivationResult.HASH_MISMATCH

    def test_no_supplier_is_recorded(self, dsp: Dsp) -> None:
        (result,) = dsp.service.submit([response(CH3, 5)], "north")
        assert result.status is Status.PROCESSED
        assert result.alerts == {}
        with dsp.engine.connect() as conn:
            hub = estate.get_hub(conn, CH3)
            assert hub is not None
            assert hub.active_firmware == V1

    def test_registered_supplier_without_service_user_is_surfaced(self, dsp: Dsp) -> None:
        (result,) = dsp.service.submit([response(CH4, 5)], "north")
        assert result.alerts == {}
        assert any(str(CAROL) in w for w in result.warnings)
        with dsp.engine.connect() as conn:
            (entry,) = inventory.history_for(conn, CH4)
            assert entry.note is not None
            assert str(CAROL) in entry.note


class TestFutureDated:
    """Accepted, then the 0x8F66 alert: two events sharing the command counter."""

    def test_accepted_then_success_alert(self, dsp: Dsp) -> None:
        accepted = encode_accepted(device_id=CH2, recipient=SENDER, counter=77)
        (first,) = dsp.service.submit([accepted], "north")
        assert first.decision == "pending"
        assert outbox_rows(dsp.engine) == []
        alert = encode_alert(
            device_id=CH2,
            recipient=SENDER,
            message_counter=9000,
            originator_counter=77,
            result=ActivationResult.SUCCESS,
            firmware_version=V2,
            executed_at=__import__("datetime").datetime(
                2030, 1, 15, 9, tzinfo=__import__("datetime").UTC
            ),
        )
        (second,) = dsp.service.submit([alert], "north")
        assert second.status is Status.PROCESSED
        assert second.decision == "new_version"
        assert second.alerts == {"N64": 1}
        (dup,) = dsp.service.submit([alert], "north")
        assert dup.status is Status.DUPLICATE


class TestIdempotency:
    """The same outcome delivered twice by a CSP yields one set of alerts."""

    def test_duplicate_in_later_submission(self, dsp: Dsp) -> None:
        message = response(CH1, 42)
        dsp.service.submit([message], "north")
        (dup,) = dsp.service.submit([message], "north")
        assert dup.status is Status.DUPLICATE
        assert len(outbox_rows(dsp.engine)) == 2

    def test_duplicate_within_one_batch(self, dsp: Dsp) -> None:
        message = response(CH1, 43)
        first, second = dsp.service.submit([message, message], "north")
        assert first.status is Status.PROCESSED
        assert second.status is Status.DUPLICATE
        assert len(outbox_rows(dsp.engine)) == 2


class TestRejections:
    """Malformed input and unknown hubs are answered clearly and recorded."""

    def test_malformed(self, dsp: Dsp) -> None:
        (result,) = dsp.service.submit([b"\xdf\x09\x02"], "north")
        assert result.status is Status.MALFORMED
        assert result.offset is not None
        with dsp.engine.connect() as conn:
            (rejection,) = rejections.list_recent(conn)
            assert "offset" in rejection.reason

    def test_unknown_device_is_parked_once(self, dsp: Dsp) -> None:
        stranger = DeviceId.parse("00-1D-A1-FF-FF-FF-FF-FF")
        message = response(stranger, 1)
        (result,) = dsp.service.submit([message], "north")
        assert result.status is Status.PARKED
        assert result.to_json()["key"] == f"{stranger}:1:outcome"
        assert "not in the estate yet" in (result.error or "")
        (again,) = dsp.service.submit([message], "south")
        assert again.status is Status.PARKED
        with dsp.engine.connect() as conn:
            assert rejections.list_recent(conn) == []
            (kept,) = parked_outcomes.list_parked(conn)
        assert (kept.device_id, kept.csp, kept.in_estate) == (stranger, "north", False)
        assert kept.payload == message_bytes(message)

    def test_batch_mixes_good_and_bad(self, dsp: Dsp) -> None:
        results = dsp.service.submit([response(CH2, 1), "zz", response(CH1, 2)], "north")
        assert [r.status for r in results] == [Status.PROCESSED, Status.MALFORMED, Status.PROCESSED]
        assert len(outbox_rows(dsp.engine)) == 3

    def test_five_octet_version_is_recorded_not_truncated(self, dsp: Dsp) -> None:
        long_version = FirmwareVersion.parse("0102030405")
        (result,) = dsp.service.submit([response(CH1, 9, v=long_version)], "north")
        assert result.status is Status.PROCESSED
        assert result.decision == "version_not_carriable"
        # One rule for ALICE (N64) and BOB (N999): neither is sent anything.
        assert result.alerts == {}
        assert any("no N64 or N999" in w and "5 octets" in w for w in result.warnings)
        with dsp.engine.connect() as conn:
            hub = estate.get_hub(conn, CH1)
            assert hub is not None
            assert hub.active_firmware == long_version
            assert outbox.counts(conn)["pending"] == 0


class TestLogging:
    """A batch is one info line; outcomes are debug lines, refusals warnings at any level."""

    def test_info_level_logs_the_batch_and_the_refusals(self, dsp: Dsp) -> None:
        from chfw.shared.logs import configure_logging

        unknown = DeviceId.parse("00-DB-00-00-00-00-00-99")
        configure_logging("info", json=True)
        try:
            with structlog.testing.capture_logs() as logs:
                dsp.service.submit(
                    [response(CH1, 70), b"\x00\x01", response(unknown, 71), response(CH2, 72)],
                    "north",
                )
        finally:
            structlog.reset_defaults()
        (batch,) = [e for e in logs if e["event"] == "cs06_batch"]
        assert batch["log_level"] == "info"
        assert (batch["messages"], batch["processed"]) == (4, 2)
        assert (batch["malformed"], batch["parked"]) == (1, 1)
        assert batch["csp"] == "north"
        outcomes = [e for e in logs if e["event"] == "cs06_outcome"]
        assert sorted(e["status"] for e in outcomes) == ["malformed", "parked"]
        assert {e["log_level"] for e in outcomes} == {"warning"}

    def test_debug_level_logs_every_outcome(self, dsp: Dsp) -> None:
        from chfw.shared.logs import configure_logging

        configure_logging("debug", json=True)
        try:
            with structlog.testing.capture_logs() as logs:
                dsp.service.submit([response(CH1, 80), response(CH2, 81)], "north")
        finally:
            structlog.reset_defaults()
        outcomes = [e for e in logs if e["event"] == "cs06_outcome"]
        assert [e["log_level"] for e in outcomes] == ["debug", "debug"]
        assert {e["device_id"] for e in outcomes} == {str(CH1), str(CH2)}


def run_between_plan_and_write(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Make ``action`` run once, after the first batch is planned and before it is written:
    another intake process taking its turn in between."""
    real_plan = batch.Batch.plan
    done: list[bool] = []

    def plan(self: batch.Batch, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        planned = real_plan(self, inputs, *args, **kwargs)
        if not done:
            done.append(True)
            action()
        return planned

    monkeypatch.setattr(batch.Batch, "plan", plan)


class WatchedSigner:
    """The test signer, telling ``watch`` about every signature it makes."""

    issuer_name = SIGNER.issuer_name
    serial_number = SIGNER.serial_number
    certificate = SIGNER.certificate

    def __init__(self, watch: Callable[[bytes], None]) -> None:
        self.watch = watch

    def sign(self, data: bytes) -> bytes:
        self.watch(data)
        return SIGNER.sign(data)


class TestBuiltOutsideTheWriteTransaction:
    """Planned before the lock (SQLite's way; tested on every backend): alerts are rendered
    and signed before the write transaction; the transaction checks that the state they
    were decided from still holds, and decides again if it does not."""

    def test_signing_happens_with_no_write_transaction_open(self, dsp: Dsp) -> None:
        writing: list[bool] = []
        open_writes: set[int] = set()

        def on_begin(conn: sa.Connection) -> None:
            if not conn.get_execution_options().get("chfw_read_only"):
                open_writes.add(id(conn))

        def on_end(conn: sa.Connection) -> None:
            open_writes.discard(id(conn))

        sa.event.listen(dsp.engine, "begin", on_begin)
        sa.event.listen(dsp.engine, "commit", on_end)
        sa.event.listen(dsp.engine, "rollback", on_end)

        signer = WatchedSigner(lambda _data: writing.append(bool(open_writes)))
        builder = dataclasses.replace(dsp.service.builder, signer=signer)
        service = ActivationService(dsp.engine, builder, Sequential(), plan_under_lock=False)
        results = service.submit([response(CH1, 10), response(CH2, 11)], "north")
        assert [r.status for r in results] == [Status.PROCESSED, Status.PROCESSED]
        assert writing == [False, False, False]  # CH1: N64 + N999, CH2: N64

    def test_an_outcome_taken_in_between_is_decided_again_as_a_duplicate(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Two intake processes get the same CS06 answer: the second plans it while the
        # first is still writing it. Its write transaction sees the outcome recorded and
        # answers "duplicate" -- one set of alerts, as if the two had come one by one.
        first = build_dsp(engine)
        second = ActivationService(
            engine, first.service.builder, first.service.counters, plan_under_lock=False
        )

        def other_takes_it() -> None:
            (other,) = first.service.submit([response(CH1, 10)], "north")
            assert other.status is Status.PROCESSED

        run_between_plan_and_write(monkeypatch, other_takes_it)
        (result,) = second.submit([response(CH1, 10)], "north")
        assert result.status is Status.DUPLICATE
        assert len(outbox_rows(engine)) == 2  # N64 for Alice, N999 for Bob: once
        with engine.connect() as conn:
            assert len(inventory.history_for(conn, CH1)) == 1

    def test_a_version_changed_in_between_is_decided_from_the_new_state(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Planned against V0 -> V1 (new version, alerts); before the write another
        # process records V1 from another answer: this one is then "same version".
        first = build_dsp(engine)
        second = ActivationService(
            engine, first.service.builder, first.service.counters, plan_under_lock=False
        )

        def other_records_v1() -> None:
            (other,) = first.service.submit([response(CH2, 20)], "north")
            assert other.decision == "new_version"

        run_between_plan_and_write(monkeypatch, other_records_v1)
        (result,) = second.submit([response(CH2, 21)], "north")
        assert result.status is Status.PROCESSED
        assert result.decision == "same_version"
        assert not any(result.alerts.values())
        assert len(outbox_rows(engine)) == 1  # only the first answer's N64 to Alice

    def test_only_the_changed_ch_is_decided_again(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = build_dsp(engine)
        signed: list[bytes] = []
        builder = dataclasses.replace(first.service.builder, signer=WatchedSigner(signed.append))
        other = ActivationService(engine, builder, first.service.counters)
        second = ActivationService(engine, builder, first.service.counters, plan_under_lock=False)

        def other_takes_ch2() -> None:
            (taken,) = other.submit([response(CH2, 30)], "north")  # 1 alert: Alice
            assert taken.status is Status.PROCESSED

        run_between_plan_and_write(monkeypatch, other_takes_ch2)
        results = second.submit([response(CH1, 30), response(CH2, 30)], "north")
        assert [r.status for r in results] == [Status.PROCESSED, Status.DUPLICATE]
        assert results[0].alerts == {"N64": 1, "N999": 1}
        # First plan: CH1's two alerts and CH2's one; the other service: CH2's one. The
        # second look decides CH2 again (a duplicate now, nothing built) and keeps CH1's.
        assert len(signed) == 4
        rows = outbox_rows(engine)
        assert sorted((r.device_id, r.alert_code) for r in rows) == sorted(
            [(CH1.hex, "N64"), (CH1.hex, "N999"), (CH2.hex, "N64")]
        )


class TestPlannedUnderLock:
    """PostgreSQL's way (tested on every backend): the batch's CHs are locked first and the
    batch is decided and built inside the write transaction, from one read of their state."""

    def test_the_default_follows_the_backend(self, dsp: Dsp) -> None:
        expected = dsp.engine.dialect.name == "postgresql"
        service = ActivationService(dsp.engine, dsp.service.builder, dsp.service.counters)
        assert service.plan_under_lock is expected

    def test_counters_are_reserved_before_the_transaction_that_signs(
        self, dsp: Dsp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        counter = CounterBlock(dsp.engine, block_size=1)  # nothing on hand beforehand
        inside: list[int] = []
        real_allocate = counters.allocate

        def allocate(conn: sa.Connection, name: str, n: int) -> range:
            inside.append(n)  # allocated in the caller's transaction, or its own
            return real_allocate(conn, name, n)

        monkeypatch.setattr(counters, "allocate", allocate)
        writing: list[bool] = []
        open_writes: set[int] = set()
        sa.event.listen(dsp.engine, "begin", lambda conn: open_writes.add(id(conn)))
        sa.event.listen(dsp.engine, "commit", lambda conn: open_writes.discard(id(conn)))
        signer = WatchedSigner(lambda _data: writing.append(bool(open_writes)))
        builder = dataclasses.replace(dsp.service.builder, signer=signer)
        service = ActivationService(dsp.engine, builder, counter, plan_under_lock=True)
        results = service.submit([response(CH1, 10), response(CH2, 11)], "north")
        counter.close()
        assert [r.alerts for r in results] == [{"N64": 1, "N999": 1}, {"N64": 1}]
        assert writing == [True, True, True]
        # One block, reserved before the write transaction; none taken inside it.
        assert inside == [2 * 2]

    def test_a_batch_naming_a_locked_ch_waits_then_finds_it_processed(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = build_dsp(engine)
        builder = first.service.builder
        holder = ActivationService(engine, builder, first.service.counters, plan_under_lock=True)
        waiter = ActivationService(engine, builder, first.service.counters, plan_under_lock=True)
        waited: list[Status] = []
        thread = threading.Thread(
            target=lambda: waited.extend(
                r.status for r in waiter.submit([response(CH1, 10)], "north")
            )
        )

        def start_the_other_and_hold_on() -> None:
            thread.start()
            thread.join(timeout=0.5)  # it cannot finish while this batch holds CH1
            assert thread.is_alive()

        run_between_plan_and_write(monkeypatch, start_the_other_and_hold_on)
        (result,) = holder.submit([response(CH1, 10)], "north")
        thread.join(timeout=30)
        assert result.status is Status.PROCESSED
        assert waited == [Status.DUPLICATE]
        assert len(outbox_rows(engine)) == 2  # N64 for Alice, N999 for Bob: once
