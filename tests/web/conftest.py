"""Fixtures: a DSP with a simulated wave, served on 127.0.0.1 with its dashboard; a supplier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy.engine import Engine

from chfw.dsp.intake import create_app
from chfw.shared.config import Settings
from chfw.shared.db.engine import create_engine_for
from chfw.supplier.app import create_receiver_app
from chfw.supplier.migrate import upgrade
from chfw.supplier.pipeline import ReceiverConfig
from tests.sim.live import serve
from tests.small_dsp import TRUST
from tests.web.wave import LoadedDsp, create_pilot, feed_supplier, load_wave, settle

TOKEN = "test-dashboard-token-0123456789"


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a CLI test's structlog set-up (it writes to CliRunner's stderr, closed afterwards)."""
    structlog.reset_defaults()


@pytest.fixture
def loaded(engine: Engine) -> LoadedDsp:
    """160 CHs, their wave processed over the last ten minutes, alerts not yet delivered."""
    return load_wave(engine, 160, batch=10)


@pytest.fixture
def dsp_base(loaded: LoadedDsp) -> Iterator[str]:
    """The intake app (with its dashboard) served by uvicorn; yields its base URL."""
    app = create_app(Settings(dashboard_token=TOKEN, stats_cache_seconds=0), loaded.service)
    with serve(app) as base:
        yield base


@pytest.fixture
def dsp(dsp_base: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the DSP dashboard as "Ada"."""
    with httpx.Client(base_url=dsp_base, timeout=10) as client:
        answer = client.post("/dashboard/login", data={"token": TOKEN, "name": "Ada"})
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture
def supplier_engine(tmp_path: Path) -> Iterator[Engine]:
    """The supplier's own (SQLite) database, migrated."""
    url = f"sqlite:///{tmp_path / 'backoffice.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


@pytest.fixture
def fed_supplier(loaded: LoadedDsp, supplier_engine: Engine) -> tuple[Engine, int]:
    """The first simulated supplier: a pilot on 40 of its CHs, then every alert the DSP wrote
    for it received (after two tampered copies, refused). Returns its engine and the cohort."""
    settle(loaded.engine, dead=0, retrying=0)
    user = loaded.synthetic.suppliers[0].user_id
    cohort = create_pilot(supplier_engine, loaded, user, size=40)
    assert feed_supplier(loaded.engine, supplier_engine, user, tampered=2) > 0
    return supplier_engine, cohort


@pytest.fixture
def supplier_base(fed_supplier: tuple[Engine, int]) -> Iterator[str]:
    """The receiver app (with its dashboard) served by uvicorn; yields its base URL."""
    app = create_receiver_app(ReceiverConfig(trust=TRUST), fed_supplier[0], dashboard_token=TOKEN)
    with serve(app) as base:
        yield base


@pytest.fixture
def supplier(supplier_base: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the supplier dashboard."""
    with httpx.Client(base_url=supplier_base, timeout=10) as client:
        answer = client.post("/dashboard/login", data={"token": TOKEN})
        assert answer.status_code == 303, answer.text
        yield client
