"""Health that tells the truth: ``/healthz`` (the process answers) and ``/readyz`` (it can work).

``GET /healthz`` is liveness: 200 while the process's event loop answers. It reads
nothing, so a load balancer or systemd does not restart a process because its
database is down (restarting would not help).

``GET /readyz`` is readiness: 200 only when the process could do its job now --
the database answers, its schema is at the revision this chfw version expects (or a
newer one: migrations run before the new version's processes start, see
docs/runbooks/upgrade.md), and the signing certificate is within its validity.
Otherwise 503 with every reason, e.g. ``{"status": "unready", "problems":
["database unreachable: connection refused ..."]}``. Take a process out of a load
balancer on /readyz, restart it on /healthz.

The check runs on a thread of its own (never queued behind the intake's blocking
work, which would make a busy intake look unready) and gives up after
``timeout`` seconds: a database that does not answer is unready too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from chfw.core.clock import utc_now
from chfw.shared.db.migrate import MigrationChain

READY_TIMEOUT_SECONDS = 5.0


class Readiness:
    """What ``/readyz`` checks: the database, its schema revision, the signing certificate."""

    def __init__(
        self,
        engine: Engine,
        chain: MigrationChain,
        certificate: x509.Certificate | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        timeout: float = READY_TIMEOUT_SECONDS,
    ) -> None:
        self.engine = engine
        self.chain = chain
        self.certificate = certificate
        self.clock = clock
        self.timeout = timeout
        scripts = ScriptDirectory.from_config(chain.alembic_config())
        self.head = chain.head_revision()
        self.known = {script.revision for script in scripts.walk_revisions()}
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="readyz")

    def problems(self) -> list[str]:
        """Why the process cannot work now (empty: ready). Blocking: reads the database."""
        problems = self._certificate_problems()
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            current = self.chain.current_revision(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            return [f"database unreachable: {type(cause).__name__}: {first}", *problems]
        if current is None:
            problems.append(f"database has no schema: run `chfw db upgrade` (to {self.head})")
        elif current in self.known and current != self.head:
            problems.append(
                f"database schema at revision {current}, this chfw version needs {self.head}: "
                "run `chfw db upgrade`"
            )
        return problems

    def _certificate_problems(self) -> list[str]:
        if self.certificate is None:
            return []
        now = self.clock()
        if now < self.certificate.not_valid_before_utc:
            return [f"signing certificate not valid before {self.certificate.not_valid_before_utc}"]
        if now > self.certificate.not_valid_after_utc:
            return [f"signing certificate expired at {self.certificate.not_valid_after_utc}"]
        return []

    async def check(self) -> list[str]:
        """:meth:`problems` on the check's own thread, within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                return await loop.run_in_executor(self._executor, self.problems)
        except TimeoutError:
            return [f"database did not answer within {self.timeout:g} s"]


router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers (on the event loop: nothing it waits for)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database, its schema and the signing identity are usable,
    else 503 with the reasons."""
    readiness: Readiness = request.app.state.readiness
    problems = await readiness.check()
    if problems:
        return JSONResponse({"status": "unready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready", "schema": readiness.head})
