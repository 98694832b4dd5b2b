"""Logs of a small end-to-end run with the dashboards in use.

Intake over HTTP, delivery by the worker to real receivers (one of which
refuses), dashboard sign-ins (wrong token, right token), a dead-letter
replay. Every structlog line is captured as JSON: each line about a CH must
name it (``device_id``, or the ResponseID(s) that contain it), outcome lines
carry their key (CH:counter:event) and the ResponseIDs written; no token,
credential, session cookie or key may appear anywhere.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.dsp.intake import create_app
from chfw.dsp.store import users
from chfw.dsp.store.users import ServiceUser
from chfw.shared.config import Settings
from chfw.shared.logs import configure_logging
from chfw.sim import generate_estate, generate_wave, post_wave
from chfw.sim.wave import InventoryStart
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.dsp.delivery.helpers import drain
from tests.sim.live import serve
from tests.small_dsp import KEY_PEM, TRUST
from tests.supplier.helpers import Dsp as OtherDsp
from tests.web.wave import build_service, load_estate

TOKEN = "log-test-dashboard-token-0123456789"
ALMOST = TOKEN[:-1] + "X"  # a mistyped token is nearly the token: not to be logged either
DEVICE = re.compile(r"\b[0-9A-F]{2}(?:-[0-9A-F]{2}){7}\b")


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """structlog at debug level, as JSON, onto the captured stderr; the standard library too."""
    configure_logging("debug", json=True)
    # Module loggers that cache their configuration would keep this one after the test
    # (and later tests' structlog.testing.capture_logs would see nothing).
    structlog.configure(cache_logger_on_first_use=False)
    caplog.set_level(logging.DEBUG)
    # httpcore's debug trace echoes response headers to the *test's* clients, Set-Cookie
    # included: the test's own traffic, not a service's log.
    caplog.set_level(logging.INFO, logger="httpcore")
    yield
    structlog.reset_defaults()


def run(engine: Engine, database_url: str) -> dict[str, Any]:
    """The whole run; returns the secrets it used and what it saw."""
    synthetic = generate_estate(80, seed=31)
    wave = generate_wave(synthetic, seed=32, inventory_start=InventoryStart.ESTATE)
    credential = load_estate(engine, synthetic)
    refusing = synthetic.suppliers[0]
    good_app = create_receiver_app(ReceiverConfig(trust=TRUST), engine, dashboard_token=TOKEN)
    bad_trust = OtherDsp.create("someone else").trust
    bad_app = create_receiver_app(ReceiverConfig(trust=bad_trust), engine, dashboard_token=TOKEN)
    seen: dict[str, Any] = {"credential": credential}
    with serve(good_app) as good, serve(bad_app) as bad:
        with engine.begin() as conn:
            for supplier in synthetic.suppliers:
                users.upsert_user(
                    conn,
                    ServiceUser(
                        user_id=supplier.user_id,
                        name=supplier.name,
                        roles=supplier.roles,
                        duis_version=supplier.duis_version,
                        endpoint_url=f"{bad if supplier is refusing else good}/",
                        allow_insecure_http=True,
                    ),
                )
        app = create_app(Settings(dashboard_token=TOKEN), build_service(engine))
        with serve(app) as base:
            seen["stats"] = post_wave(wave.payloads(), base, credential, batch_size=25)
            seen["delivery"] = drain(
                engine, Settings(database_url=database_url), lambda: datetime.now(UTC)
            )
            with httpx.Client(base_url=base, timeout=10) as client:
                refused = client.post("/dashboard/login", data={"token": ALMOST, "name": "Eve"})
                assert refused.status_code == 401
                signed = client.post("/dashboard/login", data={"token": TOKEN, "name": "Ada"})
                seen["cookie"] = signed.cookies["chfw_dsp_session"]
                page = client.get("/dashboard/dead-letters")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
                assert csrf is not None
                seen["csrf"] = csrf.group(1)
                replay = client.post(
                    "/dashboard/dead-letters/replay", data={"csrf": seen["csrf"], "action": "all"}
                )
                assert replay.status_code == 303
                bearer = {"authorization": f"Bearer {TOKEN}"}
                assert client.get("/dashboard/live.json", headers=bearer).status_code == 200
        with httpx.Client(base_url=good, timeout=10) as client:
            assert client.post("/dashboard/login", data={"token": TOKEN}).status_code == 303
            assert client.get("/dashboard/").status_code == 200
    seen["devices"] = {str(hub.device_id) for hub in synthetic}
    return seen


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


class TestLogs:
    """What the run logged names each CH it concerns and holds no secret."""

    def test_end_to_end(
        self,
        engine: Engine,
        database_url: str,
        logged: None,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        seen = run(engine, database_url)
        captured = capsys.readouterr()
        lines = json_lines(captured.err)
        events = {line["event"] for line in lines}
        assert {"cs06_outcome", "alert_rejected", "alert_received", "dashboard_sign_in"} <= events
        assert {"dashboard_sign_in_refused", "dead_letters_replayed"} <= events
        assert seen["delivery"].rejected > 0

        # Every line that mentions a CH names it in a field made for it.
        for line in lines:
            text = json.dumps(line)
            mentioned = set(DEVICE.findall(text)) & seen["devices"]
            if not mentioned:
                continue
            ids = " ".join(
                [str(line.get("device_id") or ""), str(line.get("key") or "")]
                + [str(line.get("response_id") or "")]
                + [str(r) for r in line.get("response_ids") or []]
            )
            assert all(device in ids for device in mentioned), line
            if line.get("device_id"):
                DeviceId.parse(line["device_id"])

        outcomes = [line for line in lines if line["event"] == "cs06_outcome"]
        assert len(outcomes) == seen["stats"].messages
        for line in outcomes:
            assert line["device_id"] in seen["devices"]
            device, counter, event = line["key"].split(":")
            assert device == line["device_id"]
            assert counter.isdigit()
            assert event in ("accepted", "outcome")
            if line["status"] == "processed" and line["alerts"]:
                assert len(line["response_ids"]) == sum(line["alerts"].values())
                assert all(line["device_id"] in r for r in line["response_ids"])
        for line in lines:
            if line["event"] == "alert_rejected" and "user_id" in line:  # the worker's
                assert line["device_id"] in line["response_id"]
        (replayed,) = [line for line in lines if line["event"] == "dead_letters_replayed"]
        assert replayed["actor"] == "dashboard:Ada"
        assert replayed["replayed"] == seen["delivery"].rejected

        everything = captured.err + captured.out + "\n".join(r.getMessage() for r in caplog.records)
        key_lines = [
            line for line in KEY_PEM.decode().splitlines() if line and not line.startswith("-----")
        ]
        secrets = [TOKEN, ALMOST, seen["cookie"], seen["csrf"], seen["credential"], *key_lines]
        secrets += [part for part in seen["credential"].split("_") if len(part) >= 20]
        for secret in secrets:
            assert secret not in everything, "a secret reached the logs"
