"""chfw.shared.health.Readiness: what /readyz checks, one problem at a time."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from cryptography import x509
from sqlalchemy.engine import Engine

from chfw.dsp.store import migrate
from chfw.shared.db.engine import create_engine_for
from chfw.shared.health import Readiness
from tests.small_dsp import CERT_PEM

CERTIFICATE = x509.load_pem_x509_certificate(CERT_PEM)


class TestReadiness:
    def test_ready(self, engine: Engine) -> None:
        assert Readiness(engine, migrate.CHAIN, CERTIFICATE).problems() == []

    def test_an_expired_signing_certificate(self, engine: Engine) -> None:
        later = CERTIFICATE.not_valid_after_utc + timedelta(seconds=1)
        readiness = Readiness(engine, migrate.CHAIN, CERTIFICATE, clock=lambda: later)
        (problem,) = readiness.problems()
        assert problem.startswith("signing certificate expired at")

    def test_not_yet_valid(self, engine: Engine) -> None:
        earlier = CERTIFICATE.not_valid_before_utc - timedelta(seconds=1)
        readiness = Readiness(engine, migrate.CHAIN, CERTIFICATE, clock=lambda: earlier)
        (problem,) = readiness.problems()
        assert problem.startswith("signing certificate not valid before")

    def test_no_schema(self, empty_database_url: str) -> None:
        engine = create_engine_for(empty_database_url)
        try:
            (problem,) = Readiness(engine, migrate.CHAIN).problems()
        finally:
            engine.dispose()
        assert (
            problem
            == f"database has no schema: run `chfw db upgrade` (to {migrate.head_revision()})"
        )

    def test_a_database_that_does_not_answer_in_time(self, engine: Engine) -> None:
        readiness = Readiness(engine, migrate.CHAIN, timeout=0.05)

        def hang() -> list[str]:
            time.sleep(1)
            return []

        readiness.problems = hang  # type: ignore[method-assign]
        assert asyncio.run(readiness.check()) == ["database did not answer within 0.05 s"]
