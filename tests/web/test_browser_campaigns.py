"""The supplier dashboard's DCC campaigns page in a real browser (chromium via playwright),
against a served DSP: read the phases over our CHs, hold CHs through the form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from chfw.supplier.dsp_client import DspClient
from tests.dsp.campaign_helpers import device
from tests.web.test_browser import WAIT_MS, browser, engine, page, rows, screenshot, sign_in
from tests.web.test_supplier_campaigns import NAME, _dashboard, dsp, dsp_api, phases_at_dsp

if TYPE_CHECKING:
    from playwright.sync_api import Page

FIXTURES = (browser, engine, page, dsp, dsp_api)  # from their modules: SQLite, one chromium


@pytest.fixture
def supplier_base(dsp_api: httpx.Client, tmp_path: Path) -> Iterator[str]:
    token = dsp_api.headers["authorization"].removeprefix("Bearer ")
    client = DspClient(str(dsp_api.base_url), token, allow_http=True)
    try:
        for signed_in in _dashboard(tmp_path, client):
            yield str(signed_in.base_url).rstrip("/")
    finally:
        client.close()


def test_read_the_campaign_and_hold_hubs(
    page: Page, supplier_base: str, dsp_api: httpx.Client
) -> None:
    sign_in(page, supplier_base, name="Bo")
    page.get_by_role("link", name="DCC campaigns").click()
    page.wait_for_url(f"{supplier_base}/dashboard/campaigns")
    assert rows(page, f"phases-{NAME}") == phases_at_dsp(dsp_api)
    screenshot(page, "supplier-campaigns.png")
    ours = [str(device(n)) for n in (8, 10, 12)]
    page.get_by_label("Device IDs to hold (one per line)").fill("\n".join(ours))
    page.get_by_label("Reason").fill("tariff migration in March")
    page.get_by_role("button", name=f"Hold in {NAME}").click()
    notice = page.get_by_role("status").filter(has_text="out of")
    notice.wait_for(timeout=WAIT_MS)
    held = sum(int(r[7]) for r in phases_at_dsp(dsp_api))
    assert held > 0
    assert notice.inner_text().startswith(f"Held {held} CH(s) out of {NAME}")
    assert rows(page, f"phases-{NAME}") == phases_at_dsp(dsp_api)
