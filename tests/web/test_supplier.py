"""The supplier dashboard over HTTP: pilot progress, readiness, alerts and refusals."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine

from chfw.core.domain import FirmwareVersion
from chfw.supplier import backoffice, pilots, readiness
from chfw.supplier.app import create_receiver_app
from chfw.supplier.dashboard import RECENT
from chfw.supplier.pipeline import ReceiverConfig
from tests.sim.live import serve
from tests.small_dsp import TRUST
from tests.web.conftest import TOKEN
from tests.web.pages import live_text, number, table_rows
from tests.web.wave import PILOT


class TestSupplierDashboard:
    """What the page shows is what the back office holds."""

    def test_pilot_progress(self, supplier: httpx.Client, fed_supplier: tuple[Engine, int]) -> None:
        engine, cohort = fed_supplier
        page = supplier.get("/dashboard/")
        assert page.status_code == 200
        with engine.connect() as conn:
            pilot, figures = pilots.pilot_progress(conn, PILOT)
        assert figures.cohort == cohort
        assert 0 < figures.activated <= cohort
        assert number(live_text(page.text, "pilot.activated")) == figures.activated
        assert number(live_text(page.text, "pilot.not_yet")) == figures.not_yet
        statuses = dict(table_rows(page.text, "pilot-statuses"))
        assert (
            number(statuses["Activated, still on the target"])
            == figures.statuses[pilots.MemberStatus.ACTIVATED]
        )
        assert f"Cumulative activations of pilot {PILOT}" in page.text
        chart = supplier.get("/dashboard/charts/pilot.svg", params={"pilot": PILOT})
        assert chart.text.count("<path") == 1
        assert f"{figures.activated:,} of {cohort:,} CHs activated" in chart.text
        assert pilot.target_version.hex in page.text

    def test_readiness_for_a_chosen_version(
        self, supplier: httpx.Client, fed_supplier: tuple[Engine, int]
    ) -> None:
        engine, _ = fed_supplier
        for version in ("02010300", "02010400", "01"):
            page = supplier.get("/dashboard/", params={"min_version": version})
            with engine.connect() as conn:
                expected = readiness.readiness(conn, FirmwareVersion.parse(version))
            assert number(live_text(page.text, "ready.ready")) == expected.ready
            assert number(live_text(page.text, "ready.below")) == expected.below

    def test_bad_version_is_explained(self, supplier: httpx.Client) -> None:
        page = supplier.get("/dashboard/", params={"min_version": "<zz>"})
        assert page.status_code == 400
        assert "&lt;zz&gt;" in page.text
        assert "<zz>" not in page.text

    def test_recent_alerts_and_refusals(
        self, supplier: httpx.Client, fed_supplier: tuple[Engine, int]
    ) -> None:
        engine, _ = fed_supplier
        page = supplier.get("/dashboard/")
        with engine.connect() as conn:
            alerts = backoffice.list_alerts(conn, limit=RECENT)
            refused = backoffice.list_rejections(conn)
        assert [r[0] for r in table_rows(page.text, "recent-alerts")] == [
            a.response_id for a in alerts
        ]
        rows = table_rows(page.text, "rejections")
        assert len(rows) == len(refused) == 2
        assert [r[2] for r in rows] == [r.reason for r in refused]
        assert all(r[1] == "400" for r in rows)

    def test_live_json(self, supplier: httpx.Client, fed_supplier: tuple[Engine, int]) -> None:
        engine, _ = fed_supplier
        data = supplier.get("/dashboard/live.json", params={"pilot": PILOT}).json()
        with engine.connect() as conn:
            counts = backoffice.alert_counts(conn)
        assert number(data["live"]["alerts.total"]) == sum(counts.values())

    def test_no_pilot_yet(self, supplier_engine: Engine) -> None:
        app = create_receiver_app(
            ReceiverConfig(trust=TRUST), supplier_engine, dashboard_token=TOKEN
        )
        with serve(app) as base, httpx.Client(base_url=base) as client:
            client.post("/dashboard/login", data={"token": TOKEN})
            page = client.get("/dashboard/")
        assert page.status_code == 200
        assert "No pilot is defined yet" in page.text
        assert "No alert received yet." in page.text
