"""The DSP dashboard over HTTP: what it shows agrees with the database; replay is audited."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from chfw.core.domain import DeviceId, UserId
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import audit, estate, inventory, outbox
from chfw.dsp.store.schema import firmware_history, service_users
from tests.web.pages import live_text, number, table_rows
from tests.web.wave import LoadedDsp, settle


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def seconds(text: str) -> float:
    """A duration as the dashboard writes it (``850 ms``, ``4.2 s``, ``3.1 min``, ``2.0 h``)."""
    value, unit = text.split()
    return float(value) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600}[unit]


class TestOverview:
    """Firmware distribution, outcomes and delivery health as the database has them."""

    def test_firmware_distribution_per_version_and_region(
        self, dsp: httpx.Client, loaded: LoadedDsp
    ) -> None:
        page = dsp.get("/dashboard/")
        assert page.status_code == 200
        with loaded.engine.connect() as conn:
            overall = estate.firmware_distribution(conn)
            by_region = estate.firmware_distribution_by_region(conn)
        rows = {row[0]: row[1:] for row in table_rows(page.text, "firmware-distribution")}
        assert set(rows) == {v if v is not None else "not reported" for v in overall}
        for version, count in overall.items():
            cells = rows[version if version is not None else "not reported"]
            assert number(cells[0]) == count
            regions = [number(c) for c in cells[2:]]
            assert regions == [by_region.get(r, {}).get(version, 0) for r in CspRegion]
        # The simulator's own ground truth agrees too.
        assert overall == loaded.wave.ground_truth.firmware_distribution
        assert number(live_text(page.text, "hubs")) == len(loaded.synthetic)

    def test_outcome_totals(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        page = dsp.get("/dashboard/")
        with loaded.engine.connect() as conn:
            counts = inventory.outcome_counts(conn)
        rows = dict(table_rows(page.text, "outcome-totals"))
        assert number(rows["Success"]) == counts.get("success", 0)
        assert number(rows["Hash mismatch"]) == counts.get("hash_mismatch", 0)
        assert "<svg" in page.text
        assert 'aria-labelledby="outcomes-title outcomes-desc"' in page.text

    def test_delivery_health_per_user(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        made = settle(loaded.engine, dead=2, retrying=3)
        rows = table_rows(dsp.get("/dashboard/").text, "delivery-health")
        assert sum(number(r[3]) for r in rows) == made["retrying"]
        assert sum(number(r[5]) for r in rows) == made["dead"]
        assert sum(number(r[6]) for r in rows) == made["delivered"]
        assert all(r[8].endswith(" s") for r in rows)  # p50 latency shown for every user
        assert all(r[1] == "active" for r in rows)

    def test_oldest_undelivered_and_a_suspended_user(
        self, dsp: httpx.Client, loaded: LoadedDsp
    ) -> None:
        """The "oldest undelivered" figure is the metric's (age since creation of the oldest
        pending alert, whether due or waiting for a retry); a suspended user says why."""
        settle(loaded.engine, dead=1, retrying=3)
        with loaded.engine.begin() as conn:
            pending = outbox.list_rows(conn, state="pending", limit=100_000)
            user = pending[0].user_id
            conn.execute(
                sa.update(service_users)
                .where(service_users.c.user_id == user)
                .values(suspended_at=pending[0].created_at, suspended_reason="20 refusals: 400")
            )
        page = dsp.get("/dashboard/").text
        oldest = max(datetime.now(UTC) - r.created_at for r in pending).total_seconds()
        shown = live_text(page, "oldest_undelivered")
        assert shown != "none pending"
        assert 0 < seconds(shown) <= oldest + 180  # read just before `oldest`; rounded
        rows = {r[0]: r for r in table_rows(page, "delivery-health")}
        (suspended,) = [r for name, r in rows.items() if str(UserId.parse(user)) in name]
        assert suspended[1].startswith("suspended")
        assert "20 refusals: 400" in suspended[1]
        assert live_text(page, f"delivery.{user}.state") == "suspended"

    def test_live_figures_follow_the_database(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        before = dsp.get("/dashboard/live.json").json()
        settle(loaded.engine, dead=1, retrying=0)
        after = dsp.get("/dashboard/live.json").json()
        with loaded.engine.connect() as conn:
            counts = outbox.counts(conn)
        assert number(after["live"]["outbox.delivered"]) == counts["delivered"]
        assert number(after["live"]["outbox.dead"]) == 1
        assert after["version"] != before["version"]

    def test_charts_are_served_as_svg(self, dsp: httpx.Client) -> None:
        for name in ("outcomes", "failures", "firmware"):
            answer = dsp.get(f"/dashboard/charts/{name}.svg")
            assert answer.headers["content-type"].startswith("image/svg+xml")
            assert answer.text.startswith("<svg")


class TestHubPage:
    """A CH's page lists its history, its alerts and their delivery attempts."""

    def test_history_alerts_and_attempts(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        settle(loaded.engine, dead=0, retrying=0)
        with loaded.engine.connect() as conn:
            device_hex = conn.execute(
                sa.select(firmware_history.c.device_id)
                .where(firmware_history.c.alerts_created > 0)
                .limit(1)
            ).scalar_one()
            device = DeviceId.parse(device_hex)
            history = inventory.history_for(conn, device)
            alerts = outbox.list_rows(conn, device_id=device_hex)
        page = dsp.get(f"/dashboard/hubs/{device}")
        assert page.status_code == 200
        rows = table_rows(page.text, "hub-history")
        assert [r[1] for r in rows] == [str(e.originator_counter) for e in history]
        assert [r[4] for r in rows] == [e.result.value for e in history]
        alert_rows = table_rows(page.text, "hub-alerts")
        assert {r[0] for r in alert_rows} == {a.response_id for a in alerts}
        attempts = table_rows(page.text, "hub-attempts")
        assert Counter(r[2] for r in attempts) == Counter({"delivered": len(alerts)})

    def test_search_redirects_to_the_page(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        device = next(iter(loaded.synthetic)).device_id
        answer = dsp.get("/dashboard/hubs", params={"device_id": device.hex.lower()})
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/dashboard/hubs/{device}"

    def test_unknown_and_malformed(self, dsp: httpx.Client) -> None:
        missing = dsp.get("/dashboard/hubs/00-1D-A1-FF-FF-FF-FF-FF")
        assert missing.status_code == 404
        assert "is not in the estate" in missing.text
        bad = dsp.get("/dashboard/hubs", params={"device_id": "<script>"})
        assert "<script>" not in bad.text
        assert "is not 16 hex digits" in bad.text


class TestDeadLetters:
    """Replay puts dead letters back to pending, in the audit log under the signed-in name."""

    def test_replay_selected(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        settle(loaded.engine, dead=3, retrying=0)
        page = dsp.get("/dashboard/dead-letters")
        rows = table_rows(page.text, "dead-letters")
        assert len(rows) == 3
        with loaded.engine.connect() as conn:
            dead = outbox.list_rows(conn, state="dead")
        chosen = dead[0]
        answer = dsp.post(
            "/dashboard/dead-letters/replay",
            data={"csrf": csrf_of(page.text), "id": str(chosen.id), "action": "selected"},
        )
        assert answer.status_code == 303
        assert "replayed=1" in answer.headers["location"]
        with loaded.engine.connect() as conn:
            row = outbox.get(conn, chosen.id)
            entries = audit.list_recent(conn)
        assert row is not None
        assert row.row.state == "pending"
        assert entries[0].action == "outbox.replay"
        assert entries[0].actor == "dashboard:Ada"
        assert entries[0].detail["ids"] == [chosen.id]
        after = dsp.get(answer.headers["location"])
        assert "1 alert(s) put back to pending" in after.text
        assert len(table_rows(after.text, "dead-letters")) == 2
        assert table_rows(after.text, "replays")[0][1:] == ["dashboard:Ada", "1"]

    def test_replay_all_of_one_user(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        settle(loaded.engine, dead=4, retrying=0)
        with loaded.engine.connect() as conn:
            dead = outbox.list_rows(conn, state="dead")
        user = dead[0].user_id
        mine = [r.id for r in dead if r.user_id == user]
        page = dsp.get("/dashboard/dead-letters", params={"user": user})
        answer = dsp.post(
            "/dashboard/dead-letters/replay",
            data={"csrf": csrf_of(page.text), "user": user, "action": "all"},
        )
        assert f"replayed={len(mine)}" in answer.headers["location"]
        with loaded.engine.connect() as conn:
            left = {r.id for r in outbox.list_rows(conn, state="dead")}
        assert left == {r.id for r in dead} - set(mine)

    def test_nothing_selected(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        settle(loaded.engine, dead=1, retrying=0)
        page = dsp.get("/dashboard/dead-letters")
        answer = dsp.post(
            "/dashboard/dead-letters/replay",
            data={"csrf": csrf_of(page.text), "action": "selected"},
            follow_redirects=True,
        )
        assert "Nothing was replayed" in answer.text
        with loaded.engine.connect() as conn:
            assert outbox.counts(conn)["dead"] == 1
