"""The dashboards in a real browser: Debian's chromium, driven by playwright, against live services.

Skipped when /usr/bin/chromium is missing (run scripts/ensure-chromium.sh, as root, to install
it) or playwright is not installed. Playwright never downloads a browser here: it drives the
system's chromium through ``executable_path``. With ``CHFW_SCREENSHOTS=1`` the tests also save
the screenshots shown in the README under docs/img/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.dsp.store import estate, inventory, outbox
from chfw.dsp.store.schema import firmware_history
from chfw.shared.db.engine import create_engine_for
from chfw.shared.web.auth import DashboardAuth
from chfw.supplier import backoffice, pilots
from chfw.supplier import estate as supplier_estate
from chfw.supplier.schema import bo_alerts, bo_firmware_events, bo_hubs
from chfw.uit.report import CaseResult, Report, write_html
from tests.databases import copy_sqlite
from tests.dsp.store.outbox_helpers import mark_retry
from tests.supplier.recorded import device, record
from tests.web.conftest import TOKEN
from tests.web.pages import number
from tests.web.test_campaigns_page import running_campaign
from tests.web.wave import PILOT, LoadedDsp, settle

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 900}  # a laptop screen
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
WAIT_MS = 15_000


@pytest.fixture
def engine(migrated_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """SQLite only: the browser sees the same pages on either backend (tests/web/test_dsp.py
    and tests/dsp/store/test_stats.py run the queries on both)."""
    url = copy_sqlite(migrated_template, tmp_path / "chfw.db")
    created = create_engine_for(url)
    yield created
    created.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium (the system's), one per module; every test gets a fresh context."""
    if not CHROMIUM.is_file():
        pytest.skip(
            f"{CHROMIUM} is missing: browser tests need Debian's chromium "
            "(run scripts/ensure-chromium.sh as root to install it)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> None:
    """Save docs/img/<name> when CHFW_SCREENSHOTS=1 (as `make screenshots` would)."""
    if os.environ.get("CHFW_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def sign_in(page: Page, base: str, name: str = "Ada") -> None:
    page.goto(f"{base}/dashboard/")
    assert page.url.endswith("/dashboard/login")  # redirected: no session yet
    page.get_by_label("Dashboard token").fill(TOKEN)
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/dashboard/")


def expect_text(locator: Locator, text: str | re.Pattern[str]) -> None:
    """Wait until the element shows ``text`` (polled by playwright; no script is evaluated,
    which the dashboards' Content-Security-Policy would refuse)."""
    from playwright.sync_api import expect

    expect(locator).to_have_text(text, timeout=WAIT_MS)


def rows(page: Page, table_id: str) -> list[list[str]]:
    cells: list[list[str]] = page.eval_on_selector_all(
        f'[id="{table_id}"] tbody tr',  # by attribute: an id may hold dots (a campaign's name)
        "rows => rows.map(r => [...r.querySelectorAll('th,td')]"
        ".map(c => c.textContent.trim().replace(/\\s+/g, ' ')))",
    )
    return cells


class TestDspDashboard:
    """Sign in, read the roll-out, open a CH, replay a dead letter."""

    def test_firmware_distribution_shows_the_database_counts(
        self, page: Page, dsp_base: str, loaded: LoadedDsp
    ) -> None:
        settle(loaded.engine, dead=3, retrying=4)
        sign_in(page, dsp_base)
        page.wait_for_selector("#firmware-distribution")
        with loaded.engine.connect() as conn:
            distribution = estate.firmware_distribution(conn)
        shown = {r[0]: number(r[1]) for r in rows(page, "firmware-distribution")}
        assert shown == {
            (v if v is not None else "not reported"): n for v, n in distribution.items()
        }
        assert page.get_by_role("img", name="Activation outcomes over time").count() == 1
        assert page.locator("header").get_by_text("Signed in as Ada").is_visible()
        screenshot(page, "dsp-dashboard.png")

    def test_figures_update_live(self, page: Page, dsp_base: str, loaded: LoadedDsp) -> None:
        sign_in(page, dsp_base)
        pending = page.locator('dd[data-live="outbox.pending"]')
        with loaded.engine.connect() as conn:
            before = outbox.counts(conn)["pending"]
        assert number(pending.inner_text()) == before > 0
        settle(loaded.engine, dead=0, retrying=0)  # the worker delivers everything meanwhile
        expect_text(pending, "0")  # the page's script polls live.json every 3 s
        expect_text(page.locator("#live-status"), re.compile(r"^Live: updated at \d\d:\d\d"))
        delivered = page.locator('a[data-live$=".dead"]')
        assert delivered.count() > 0

    def test_sign_in_link_from_the_terminal(self, page: Page, dsp_base: str) -> None:
        page.goto(DashboardAuth(TOKEN).login_url(dsp_base))
        page.wait_for_url(f"{dsp_base}/dashboard/")
        assert "token" not in page.url
        assert page.locator("h1").inner_text() == "Firmware roll-out"

    def test_a_hub_page_shows_its_history(
        self, page: Page, dsp_base: str, loaded: LoadedDsp
    ) -> None:
        with loaded.engine.begin() as conn:
            # A CH whose activation was future-dated: "accepted", then the outcome alert.
            device_hex = conn.execute(
                sa.select(firmware_history.c.device_id)
                .where(firmware_history.c.source == "alert", firmware_history.c.alerts_created > 0)
                .order_by(firmware_history.c.id)
                .limit(1)
            ).scalar_one()
            device = DeviceId.parse(device_hex)
            for alert in outbox.list_rows(conn, device_id=device_hex):  # one failed try first
                tried = alert.created_at + timedelta(seconds=1)
                mark_retry(
                    conn,
                    alert.id,
                    tried + timedelta(seconds=2),
                    "503 Service Unavailable",
                    attempted_at=tried,
                    status_code=503,
                    duration_ms=41.0,
                )
        settle(loaded.engine, dead=0, retrying=0)
        with loaded.engine.connect() as conn:
            history = inventory.history_for(conn, device)
            alerts = outbox.list_rows(conn, device_id=device.hex)
        assert [e.event.value for e in history] == ["accepted", "outcome"]
        sign_in(page, dsp_base)
        page.get_by_label("Find a Communications Hub").fill(device.hex.lower())
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(f"{dsp_base}/dashboard/hubs/{device}")
        assert page.locator("h1").inner_text() == f"Communications Hub {device}"
        shown = rows(page, "hub-history")
        assert [r[1] for r in shown] == [str(e.originator_counter) for e in history]
        assert [r[2] for r in shown] == ["accepted", "outcome"]
        assert [r[5] for r in shown] == [e.decision.value for e in history]
        assert {r[0] for r in rows(page, "hub-alerts")} == {a.response_id for a in alerts}
        outcomes = [r[2] for r in rows(page, "hub-attempts")]
        assert sorted(outcomes) == sorted(["retry", "delivered"] * len(alerts))
        screenshot(page, "dsp-hub.png")

    def test_replaying_a_dead_letter_moves_it_back_to_pending(
        self, page: Page, dsp_base: str, loaded: LoadedDsp
    ) -> None:
        settle(loaded.engine, dead=3, retrying=2)
        with loaded.engine.connect() as conn:
            dead = outbox.list_rows(conn, state="dead")
        chosen = dead[1]
        sign_in(page, dsp_base)
        page.get_by_role("link", name="Dead letters").click()
        page.wait_for_url(f"{dsp_base}/dashboard/dead-letters")
        assert len(rows(page, "dead-letters")) == 3
        screenshot(page, "dsp-dead-letters.png")
        page.get_by_label(f"Select alert {chosen.response_id}").check()
        page.get_by_role("button", name="Replay selected").click()
        notice = page.get_by_role("status").filter(has_text="put back to pending")
        notice.wait_for(timeout=WAIT_MS)
        assert notice.inner_text() == "1 alert(s) put back to pending."
        listed = [r[1] for r in rows(page, "dead-letters")]
        assert chosen.response_id not in listed
        assert len(listed) == 2
        assert rows(page, "replays")[0][1:] == ["dashboard:Ada", "1"]
        with loaded.engine.connect() as conn:
            found = outbox.get(conn, chosen.id)
        assert found is not None
        assert found.row.state == "pending"
        assert found.row.display_state == "retrying"  # it had been tried once

    def test_pausing_a_campaign(self, page: Page, dsp_base: str, loaded: LoadedDsp) -> None:
        running_campaign(loaded)
        sign_in(page, dsp_base)
        page.get_by_role("link", name="Campaigns").click()
        page.wait_for_url(f"{dsp_base}/dashboard/campaigns")
        shown = rows(page, "phases-fw-next")
        assert [r[:4] for r in shown] == [
            ["pilot", "open", "16", "16"],
            ["rest", "waiting", str(len(loaded.synthetic) - 16), "0"],
        ]
        screenshot(page, "dsp-campaigns.png")
        page.get_by_role("button", name="Pause fw-next").click()
        notice = page.get_by_role("status").filter(has_text="is paused")
        notice.wait_for(timeout=WAIT_MS)
        assert notice.inner_text() == "Campaign fw-next is paused."
        expect_text(page.get_by_role("alert"), "paused by dashboard:Ada")
        page.get_by_role("button", name="Resume fw-next").click()
        page.get_by_role("status").filter(has_text="is running").wait_for(timeout=WAIT_MS)


class TestSupplierDashboard:
    """The supplier sees its pilot's progress and what it received."""

    def test_pilot_progress(
        self, page: Page, supplier_base: str, fed_supplier: tuple[Engine, int]
    ) -> None:
        engine, cohort = fed_supplier
        with engine.connect() as conn:
            _, figures = pilots.pilot_progress(conn, PILOT)
        sign_in(page, supplier_base, name="Bo")
        page.wait_for_selector("#pilot-statuses")
        assert page.locator("h2", has_text=f"Pilot {PILOT}").count() == 1
        activated = page.locator('dd[data-live="pilot.activated"]').inner_text()
        assert number(activated) == figures.activated
        assert 0 < figures.activated <= cohort
        chart = page.get_by_role("img", name=f"Cumulative activations of pilot {PILOT}")
        assert chart.count() == 1
        assert len(rows(page, "rejections")) == 2
        page.get_by_label("HAN readiness: minimum firmware version (hex)").fill("02010400")
        page.get_by_role("button", name="Show").click()
        page.wait_for_selector("text=HAN readiness at 02010400 or above")
        assert page.locator('dd[data-live="ready.ready"]').first.inner_text() == "0"
        page.goto(f"{supplier_base}/dashboard/")
        page.wait_for_selector("#pilot-statuses")
        screenshot(page, "supplier-dashboard.png")


def _count(engine: Engine, query: sa.Select[tuple[int]]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


class TestSupplierCards:
    """The cards count what they say: an N999 counts as fetched only once its version is."""

    def test_n999_and_estate_counts(
        self, page: Page, supplier_base: str, fed_supplier: tuple[Engine, int]
    ) -> None:
        engine, _ = fed_supplier
        alerts, events = bo_alerts, bo_firmware_events
        n999 = sa.select(sa.func.count()).where(alerts.c.alert_code == "N999")
        fetched = sa.select(sa.func.count()).where(
            events.c.alert_code == "N999", events.c.firmware_version.is_not(None)
        )
        hubs = sa.select(sa.func.count()).select_from(bo_hubs)
        before = {q: _count(engine, q) for q in (n999, fetched, hubs)}
        waiting = [device(0xF00 + n) for n in range(4)]
        for n, hub in enumerate(waiting):
            record(engine, hub, None, datetime.now(UTC) + timedelta(seconds=n))  # newest
        with engine.begin() as conn:
            for hub in waiting[:2]:
                backoffice.record_fetched_version(
                    conn, hub, FirmwareVersion.parse("0A0B"), datetime.now(UTC)
                )
            silent = [device(0xF10 + n) for n in range(3)]
            supplier_estate.import_hubs(conn, [*silent, waiting[0]], {}, datetime.now(UTC))
        assert _count(engine, n999) == before[n999] + 4
        assert _count(engine, fetched) == before[fetched] + 2
        sign_in(page, supplier_base, name="Bo")
        page.wait_for_selector("#recent-alerts")

        def card(key: str) -> int:
            return number(page.locator(f'dd[data-live="{key}"]').first.inner_text())

        assert card("alerts.N999") == before[n999] + 4
        assert card("alerts.N999.fetched") == before[fetched] + 2  # not every N999
        assert card("hubs") == before[hubs] + 4
        assert card("estate") == 4
        # The 3 imported CHs never heard of are not known to be ready: unknown, with the 2
        # N999s still waiting for a version.
        with engine.connect() as conn:
            pending = sum(1 for hub in waiting if backoffice.hub_view(conn, hub).lookup_pending)
        assert pending == 2
        assert card("ready.unknown") >= 3 + pending
        shown = {row[4]: row for row in rows(page, "recent-alerts") if row[3] == "N999"}
        for hub in waiting[:2]:
            assert shown[str(hub)][5:7] == ["0A0B", "fetched (DSP inventory)"]
        for hub in waiting[2:]:
            assert shown[str(hub)][5:7] == ["—", "not fetched yet"]


class TestUitReport:
    """The kit's HTML report (a file a supplier attaches to its evidence), opened as a file."""

    def test_cases_shown_and_answers_inert(self, page: Page, tmp_path: Path) -> None:
        hostile = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
        at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
        results = (
            CaseResult("valid.n64", "valid", "A genuine N64", "2xx", "N64 x", "204", True, "it"),
            CaseResult(
                "signature.unsigned", "signature", "No signature", "4xx", "x", hostile, False
            ),
        )
        path = tmp_path / "report.html"
        write_html(Report("https://uit.example/a", "5.1", None, at, at, results), path)
        page.goto(path.as_uri())
        assert page.locator("h1").inner_text().endswith("FAILED")
        assert (
            page.locator("#summary").inner_text() == "1 passed, 1 failed, 1 with parts not checked"
        )
        assert rows(page, "cases") == [
            ["valid.n64", "A genuine N64", "N64 x", "2xx", "204", "pass not checked: it"],
            ["signature.unsigned", "No signature", "x", "4xx", hostile, "FAIL"],
        ]
        assert page.evaluate("window.pwned") is None
