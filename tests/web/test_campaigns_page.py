"""The DSP dashboard's campaign pages: what they show agrees with the store; pause and resume
go through the CSRF-checked form and the audit log; a CH's page shows its campaigns."""

from __future__ import annotations

import httpx

from chfw.core.clock import utc_now
from chfw.core.domain import FirmwareVersion
from chfw.core.domain.campaign import Gates, PhaseSpec
from chfw.dsp.store import audit, campaign_work, campaigns
from tests.web.pages import document, table_rows
from tests.web.test_dsp import csrf_of
from tests.web.wave import LoadedDsp


def running_campaign(loaded: LoadedDsp) -> list[str]:
    """A running campaign over the wave's CHs with its pilot handed to a CSP."""
    hubs = [hub.device_id for hub in loaded.synthetic]
    with loaded.engine.begin() as conn:
        campaigns.create(
            conn,
            "fw-next",
            FirmwareVersion.parse("02010400"),
            hubs,
            [PhaseSpec.parse("pilot=16"), PhaseSpec.parse("rest=rest")],
            Gates(error_threshold=10, min_sample=5, success_threshold=90),
            actor="test",
            now=utc_now(),
        )
        campaigns.change_state(conn, "fw-next", "start", actor="test", now=utc_now())
        work = campaign_work.take_work(conn, "fw-next", "csp-a", None, 100, utc_now())
    return [str(d) for d in work.device_ids]


def test_the_campaign_page_shows_phases_and_pauses_with_csrf(
    dsp: httpx.Client, loaded: LoadedDsp
) -> None:
    pilot = running_campaign(loaded)
    listing = dsp.get("/dashboard/campaigns")
    assert listing.status_code == 200
    assert table_rows(listing.text, "phases-fw-next") == [
        ["pilot", "open", "16", "16", "0", "0", "0", "0"],
        ["rest", "waiting", str(len(loaded.synthetic) - 16), "0", "0", "0", "0", "0"],
    ]
    page = dsp.get("/dashboard/campaigns/fw-next")
    forged = dsp.post("/dashboard/campaigns/fw-next/pause", data={"csrf": "forged"})
    assert forged.status_code == 403
    with loaded.engine.connect() as conn:
        assert campaigns.get(conn, "fw-next").state.value == "running"
    paused = dsp.post("/dashboard/campaigns/fw-next/pause", data={"csrf": csrf_of(page.text)})
    assert paused.status_code == 303
    after = dsp.get(paused.headers["location"])
    assert "Campaign fw-next is paused." in after.text
    assert "paused by dashboard:Ada" in after.text
    overview = dsp.get("/dashboard/")
    assert "Campaign fw-next is paused: paused by dashboard:Ada." in " ".join(
        document(overview.text).xpath("string(//p[@role='alert'])").split()
    )
    resumed = dsp.post("/dashboard/campaigns/fw-next/resume", data={"csrf": csrf_of(after.text)})
    assert "is running" in dsp.get(resumed.headers["location"]).text
    with loaded.engine.connect() as conn:
        actions = [e.action for e in audit.list_recent(conn)[:2]]
    assert actions == ["campaign.resume", "campaign.pause"]
    hub = dsp.get(f"/dashboard/hubs/{pilot[0]}")
    (row,) = table_rows(hub.text, "hub-campaigns")
    assert row[:4] == ["fw-next", "running", "pilot", row[3]]
    assert row[4] == "csp-a"


def test_an_unknown_campaign_and_action(dsp: httpx.Client, loaded: LoadedDsp) -> None:
    assert dsp.get("/dashboard/campaigns/nope").status_code == 404
    running_campaign(loaded)
    page = dsp.get("/dashboard/campaigns/fw-next")
    bad = dsp.post("/dashboard/campaigns/fw-next/delete", data={"csrf": csrf_of(page.text)})
    assert bad.status_code == 403
    empty = dsp.get("/dashboard/campaigns")
    assert "fw-next" in empty.text
