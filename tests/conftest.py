"""Shared fixtures: where the DCC reference material is, skipping cleanly without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DCC_REFERENCE = REPO_ROOT.parent / "shared" / "dcc-reference"


@pytest.fixture(scope="session")
def dcc_reference() -> Path:
    """The ../shared/dcc-reference folder, or skip: it is DCC's material, not ours to ship."""
    if not DCC_REFERENCE.is_dir():
        pytest.skip(f"DCC reference material not found at {DCC_REFERENCE}")
    return DCC_REFERENCE


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file per test."""
    return f"sqlite:///{tmp_path / 'chfw.db'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session by chfw's own migrations; tests get copies."""
    from chfw.store.engine import create_engine_for
    from chfw.store.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "chfw.db"
    eng = create_engine_for(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


@pytest.fixture
def engine(sqlite_url: str, migrated_template: Path):  # type: ignore[no-untyped-def]
    """An engine on a fresh database with the migrated schema (a copy of the template)."""
    from chfw.store.engine import create_engine_for

    shutil.copyfile(migrated_template, sqlite_url.removeprefix("sqlite:///"))
    eng = create_engine_for(sqlite_url)
    yield eng
    eng.dispose()
