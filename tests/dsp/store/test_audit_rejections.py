"""The audit log and the intake rejections: append-only records for operators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.dsp.store import audit, rejections

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")


class TestAudit:
    """Entries come back newest first with their detail intact."""

    def test_record_and_list(self, engine: Engine) -> None:
        with engine.begin() as conn:
            first = audit.record(conn, "ops", "users.add", {"user_id": "X", "roles": ["IS"]}, AT)
            second = audit.record(conn, "ops", "users.set-duis", {"after": "5.1"})
        with engine.connect() as conn:
            entries = audit.list_recent(conn)
            assert [e.id for e in audit.list_recent(conn, limit=1)] == [second]
        assert [e.id for e in entries] == [second, first]
        assert entries[1].detail == {"user_id": "X", "roles": ["IS"]}
        assert entries[1].at == AT
        assert entries[0].action == "users.set-duis"

    def test_current_actor_is_text(self) -> None:
        assert audit.current_actor().strip()


class TestRejections:
    """Rejected posts are kept with their payload (cut when huge)."""

    def test_record_and_list(self, engine: Engine) -> None:
        with engine.begin() as conn:
            rejections.record_rejection(
                conn, csp="north", device_id=None, reason="bad", payload=b"\x00\x01", received_at=AT
            )
            rejections.record_rejection(
                conn,
                csp=None,
                device_id=CH,
                reason="unknown CH",
                payload=b"\xdf",
                received_at=AT + timedelta(seconds=1),
            )
        with engine.connect() as conn:
            found = rejections.list_recent(conn)
            assert rejections.count(conn) == 2
        assert [(r.device_id, r.payload, r.reason) for r in found] == [
            (CH, b"\xdf", "unknown CH"),
            (None, b"\x00\x01", "bad"),
        ]
        assert found[1].received_at == AT
        assert found[1].csp == "north"

    def test_huge_payload_is_cut_and_said_so(self, engine: Engine) -> None:
        payload = bytes(range(256)) * 1024  # 256 KiB
        with engine.begin() as conn:
            rejections.record_rejection(
                conn, csp="c", device_id=None, reason="r" * 2000, payload=payload, received_at=AT
            )
        with engine.connect() as conn:
            (found,) = rejections.list_recent(conn)
        assert found.payload == payload[: rejections.PAYLOAD_MAX_BYTES]
        assert len(found.reason) == rejections.REASON_MAX
        assert found.reason.endswith(f"[payload of {len(payload)} bytes cut to 65536]")
