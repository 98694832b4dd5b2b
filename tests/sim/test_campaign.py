"""The simulated CSP takes its work from a campaign's work list, over real HTTP, phase by
phase; a wave that fails too often stops after its pilot."""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from chfw.cli.simulate import app as simulate_app
from chfw.core.clock import utc_now
from chfw.core.domain import ActivationResult, DeviceId, UserId
from chfw.core.domain.campaign import Gates, PhaseSpec
from chfw.core.duis import bundled_schemas
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.intake import create_app
from chfw.dsp.processing import ActivationService
from chfw.dsp.store import campaigns
from chfw.shared.config import Settings
from chfw.sim import generate_estate, generate_wave
from chfw.sim.campaign import CampaignRun, run_campaign
from chfw.sim.wave import Wave, WaveMix
from tests.sim.live import serve
from tests.sim.test_against_intake import loaded  # noqa: F401 -- the fixture
from tests.small_dsp import Sequential


def _create(engine: Engine, wave: Wave) -> None:
    with engine.begin() as conn:
        campaigns.create(
            conn,
            "sim",
            wave.target_version,
            [hub.device_id for hub in wave.estate],
            [PhaseSpec.parse("pilot=10%"), PhaseSpec.parse("rest=rest")],
            Gates(error_threshold=25, min_sample=20, success_threshold=80),
            actor="test",
            now=utc_now(),
        )
        campaigns.change_state(conn, "sim", "start", actor="test", now=utc_now())


def _app(engine: Engine) -> FastAPI:
    builder = AlertBuilder(UserId.parse("90-B3-D5-1F-30-00-00-02"), None, bundled_schemas())
    return create_app(Settings(), ActivationService(engine, builder, Sequential()))


def _run(engine: Engine, credential: str, wave: Wave) -> tuple[CampaignRun, dict[str, Any]]:
    _create(engine, wave)
    app = _app(engine)

    def messages_for(devices: AbstractSet[DeviceId]) -> Iterable[bytes]:
        return wave.payloads(only=devices)

    with serve(app) as base:
        run = run_campaign(messages_for, [base], credential, "sim", work_limit=25, batch_size=50)
    with engine.connect() as conn:
        status = campaigns.status(conn, "sim", utc_now()).as_json()
    return run, status


def test_the_csp_works_through_the_campaign_phase_by_phase(loaded: tuple[Engine, str]) -> None:  # noqa: F811
    engine, credential = loaded
    wave = generate_wave(generate_estate(400, seed=61), seed=62)
    run, status = _run(engine, credential, wave)
    assert run.rounds == [40, 360]
    assert run.state == "completed"
    truth = wave.ground_truth
    assert dict(run.stats.statuses) == {k: v for k, v in truth.statuses.items() if v}
    assert status["state"] == "completed"
    phases = status["phases"]
    assert [p["dispatched"] for p in phases] == [40, 360]
    assert sum(p["succeeded"] + p["failed"] for p in phases) == 400
    failures = sum(1 for a in wave.activations() if a.result is not ActivationResult.SUCCESS)
    assert sum(p["failed"] for p in phases) == failures


def test_a_wave_that_fails_too_often_stops_after_its_pilot(loaded: tuple[Engine, str]) -> None:  # noqa: F811
    engine, credential = loaded
    mix = WaveMix(immediate_failure=0.6, future_dated=0.0)
    wave = generate_wave(generate_estate(400, seed=61), seed=62, mix=mix)
    run, status = _run(engine, credential, wave)
    assert run.rounds == [40]
    assert run.state == "paused"
    assert status["reason"].startswith("error threshold: ")
    assert status["phases"][1]["dispatched"] == 0


def test_chfw_simulate_wave_takes_its_work_from_a_campaign(loaded: tuple[Engine, str]) -> None:  # noqa: F811
    engine, credential = loaded
    wave = generate_wave(generate_estate(400, seed=61), seed=62)
    _create(engine, wave)
    with serve(_app(engine)) as base:
        args = ["wave", "--hubs", "400", "--seed", "61", "--wave-seed", "62", "--url", base]
        result = CliRunner().invoke(
            simulate_app,
            [*args, "--campaign", "sim", "--json", "--no-progress"],
            env={"CHFW_CSP_CREDENTIAL": credential},
        )
    assert result.exit_code == 0, result.output
    # The in-process intake's log lines share stdout: the report is the JSON object at its end.
    report = json.loads(result.output[result.output.index("\n{\n") :])
    truth = report["ground_truth"]
    assert report["posted"]["statuses"] == {k: v for k, v in truth["statuses"].items() if v}
    with engine.connect() as conn:
        assert campaigns.get(conn, "sim").state.value == "completed"
