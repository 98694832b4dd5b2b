"""The supplier dashboard's DCC campaigns page against a real served DSP: it shows what the
DSP answers for this supplier's CHs, and its CSRF-checked form places holds at the DSP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.core.domain.campaign import Gates, PhaseSpec
from chfw.dsp.intake import create_app
from chfw.dsp.store import campaign_work, campaigns, inventory_access
from chfw.shared.config import Settings
from chfw.shared.db.engine import create_engine_for
from chfw.supplier.app import create_receiver_app
from chfw.supplier.dsp_client import DspClient
from chfw.supplier.migrate import upgrade
from chfw.supplier.pipeline import ReceiverConfig
from tests.dsp.campaign_helpers import ALICE, device, seed_estate
from tests.sim.live import serve
from tests.small_dsp import TRUST, Dsp, build_dsp
from tests.web.conftest import TOKEN
from tests.web.pages import table_rows
from tests.web.test_dsp import csrf_of

NAME = "fw-2.1.4"


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    """A DSP with hubs 1-12 (even ones Alice's) in a running campaign, pilot handed out."""
    inventory_access.clear_cache()
    built = build_dsp(engine)
    with engine.begin() as conn:
        hubs = seed_estate(conn, 12)
        campaigns.create(
            conn,
            NAME,
            FirmwareVersion.parse("02010400"),
            hubs,
            [PhaseSpec.parse("pilot=4"), PhaseSpec.parse("rest=rest")],
            Gates(error_threshold=10, min_sample=5, success_threshold=90),
            actor="test",
            now=utc_now(),
        )
        campaigns.change_state(conn, NAME, "start", actor="test", now=utc_now())
        campaign_work.take_work(conn, NAME, "north-csp", None, 100, utc_now())
    yield built
    inventory_access.clear_cache()


@pytest.fixture
def dsp_api(dsp: Dsp) -> Iterator[httpx.Client]:
    """The DSP's intake served, with Alice's token: what the page must agree with."""
    with dsp.engine.begin() as conn:
        token = inventory_access.issue_token(conn, ALICE)
    headers = {"authorization": f"Bearer {token}"}
    with (
        serve(create_app(Settings(), dsp.service)) as base,
        httpx.Client(base_url=base, headers=headers) as c,
    ):
        yield c


def _dashboard(tmp_path: Path, dsp: DspClient | None) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path / 'backoffice.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    app = create_receiver_app(ReceiverConfig(trust=TRUST), engine, dashboard_token=TOKEN, dsp=dsp)
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            assert client.post("/dashboard/login", data={"token": TOKEN}).status_code == 303
            yield client
    finally:
        engine.dispose()


@pytest.fixture
def supplier(dsp_api: httpx.Client, tmp_path: Path) -> Iterator[httpx.Client]:
    token = dsp_api.headers["authorization"].removeprefix("Bearer ")
    client = DspClient(str(dsp_api.base_url), token, allow_http=True)
    try:
        yield from _dashboard(tmp_path, client)
    finally:
        client.close()


def phases_at_dsp(dsp_api: httpx.Client) -> list[list[str]]:
    status: dict[str, Any] = dsp_api.get(f"/su/v1/campaigns/{NAME}").json()
    return [
        [p["label"], p["state"]]
        + [
            f"{p[k]:,}"
            for k in ("size", "dispatched", "succeeded", "failed", "unconfirmed", "held")
        ]
        for p in status["phases"]
    ]


def test_the_page_shows_the_dsps_counts_over_our_hubs(
    supplier: httpx.Client, dsp_api: httpx.Client
) -> None:
    page = supplier.get("/dashboard/campaigns")
    assert page.status_code == 200
    rows = table_rows(page.text, f"phases-{NAME}")
    assert rows == phases_at_dsp(dsp_api)
    assert sum(int(r[2]) for r in rows) == 6  # Alice's six hubs, not all twelve
    assert 'href="/dashboard/campaigns"' in page.text  # in the navigation


def test_a_hold_from_the_page_reaches_the_dsp(
    supplier: httpx.Client, dsp_api: httpx.Client
) -> None:
    ours = [device(n) for n in range(2, 13, 2)]
    page = supplier.get("/dashboard/campaigns")
    answer = supplier.post(
        f"/dashboard/campaigns/{NAME}/holds",
        data={
            "csrf": csrf_of(page.text),
            "device_ids": "\n".join(str(d) for d in ours),
            "reason": "tariff migration",
        },
    )
    assert answer.status_code == 303
    after = supplier.get(answer.headers["location"])
    held = sum(int(r[7]) for r in phases_at_dsp(dsp_api))
    assert held > 0
    assert f"Held {held} CH(s) out of {NAME}" in after.text
    not_held = len(ours) - held
    assert after.text.count("already dispatched") == not_held
    assert table_rows(after.text, f"phases-{NAME}") == phases_at_dsp(dsp_api)


def test_forged_form_holds_nothing(supplier: httpx.Client, dsp_api: httpx.Client) -> None:
    before = phases_at_dsp(dsp_api)
    answer = supplier.post(
        f"/dashboard/campaigns/{NAME}/holds",
        data={"csrf": "forged", "device_ids": str(device(12)), "reason": "x"},
    )
    assert answer.status_code == 403
    assert phases_at_dsp(dsp_api) == before


def test_someone_elses_hub_is_refused_by_the_dsp(
    supplier: httpx.Client, dsp_api: httpx.Client
) -> None:
    before = phases_at_dsp(dsp_api)
    page = supplier.get("/dashboard/campaigns")
    answer = supplier.post(
        f"/dashboard/campaigns/{NAME}/holds",
        data={
            "csrf": csrf_of(page.text),
            "device_ids": f"{device(12)}, {device(11)}",  # 11 is Bob's
            "reason": "mine and not mine",
        },
    )
    after = supplier.get(answer.headers["location"])
    assert "Nothing held: the DSP answered 404" in after.text
    assert phases_at_dsp(dsp_api) == before


def test_without_a_dsp_the_page_says_so(tmp_path: Path) -> None:
    for client in _dashboard(tmp_path, None):
        page = client.get("/dashboard/campaigns")
        assert page.status_code == 200
        assert "No DSP is configured" in page.text


def test_an_unreachable_dsp_is_said_plainly(tmp_path: Path) -> None:
    gone = DspClient("http://127.0.0.1:9", "chfw_su_x", allow_http=True, timeout=2)
    try:
        for client in _dashboard(tmp_path, gone):
            page = client.get("/dashboard/campaigns")
            assert page.status_code == 200
            assert "GET http://127.0.0.1:9/su/v1/campaigns" in page.text
    finally:
        gone.close()


def test_device_ids_are_split_on_any_separator() -> None:
    from chfw.supplier.dcc_campaigns import device_list

    ids = device_list(" 00-1D-A1-00-00-00-00-01,00-1D-A1-00-00-00-00-02;\n\n 001DA10000000003 ")
    assert [str(DeviceId.parse(i)) for i in ids] == [
        "00-1D-A1-00-00-00-00-01",
        "00-1D-A1-00-00-00-00-02",
        "00-1D-A1-00-00-00-00-03",
    ]
