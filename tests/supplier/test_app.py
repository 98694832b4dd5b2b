"""The receiver over HTTP accepting real signed alerts: record, dedupe, order, keep any code."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from chfw.core.domain import DeviceId, DuisVersion
from chfw.supplier import backoffice
from tests.supplier.helpers import CH, CH2, POWER_OUTAGE, T0, Dsp, Served, count_rows


def _hub(engine: Engine, device: DeviceId = CH) -> backoffice.HubView:
    with engine.connect() as conn:
        view = backoffice.hub_view(conn, device)
    assert view is not None
    return view


class TestAccepted:
    """A valid signed N64 or N999 is answered 204 and recorded with its raw document."""

    def test_n64_is_recorded_with_its_version(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.n64("02010300")
        answer = receiver.post(body)
        assert answer.status_code == 204
        assert answer.content == b""
        view = _hub(engine)
        assert view.active_version == "02010300"
        assert view.changed_at == T0
        assert [e.firmware_version for e in view.history] == ["02010300"]
        with engine.connect() as conn:
            (stored,) = backoffice.list_alerts(conn)
            assert backoffice.alert_document(conn, stored.response_id) == body
        assert stored.alert_code == "N64"
        assert stored.device_id == str(CH)
        assert stored.signer == "CN=test DSP"

    def test_n999_is_recorded_as_version_unknown_and_asks_for_a_lookup(
        self, receiver: Served, dsp: Dsp, engine: Engine, lookups: list[DeviceId]
    ) -> None:
        assert receiver.post(dsp.n999(duis="5.0")).status_code == 204
        view = _hub(engine)
        assert view.active_version is None
        assert view.lookup_pending is True
        assert [(e.alert_code, e.version_source) for e in view.history] == [("N999", "unknown")]
        assert lookups == [CH]

    def test_custom_path(self, serve: Callable[..., Served], dsp: Dsp, engine: Engine) -> None:
        server = serve(path="/duis/alerts")
        assert server.post(dsp.n64(), path="/duis/alerts").status_code == 204
        assert server.post(dsp.n64(), path="/").status_code in (404, 405)
        assert count_rows(engine, "bo_alerts") == 1

    def test_health(self, receiver: Served) -> None:
        answer = httpx.get(receiver.url("/healthz"))
        assert answer.json() == {"status": "ok"}

    def test_acceptance_and_rejection_are_logged(self, receiver: Served, dsp: Dsp) -> None:
        body = dsp.n64()
        with capture_logs() as logs:
            receiver.post(body)
            receiver.post(body.replace(b"02010300", b"02010301"))
        events = {entry["event"]: entry for entry in logs}
        assert events["alert_received"]["alert_code"] == "N64"
        assert events["alert_received"]["firmware_version"] == "02010300"
        assert "digest mismatch" in events["alert_rejected"]["reason"]
        assert events["alert_rejected"]["status"] == 400


class TestReplay:
    """Only a verified document can be a duplicate; a replayed ResponseID is recorded once."""

    def test_replay_is_answered_204_and_recorded_once(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.n64()
        statuses = [receiver.post(body).status_code for _ in range(3)]
        assert statuses == [204, 204, 204]
        assert count_rows(engine, "bo_alerts") == 1
        assert len(_hub(engine).history) == 1
        with engine.connect() as conn:
            (stored,) = backoffice.list_alerts(conn)
        assert stored.duplicates == 2

    def test_concurrent_replays_make_one_record(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.n64()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: receiver.post(body).status_code, range(16)))
        assert set(statuses) == {204}
        assert count_rows(engine, "bo_alerts") == 1
        assert count_rows(engine, "bo_firmware_events") == 1

    def test_a_tampered_copy_of_a_recorded_alert_is_not_a_duplicate(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.n64("02010300")
        assert receiver.post(body).status_code == 204
        forged = body.replace(b"02010300", b"09090909")
        assert receiver.post(forged).status_code == 400
        assert _hub(engine).active_version == "02010300"
        assert count_rows(engine, "bo_rejections") == 1


class TestOrdering:
    """Alerts for one CH are ordered by their ResponseDateTime, not by arrival."""

    def test_older_alert_arriving_second_goes_to_history_only(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        newer = dsp.n64("02010400", at=T0 + timedelta(hours=1))
        older = dsp.n64("02010300", at=T0)
        assert receiver.post(newer).status_code == 204
        assert receiver.post(older).status_code == 204
        view = _hub(engine)
        assert view.active_version == "02010400"
        assert view.changed_at == T0 + timedelta(hours=1)
        assert [(e.firmware_version, e.applied) for e in view.history] == [
            ("02010300", False),
            ("02010400", True),
        ]

    def test_in_order_alerts_move_the_version_forward(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        receiver.post(dsp.n64("02010300", at=T0))
        receiver.post(dsp.n64("02010400", at=T0 + timedelta(minutes=5)))
        view = _hub(engine)
        assert view.active_version == "02010400"
        assert [e.applied for e in view.history] == [True, True]

    def test_hubs_are_independent(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        receiver.post(dsp.n64("02010400", device=CH, at=T0 + timedelta(hours=1)))
        receiver.post(dsp.n64("02010300", device=CH2, at=T0))
        assert _hub(engine, CH).active_version == "02010400"
        assert _hub(engine, CH2).active_version == "02010300"


class TestOtherAlertCodes:
    """Alert codes other than N64/N999 are stored raw and listed, not refused."""

    def test_unknown_code_with_a_body_the_bundled_schema_lacks(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.other("N12", POWER_OUTAGE)
        assert receiver.post(body).status_code == 204
        with engine.connect() as conn:
            (stored,) = backoffice.list_alerts(conn, alert_code="N12")
            assert backoffice.alert_document(conn, stored.response_id) == body
            assert backoffice.hub_view(conn, CH) is None  # not a firmware alert
        assert stored.device_id == str(CH)  # from the ResponseID
        assert stored.firmware_version is None

    def test_envelope_stays_strict_for_other_codes(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        bad_header = dsp.other("N12", POWER_OUTAGE, header_extra="<sr:Extra>1</sr:Extra>")
        bad_code = dsp.other("X12", POWER_OUTAGE)
        two_bodies = dsp.other("N12", POWER_OUTAGE + POWER_OUTAGE)
        for body in (bad_header, bad_code, two_bodies):
            answer = receiver.post(body)
            assert answer.status_code == 400, body
            assert "not valid against chfw's DUIS alert envelope schema" in answer.text
        assert count_rows(engine, "bo_alerts") == 0


class TestDuisVersion:
    """An endpoint set to a DUIS version refuses documents of another version."""

    def test_other_version_is_refused(
        self, serve: Callable[..., Served], dsp: Dsp, engine: Engine
    ) -> None:
        server = serve(duis_version=DuisVersion(5, 1))
        answer = server.post(dsp.n999(duis="5.0"))
        assert answer.status_code == 400
        assert "schemaVersion '5.0' is not this endpoint's DUIS version 5.1" in answer.text
        assert server.post(dsp.n64(duis="5.1")).status_code == 204
        assert count_rows(engine, "bo_alerts") == 1

    def test_n64_does_not_exist_in_duis_5_0(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.other(
            "N64",
            "<sr:CommsHubFirmwareActivation><sr:DeviceID>00-1D-A1-00-00-00-00-42</sr:DeviceID>"
            "<sr:FirmwareVersion>02010300</sr:FirmwareVersion></sr:CommsHubFirmwareActivation>",
            duis="5.0",
        )
        answer = receiver.post(body)
        assert answer.status_code == 400
        assert "DUIS 5.0" in answer.text
        assert count_rows(engine, "bo_alerts") == 0
