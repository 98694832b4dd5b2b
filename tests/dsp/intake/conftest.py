"""The DSP the intake tests post to (the CSP credential cache cleared around each test); an
HTTPS receiver with its own CA, signing files and a CLI for the worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from chfw.dsp.store import csps
from tests.cli.dbcli import CliDb, cli_db
from tests.cli.test_serve import signing_files
from tests.dsp.delivery.receiver import ScriptedReceiver
from tests.dsp.intake.server import running
from tests.pki import Pki
from tests.small_dsp import Dsp, build_dsp


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    csps.clear_cache()
    yield build_dsp(engine)
    csps.clear_cache()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    folder = tmp_path / "pki"
    folder.mkdir()
    return Pki.create(folder)


@pytest.fixture
def receiver(pki: Pki) -> Iterator[ScriptedReceiver]:
    server = ScriptedReceiver(
        ssl={"ssl_certfile": str(pki.server_cert), "ssl_keyfile": str(pki.server_key)}
    ).start()
    yield server
    server.stop()


@pytest.fixture
def signing(tmp_path: Path) -> dict[str, str]:
    return signing_files(tmp_path)


@pytest.fixture
def cli(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signing: dict[str, str],
    pki: Pki,
) -> CliDb:
    for name, value in signing.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CHFW_DELIVERY_CA_BUNDLE", str(pki.ca))
    return cli_db(database_url, tmp_path, monkeypatch)


@pytest.fixture
def client(app: FastAPI, dsp: Dsp) -> Iterator[httpx.Client]:
    """A client of the module's ``app`` served as `chfw serve` serves it, carrying the CSP's
    credential."""
    with (
        running(app) as (host, port),
        httpx.Client(
            base_url=f"http://{host}:{port}",
            headers={"authorization": f"Bearer {dsp.credential}"},
            timeout=10,
        ) as http,
    ):
        yield http
