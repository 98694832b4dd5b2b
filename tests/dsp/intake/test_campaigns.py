"""Campaigns through the real HTTP APIs: the CSP's work list, outcomes through the intake,
suppliers' status and holds (issue 22)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.core.domain.campaign import Gates, PhaseSpec
from chfw.core.gbcs import encode_response
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.intake import create_app
from chfw.dsp.store import campaigns, csps, inventory_access
from chfw.shared.config import Settings
from tests.dsp.campaign_helpers import ALICE, BOB, NOW, device, number, seed_estate, supplier_of
from tests.sim.live import serve
from tests.small_dsp import Dsp, build_dsp

TARGET = FirmwareVersion.parse("02010300")
OLD = FirmwareVersion.parse("02010200")
SENDER = Eui64.parse("90-B3-D5-1F-30-00-00-02")
HUBS = 40


@dataclass
class Api:
    """The served DSP, a CSP client and each supplier's client."""

    dsp: Dsp
    csp: httpx.Client
    su: dict[str, httpx.Client]

    def work(self, name: str = "c1", limit: int = 100) -> dict[str, object]:
        answer = self.csp.get(f"/csp/v1/campaigns/{name}/work", params={"limit": limit})
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    def report(self, outcomes: list[tuple[str, ActivationResult]], counter: int = 1) -> list[str]:
        """Post one CS06 response per hub (success at the target, or the failure given)."""
        messages = [
            encode_response(
                device_id=DeviceId.parse(d),
                recipient=SENDER,
                counter=counter,
                result=result,
                firmware_version=TARGET if result is ActivationResult.SUCCESS else OLD,
            ).hex()
            for d, result in outcomes
        ]
        answer = self.csp.post("/csp/v1/messages/batch", json={"messages": messages})
        assert answer.status_code == 200, answer.text
        return [r["status"] for r in answer.json()["results"]]


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    csps.clear_cache()
    inventory_access.clear_cache()
    dsp = build_dsp(engine)
    with engine.begin() as conn:
        seed_estate(conn, HUBS)
        tokens = {u.hex: inventory_access.issue_token(conn, u) for u in (ALICE, BOB)}
        campaigns.create(
            conn,
            "c1",
            TARGET,
            [device(n) for n in range(1, HUBS + 1)],
            [PhaseSpec.parse("pilot=10"), PhaseSpec.parse("rest=rest")],
            Gates(error_threshold=10, min_sample=5, success_threshold=80),
            actor="test",
            now=NOW,
        )
    with serve(create_app(Settings(), dsp.service)) as base:
        auth = {"authorization": f"Bearer {dsp.credential}"}
        with httpx.Client(base_url=base, headers=auth, timeout=10) as csp:
            clients = {
                user: httpx.Client(
                    base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=10
                )
                for user, token in tokens.items()
            }
            yield Api(dsp, csp, clients)
            for client in clients.values():
                client.close()
    csps.clear_cache()
    inventory_access.clear_cache()


def _start(api: Api, name: str = "c1") -> None:
    with api.dsp.engine.begin() as conn:
        campaigns.change_state(conn, name, "start", actor="op", now=NOW)


def test_a_pilot_over_the_error_threshold_pauses_itself_and_the_work_list_empties(
    api: Api,
) -> None:
    assert api.work() == {"state": "draft", "device_ids": []}
    _start(api)
    pilot = api.work(limit=100)["device_ids"]
    assert isinstance(pilot, list)
    assert len(pilot) == 10
    failed = ActivationResult.HASH_MISMATCH
    outcomes = [(pilot[0], failed), (pilot[1], failed), (pilot[2], failed)]
    outcomes += [(d, ActivationResult.SUCCESS) for d in pilot[3:5]]
    assert api.report(outcomes) == ["processed"] * 5
    assert api.work() == {"state": "paused", "device_ids": []}
    status = api.su[ALICE.hex].get("/su/v1/campaigns/c1").json()
    assert status["state"] == "paused"
    assert status["reason"] == "error threshold: 3 of 5 failed (60 %) > 10 % in phase pilot"
    metrics = api.csp.get("/metrics").text
    assert 'chfw_campaign_auto_pauses_total{campaign="c1"} 1.0' in metrics
    assert 'chfw_campaigns{state="paused"} 1.0' in metrics
    # More outcomes still count, but only a person resumes it.
    api.report([(d, ActivationResult.SUCCESS) for d in pilot[5:]], counter=2)
    assert api.work()["state"] == "paused"
    with api.dsp.engine.begin() as conn:
        campaigns.change_state(conn, "c1", "resume", actor="op", now=NOW, error_threshold=50)
    # Running again, but 7 of 10 succeeded is under the success threshold: rest waits.
    assert api.work() == {"state": "running", "device_ids": []}
    status = api.su[ALICE.hex].get("/su/v1/campaigns/c1").json()
    assert status["reason"] == "phase pilot open: 70 % succeeded, 80 % needed before rest opens"
    assert [p["state"] for p in status["phases"]] == ["open", "waiting"]


def test_a_hold_removes_hubs_from_later_phases(api: Api) -> None:
    alice = api.su[ALICE.hex]
    alices = [str(device(n)) for n in range(2, HUBS + 1, 2)]
    refused = alice.post(
        "/su/v1/campaigns/c1/holds", json={"device_ids": [alices[0], str(device(1))], "reason": "x"}
    )
    assert refused.status_code == 404
    assert sum(p["held"] for p in alice.get("/su/v1/campaigns/c1").json()["phases"]) == 0
    _start(api)
    first = api.work(limit=2)["device_ids"]
    answer = alice.post(
        "/su/v1/campaigns/c1/holds", json={"device_ids": alices, "reason": "tariff migration"}
    )
    assert answer.status_code == 200, answer.text
    held = set(answer.json()["held"])
    assert held == set(alices) - set(first)
    assert {h["device_id"] for h in answer.json()["not_held"]} == set(alices) & set(first)
    pilot = first + api.work()["device_ids"]
    api.report([(d, ActivationResult.SUCCESS) for d in pilot])
    rest = api.work()["device_ids"]
    assert rest  # the pilot passed: the next phase opened
    assert not (set(pilot) | set(rest)) & held
    assert len(pilot) + len(rest) == HUBS - len(held)
    bobs = [d for d in rest if d not in alices]
    again = api.su[BOB.hex].post(
        "/su/v1/campaigns/c1/holds", json={"device_ids": bobs, "reason": "x"}
    )
    assert again.json()["held"] == []
    assert {h["reason"] for h in again.json()["not_held"]} == {"already dispatched"}


def test_a_supplier_sees_only_its_own_hubs_counts(api: Api) -> None:
    _start(api)
    pilot = api.work()["device_ids"]
    api.report([(d, ActivationResult.SUCCESS) for d in pilot])
    for user in (ALICE, BOB):
        status = api.su[user.hex].get("/su/v1/campaigns/c1").json()
        mine = [d for d in pilot if supplier_of(number(DeviceId.parse(d))) == user]
        assert sum(p["size"] for p in status["phases"]) == HUBS // 2
        assert status["phases"][0]["succeeded"] == len(mine)
        assert status["phases"][0]["dispatched"] == len(mine)
        listed = api.su[user.hex].get("/su/v1/campaigns").json()["campaigns"]
        assert [c["name"] for c in listed] == ["c1"]
        assert listed[0]["phases"] == status["phases"]
    with api.dsp.engine.begin() as conn:
        bobs = [device(n) for n in range(1, 6, 2)]
        campaigns.create(
            conn,
            "bob-only",
            TARGET,
            bobs,
            [PhaseSpec.parse("all=rest")],
            Gates(),
            actor="t",
            now=NOW,
        )
    assert api.su[ALICE.hex].get("/su/v1/campaigns/bob-only").status_code == 404
    assert api.su[BOB.hex].get("/su/v1/campaigns/bob-only").status_code == 200
    names = [c["name"] for c in api.su[ALICE.hex].get("/su/v1/campaigns").json()["campaigns"]]
    assert names == ["c1"]
    assert api.su[ALICE.hex].get("/su/v1/campaigns/nope").status_code == 404
    no_token = httpx.get(f"{api.csp.base_url}/su/v1/campaigns")
    assert no_token.status_code == 401


def test_a_csp_works_and_reports_only_in_its_regions(api: Api) -> None:
    with api.dsp.engine.begin() as conn:
        csps.set_regions(conn, "north-csp", [CspRegion.NORTH])
    _start(api)
    handed = []
    while batch := api.work(limit=3)["device_ids"]:
        handed += batch
    assert handed
    assert all(number(DeviceId.parse(d)) % 3 == 0 for d in handed)  # north: n % 3 == 0
    central = str(device(1))
    statuses = api.report(
        [(central, ActivationResult.SUCCESS), (handed[0], ActivationResult.SUCCESS)]
    )
    assert statuses == ["refused", "processed"]
    single = api.csp.post(
        "/csp/v1/messages",
        content=encode_response(
            device_id=device(1),  # central
            recipient=SENDER,
            counter=9,
            result=ActivationResult.SUCCESS,
            firmware_version=TARGET,
        ),
        headers={"content-type": "application/octet-stream"},
    )
    assert single.status_code == 403
    assert "does not serve" in single.json()["error"]


def test_unknown_campaign_and_bad_limits(api: Api) -> None:
    assert api.csp.get("/csp/v1/campaigns/nope/work").status_code == 404
    assert api.csp.get("/csp/v1/campaigns/c1/work", params={"limit": 0}).status_code == 422
    assert api.csp.get("/csp/v1/campaigns/c1/work", params={"limit": 10**6}).status_code == 422
    anonymous = httpx.get(f"{api.csp.base_url}/csp/v1/campaigns/c1/work")
    assert anonymous.status_code == 401


def test_hostile_hold_requests_hold_nothing(api: Api) -> None:
    alice = api.su[ALICE.hex]
    mine = str(device(2))
    cases = [
        ({"device_ids": ["not-a-device"], "reason": "x"}, 400),
        ({"device_ids": [mine], "reason": ""}, 422),
        ({"device_ids": [mine], "reason": "x" * 501}, 422),
        ({"device_ids": [], "reason": "x"}, 422),
        ({"device_ids": [mine] * 10_001, "reason": "x"}, 422),
        ({"device_ids": mine, "reason": "x"}, 422),
        ({"reason": "x"}, 422),
    ]
    for body, status in cases:
        assert alice.post("/su/v1/campaigns/c1/holds", json=body).status_code == status, body
    assert alice.post("/su/v1/campaigns/c1/holds", content=b"{").status_code == 422
    assert (
        alice.post(
            "/su/v1/campaigns/nope/holds", json={"device_ids": [mine], "reason": "x"}
        ).status_code
        == 404
    )
    wrong = httpx.post(
        f"{api.csp.base_url}/su/v1/campaigns/c1/holds",
        json={"device_ids": [mine], "reason": "x"},
        headers={"authorization": "Bearer chfw_su_0000000000000000_" + "a" * 30},
    )
    assert wrong.status_code == 401
    with api.dsp.engine.connect() as conn:
        assert sum(p.held for p in campaigns.get(conn, "c1").phases) == 0
    # The same hold twice: held once, then "already held".
    first = alice.post("/su/v1/campaigns/c1/holds", json={"device_ids": [mine], "reason": "x"})
    again = alice.post("/su/v1/campaigns/c1/holds", json={"device_ids": [mine], "reason": "x"})
    assert first.json()["held"] == [mine]
    assert again.json()["not_held"] == [{"device_id": mine, "reason": "already held"}]
    with api.dsp.engine.connect() as conn:
        assert sum(p.held for p in campaigns.get(conn, "c1").phases) == 1
