"""Shared fixtures: the DCC reference material, and test databases on every backend.

Database fixtures run on SQLite always and on PostgreSQL too when
``CHFW_TEST_PG_URL`` names a server (``make test`` starts one with
scripts/pg.sh): a test that uses ``engine``, ``database_url`` or
``empty_database_url`` runs once per backend (ids ``[sqlite]``,
``[postgresql]``). ``sqlite_url`` is for tests about SQLite itself,
``pg_database_url`` for tests about PostgreSQL itself (skipped without it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import Engine

from tests.databases import POSTGRESQL, PgServer, backends, copy_sqlite, migrate_sqlite_template
from tests.databases import pg_server_url as configured_pg_url

# No time limit per example: a deadline is a timed assertion, and on a busy machine (CI, or
# several test runs sharing two CPUs) it fails tests whose code is right.
settings.register_profile("chfw", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chfw")

REPO_ROOT = Path(__file__).resolve().parent.parent
DCC_REFERENCE = REPO_ROOT.parent / "shared" / "dcc-reference"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that needs a database once per available backend.

    Function scope keeps the collection order (a test's runs side by side)
    instead of regrouping the whole suite by backend.
    """
    if "db_backend" in metafunc.fixturenames:
        metafunc.parametrize("db_backend", backends(), indirect=True)


@pytest.fixture(scope="session")
def dcc_reference() -> Path:
    """The ../shared/dcc-reference folder, or skip: it is DCC's material, not ours to ship."""
    if not DCC_REFERENCE.is_dir():
        pytest.skip(f"DCC reference material not found at {DCC_REFERENCE}")
    return DCC_REFERENCE


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this run of the test: ``sqlite`` or ``postgresql``."""
    backend: str = request.param
    return backend


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database file per test (for SQLite-only tests)."""
    return f"sqlite:///{tmp_path / 'chfw.db'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session by chfw's own migrations; tests get copies."""
    return migrate_sqlite_template(tmp_path_factory.mktemp("template") / "chfw.db")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL server of ``CHFW_TEST_PG_URL`` (skips without it); drops its template."""
    url = configured_pg_url()
    if url is None:
        pytest.skip("CHFW_TEST_PG_URL is not set: no PostgreSQL server to test against")
    server = PgServer(url)
    yield server
    server.close()


def _fresh_database(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, *, migrated: bool
) -> Iterator[str]:
    if backend == POSTGRESQL:
        server: PgServer = request.getfixturevalue("pg_server")
        name = server.create(migrated=migrated)
        try:
            yield server.url_of(name)
        finally:
            server.drop(name)
        return
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "chfw.db"
    if migrated:
        yield copy_sqlite(request.getfixturevalue("migrated_template"), path)
    else:
        yield f"sqlite:///{path}"


@pytest.fixture
def database_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh database with the migrated schema, on this test's backend."""
    yield from _fresh_database(request, db_backend, tmp_path, migrated=True)


@pytest.fixture
def empty_database_url(
    db_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The URL of a fresh database with no schema at all, on this test's backend."""
    yield from _fresh_database(request, db_backend, tmp_path / "empty", migrated=False)


@pytest.fixture
def pg_database_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh migrated PostgreSQL database, for PostgreSQL-only tests (skips without one)."""
    name = pg_server.create(migrated=True)
    try:
        yield pg_server.url_of(name)
    finally:
        pg_server.drop(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with the migrated schema (``database_url``)."""
    from chfw.shared.db.engine import create_engine_for

    eng = create_engine_for(database_url)
    yield eng
    eng.dispose()
