"""`chfw receiver ready` (HAN readiness) and `chfw receiver lookups` (N999 follow-up)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy.engine import Engine

from chfw.cli import app as chfw
from chfw.supplier import lookup
from chfw.supplier.schema import bo_hubs
from tests.cli.dbcli import CliDb, cli_db
from tests.sim.live import serve
from tests.supplier.helpers import free_port
from tests.supplier.recorded import START, device, hub_state, record


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


class TestReady:
    """Lists, counts and CSV of the CHs at or above --min-version."""

    @pytest.fixture(autouse=True)
    def estate(self, engine: Engine) -> None:
        for n, version in ((1, "0102"), (2, "00000103"), (3, "FF"), (4, None), (5, "0200")):
            record(engine, device(n), version, START + timedelta(minutes=n))

    def test_list(self, cli: CliDb) -> None:
        result = cli.invoke(chfw, "receiver", "ready", "--min-version", "0102")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            f"{device(1)} 0102",
            f"{device(2)} 00000103",
            f"{device(5)} 0200",
        ]
        assert "3 CHs at or above 0102 (1 below, 1 with a version not known yet)" in result.stderr

    def test_count(self, cli: CliDb) -> None:
        result = cli.invoke(chfw, "receiver", "ready", "--min-version", "0103", "--count")
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == (
            "2 CHs at or above 0103 (2 below, 1 with a version not known yet)"
        )
        data = json.loads(
            cli.invoke(
                chfw, "receiver", "ready", "--min-version", "0103", "--count", "--json"
            ).stdout
        )
        assert data["ready_versions"] == {"00000103": 1, "0200": 1}

    def test_csv_file(self, cli: CliDb, tmp_path: Path) -> None:
        out = tmp_path / "ready.csv"
        result = cli.invoke(chfw, "receiver", "ready", "--min-version", "0200", "--csv", str(out))
        assert result.exit_code == 0, result.output
        assert f"written to {out}" in result.stderr
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert rows == [
            ["device_id", "active_firmware_version", "changed_at"],
            [str(device(5)), "0200", (START + timedelta(minutes=5)).isoformat()],
        ]

    def test_csv_to_stdout(self, cli: CliDb) -> None:
        result = cli.invoke(chfw, "receiver", "ready", "--min-version", "01", "--csv", "-")
        assert result.exit_code == 0, result.output
        assert len(list(csv.reader(io.StringIO(result.stdout)))) == 1 + 4

    def test_bad_version(self, cli: CliDb) -> None:
        result = cli.invoke(chfw, "receiver", "ready", "--min-version", "1.2")
        assert result.exit_code == 1
        assert "firmware version '1.2'" in result.stderr


def inventory_app(answers: dict[str, str | None]) -> FastAPI:
    """A stand-in DSP inventory endpoint with fixed versions (the real one: tests/supplier)."""
    app = FastAPI()

    @app.get("/su/v1/inventory/{device_id}")
    def read(device_id: str, request: Request) -> dict[str, object]:
        if request.headers.get("authorization") != "Bearer chfw_su_test":
            raise HTTPException(401)
        if device_id not in answers:
            raise HTTPException(404)
        return {"device_id": device_id, "firmware_version": answers[device_id]}

    return app


class TestLookups:
    """--once tries every pending CH once: exit 0 when all resolved, 1 when some failed."""

    @pytest.fixture(autouse=True)
    def fresh_logger(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # `chfw` configures structlog to write to the stderr of the moment and to cache a
        # module's logger on first use: in one test process, the second CliRunner invocation
        # would log to the first one's (closed) stderr. A fresh proxy per test avoids that.
        monkeypatch.setattr(lookup, "log", structlog.get_logger("chfw.supplier.lookup"))

    @pytest.fixture
    def pending(self, engine: Engine) -> Iterator[None]:
        record(engine, device(1), None, START)
        record(engine, device(2), None, START)
        return

    def test_once_resolves_what_the_dsp_knows(
        self, cli: CliDb, engine: Engine, pending: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CHFW_RECEIVER_DSP_TOKEN", "chfw_su_test")
        with serve(inventory_app({str(device(1)): "0A0B", str(device(2)): None})) as dsp:
            result = cli.invoke(
                chfw, "receiver", "lookups", "--once", "--dsp-allow-http", "--dsp-url", dsp
            )
        assert result.exit_code == 1, result.output
        assert "fetched 1 version(s), 1 lookup(s) failed; 1 CH(s) still waiting" in result.stdout
        assert hub_state(engine, device(1)).active_version == "0A0B"
        assert hub_state(engine, device(2)).lookup_pending

    def test_token_from_the_option(self, cli: CliDb, engine: Engine, pending: None) -> None:
        answers = {str(device(1)): "01", str(device(2)): "02"}
        with serve(inventory_app(answers)) as dsp:
            result = cli.invoke(
                chfw,
                "receiver",
                "lookups",
                "--once",
                "--dsp-allow-http",
                "--dsp-url",
                dsp,
                "--dsp-token",
                "chfw_su_test",
            )
        assert result.exit_code == 0, result.output
        assert "0 CH(s) still waiting" in result.stdout
        with engine.connect() as conn:
            assert conn.execute(
                sa.select(bo_hubs.c.active_version).order_by(bo_hubs.c.device_id)
            ).scalars().all() == ["01", "02"]

    def test_dsp_unreachable(self, cli: CliDb, engine: Engine, pending: None) -> None:
        dsp = f"http://127.0.0.1:{free_port()}"
        result = cli.invoke(
            chfw,
            "receiver",
            "lookups",
            "--once",
            "--dsp-allow-http",
            "--dsp-url",
            dsp,
            "--dsp-token",
            "chfw_su_x",
        )
        assert result.exit_code == 1
        assert "cannot connect to the DSP" in result.stdout
        assert "is it running" in result.stdout
        error = hub_state(engine, device(1)).lookup_error
        assert error is not None
        assert dsp in error

    def test_plain_http_needs_the_explicit_flag(self, cli: CliDb) -> None:
        result = cli.invoke(
            chfw, "receiver", "lookups", "--once", "--dsp-url", "http://x", "--dsp-token", "t"
        )
        assert result.exit_code == 1
        assert "token would travel in clear" in result.stderr
        assert "--dsp-allow-http" in result.stderr

    def test_token_required(self, cli: CliDb, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CHFW_RECEIVER_DSP_TOKEN", raising=False)
        result = cli.invoke(chfw, "receiver", "lookups", "--once", "--dsp-url", "https://x")
        assert result.exit_code == 1
        assert "CHFW_RECEIVER_DSP_TOKEN" in result.stderr
