"""The campaign store: assignment kept, work handed out once, outcomes counted, holds, gates."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, FirmwareVersion
from chfw.core.domain.campaign import CampaignState, Gates, PhaseSpec
from chfw.dsp.store import campaign_work, campaigns
from chfw.exceptions import HubNotSuppliedError, StoreError, UnknownCampaignError
from tests.dsp.campaign_helpers import (
    ALICE,
    BOB,
    NOW,
    TARGET,
    device,
    number,
    seed_estate,
    supplier_of,
)

TARGET_V = FirmwareVersion.parse(TARGET)
OTHER_V = FirmwareVersion.parse("02010200")
PHASES = [PhaseSpec.parse("pilot=10"), PhaseSpec.parse("rest=rest")]
GATES = Gates(error_threshold=10, min_sample=5, success_threshold=80)


@pytest.fixture
def campaign(engine: Engine) -> str:
    with engine.begin() as conn:
        seed_estate(conn, 40)
        campaigns.create(
            conn,
            "c1",
            TARGET_V,
            [device(n) for n in range(1, 41)],
            PHASES,
            GATES,
            actor="test",
            now=NOW,
        )
    return "c1"


def _work(engine: Engine, limit: int = 100, regions: list[str] | None = None) -> campaign_work.Work:
    with engine.begin() as conn:
        return campaign_work.take_work(conn, "c1", "csp-a", regions, limit, NOW)


def _outcomes(
    engine: Engine, outcomes: list[tuple[int, ActivationResult]]
) -> list[campaign_work.AutoPause]:
    rows = [
        (device(n), result, TARGET_V if result is ActivationResult.SUCCESS else OTHER_V)
        for n, result in outcomes
    ]
    with engine.begin() as conn:
        return campaign_work.count_outcomes(conn, rows, NOW)


def _start(engine: Engine, name: str = "c1") -> None:
    with engine.begin() as conn:
        campaigns.change_state(conn, name, "start", actor="op", now=NOW)


def test_a_draft_hands_out_nothing_and_a_running_one_its_pilot_once(
    engine: Engine, campaign: str
) -> None:
    assert _work(engine).device_ids == ()
    _start(engine)
    first = _work(engine, limit=6)
    second = _work(engine, limit=100)
    assert (len(first.device_ids), len(second.device_ids)) == (6, 4)  # the pilot's 10, once
    assert not set(first.device_ids) & set(second.device_ids)
    assert _work(engine).device_ids == ()  # the next phase waits for the pilot's successes
    with engine.connect() as conn:
        status = campaigns.status(conn, "c1", NOW).as_json()
    assert status["state"] == "running"
    assert [p["dispatched"] for p in status["phases"]] == [10, 0]
    assert [p["state"] for p in status["phases"]] == ["open", "waiting"]


def test_successes_open_the_next_phase_and_completion(engine: Engine, campaign: str) -> None:
    _start(engine)
    pilot = [number(d) for d in _work(engine).device_ids]
    assert _outcomes(engine, [(n, ActivationResult.SUCCESS) for n in pilot[:8]]) == []
    rest = _work(engine).device_ids  # 8 of 10 = 80 %: the next phase is open
    assert len(rest) == 30
    ns = [number(d) for d in rest]
    _outcomes(engine, [(n, ActivationResult.SUCCESS) for n in ns])
    with engine.connect() as conn:
        status = campaigns.status(conn, "c1", NOW).as_json()
    assert status["state"] == "completed"
    assert [p["succeeded"] for p in status["phases"]] == [8, 30]


def test_the_error_threshold_pauses_after_the_minimum_sample(engine: Engine, campaign: str) -> None:
    _start(engine)
    pilot = [number(d) for d in _work(engine).device_ids]
    failures = [(n, ActivationResult.HASH_MISMATCH) for n in pilot[:2]]
    assert _outcomes(engine, failures) == []  # 2 outcomes < min sample 5
    paused = _outcomes(engine, [(n, ActivationResult.SUCCESS) for n in pilot[2:5]])
    assert [p.reason for p in paused] == [
        "error threshold: 2 of 5 failed (40 %) > 10 % in phase pilot"
    ]
    assert _work(engine).state is CampaignState.PAUSED
    assert _work(engine).device_ids == ()
    with engine.begin() as conn:
        assert campaigns.get(conn, "c1").auto_pauses == 1
        again = campaigns.change_state(conn, "c1", "resume", actor="op", now=NOW)
    assert again.state is CampaignState.RUNNING  # resumed by hand: goes on ...
    assert _work(engine).state is CampaignState.RUNNING
    paused = _outcomes(engine, [(pilot[5], ActivationResult.SUCCESS)])
    assert [p.reason for p in paused] == [  # ... until outcomes come in over the threshold
        "error threshold: 2 of 6 failed (33.3 %) > 10 % in phase pilot"
    ]
    with engine.begin() as conn:
        assert campaigns.get(conn, "c1").auto_pauses == 2
        resumed = campaigns.change_state(
            conn, "c1", "resume", actor="op", now=NOW, error_threshold=50
        )
    assert resumed.state is CampaignState.RUNNING
    assert _outcomes(engine, [(pilot[6], ActivationResult.HASH_MISMATCH)]) == []


def test_an_outcome_counts_once_and_only_after_dispatch(engine: Engine, campaign: str) -> None:
    _start(engine)
    pilot = [number(d) for d in _work(engine).device_ids]
    outside = next(n for n in range(1, 41) if n not in pilot)
    _outcomes(engine, [(outside, ActivationResult.SUCCESS)])  # not dispatched: not counted
    _outcomes(engine, [(pilot[0], ActivationResult.ACCEPTED)])  # future-dated: not yet
    _outcomes(
        engine, [(pilot[0], ActivationResult.SUCCESS), (pilot[0], ActivationResult.HASH_MISMATCH)]
    )
    _outcomes(engine, [(pilot[0], ActivationResult.HASH_MISMATCH)])
    with engine.connect() as conn:
        phases = campaigns.status(conn, "c1", NOW).as_json()["phases"]
    assert (phases[0]["succeeded"], phases[0]["failed"], phases[1]["succeeded"]) == (1, 0, 0)


def test_unconfirmed_after_the_configured_time(engine: Engine, campaign: str) -> None:
    _start(engine)
    _work(engine, limit=3)
    with engine.connect() as conn:
        soon = campaigns.status(conn, "c1", NOW + timedelta(hours=1)).as_json()
        later = campaigns.status(conn, "c1", NOW + timedelta(days=2)).as_json()
    assert soon["phases"][0]["unconfirmed"] == 0
    assert later["phases"][0]["unconfirmed"] == 3


def test_holds_leave_every_later_phase_and_refuse_others_hubs(
    engine: Engine, campaign: str
) -> None:
    alices = [device(n) for n in range(2, 41, 2)]
    with engine.begin() as conn, pytest.raises(HubNotSuppliedError):
        campaign_work.hold(conn, "c1", ALICE, [alices[0], device(1)], "no", NOW)
    with engine.connect() as conn:
        assert sum(p.held for p in campaigns.get(conn, "c1").phases) == 0  # nothing held
    _start(engine)
    dispatched = set(_work(engine, limit=3).device_ids)
    with engine.begin() as conn:
        holds = campaign_work.hold(conn, "c1", ALICE, alices, "tariff migration", NOW)
    assert set(holds.held) == set(alices) - dispatched
    assert {d for d, why in holds.not_held if why == "already dispatched"} == set(
        alices
    ) & dispatched
    handed = set(_work(engine).device_ids) | dispatched  # the pilot's hubs not held
    _outcomes(engine, [(number(d), ActivationResult.SUCCESS) for d in handed])
    handed |= set(_work(engine).device_ids)  # every later phase
    assert len(handed) == 40 - len(holds.held)
    assert not handed & set(holds.held)
    with engine.connect() as conn:
        status = campaigns.status(conn, "c1", NOW, ALICE).as_json()
        bobs = campaigns.status(conn, "c1", NOW, BOB).as_json()
    assert sum(p["held"] for p in status["phases"]) == len(holds.held)
    assert sum(p["size"] + p["held"] for p in status["phases"]) == 20
    assert sum(p["size"] for p in bobs["phases"]) == 20
    assert sum(p["held"] for p in bobs["phases"]) == 0


def test_work_only_from_the_csps_regions(engine: Engine, campaign: str) -> None:
    _start(engine)
    work = _work(engine, regions=["north"])
    assert work.device_ids
    assert all((number(d)) % 3 == 0 for d in work.device_ids)


def test_refusals(engine: Engine, campaign: str) -> None:
    with engine.begin() as conn:
        with pytest.raises(UnknownCampaignError):
            campaigns.get(conn, "nope")
        with pytest.raises(StoreError, match="already exists"):
            campaigns.create(
                conn,
                "c1",
                TARGET_V,
                [device(1)],
                [PhaseSpec.parse("a=rest")],
                GATES,
                actor="t",
                now=NOW,
            )
        with pytest.raises(StoreError, match="not in the estate"):
            campaigns.create(
                conn,
                "c2",
                TARGET_V,
                [device(999)],
                [PhaseSpec.parse("a=rest")],
                GATES,
                actor="t",
                now=NOW,
            )
        with pytest.raises(StoreError, match="cannot pause"):
            campaigns.change_state(conn, "c1", "pause", actor="op", now=NOW)
        with pytest.raises(StoreError, match="limit"):
            campaign_work.take_work(conn, "c1", "csp", None, 0, NOW)


def test_list_for_a_user(engine: Engine, campaign: str) -> None:
    with engine.begin() as conn:
        campaigns.create(
            conn,
            "bob-only",
            TARGET_V,
            [device(1), device(3)],
            [PhaseSpec.parse("a=rest")],
            GATES,
            actor="t",
            now=NOW,
        )
        assert [c.name for c in campaigns.list_campaigns(conn, ALICE)] == ["c1"]
        assert {c.name for c in campaigns.list_campaigns(conn, BOB)} == {"c1", "bob-only"}
        assert supplier_of(1) == BOB


def test_concurrent_work_lists_never_hand_out_a_hub_twice(engine: Engine, campaign: str) -> None:
    _start(engine)
    handed: list[list[str]] = [[] for _ in range(4)]

    def take(slot: int) -> None:
        while True:
            work = _work(engine, limit=2)
            if not work.device_ids:
                return
            handed[slot].extend(str(d) for d in work.device_ids)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [d for slot in handed for d in slot]
    assert len(every) == len(set(every)) == 10  # the pilot, each hub once
    with engine.connect() as conn:
        assert campaigns.get(conn, "c1").phases[0].dispatched == 10
