"""Secrets never reach a log: a whole intake → delivery → receiver run, logged at debug level.

Credentials, inventory tokens, their stored hashes and the DSP's signing key
are used, and used wrongly, while every log line (structlog and the standard
library's, uvicorn's included) is captured; none of them may appear.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from chfw.dsp.intake import create_app
from chfw.dsp.store import csps, inventory_access
from chfw.dsp.store.schema import csps as csps_table
from chfw.dsp.store.schema import service_users
from chfw.shared.config import Settings
from chfw.shared.logs import configure_logging
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.dsp.delivery.helpers import drain
from tests.dsp.intake.helpers import valid_message
from tests.dsp.intake.server import running
from tests.small_dsp import ALICE, BOB, CH1, KEY_PEM, TRUST, build_dsp


def secret_fragments(*secrets: str) -> list[str]:
    """Each secret, and its parts long enough to identify it (the part after the public id)."""
    fragments = []
    for secret in secrets:
        fragments.append(secret)
        fragments.extend(part for part in secret.split("_") if len(part) >= 20)
        fragments.extend(part for part in secret.split("$") if len(part) >= 20)
    return fragments


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """structlog at debug level onto the captured stderr; the standard library at DEBUG."""
    configure_logging("debug", json=True)
    caplog.set_level(logging.DEBUG)
    yield
    structlog.reset_defaults()


def key_material() -> list[str]:
    """The base64 lines of the signing key's PEM: any one of them in a log is a leak."""
    lines = KEY_PEM.decode().splitlines()
    return [line for line in lines if line and not line.startswith("-----")]


class TestNothingSecretIsLogged:
    """From a CSP's post to the supplier's back office, logs carry no secret."""

    def test_whole_run(
        self,
        engine: Engine,
        database_url: str,
        logged: None,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        csps.clear_cache()
        inventory_access.clear_cache()
        receiver = create_receiver_app(ReceiverConfig(trust=TRUST), engine)
        with running(receiver) as (r_host, r_port):
            endpoint = f"http://{r_host}:{r_port}/"
            dsp = build_dsp(engine, endpoints={ALICE: endpoint, BOB: endpoint})
            with dsp.engine.begin() as conn:
                token = inventory_access.issue_token(conn, ALICE)
            with running(create_app(Settings(), dsp.service)) as (host, port):
                base = f"http://{host}:{port}"
                answers = []
                for authorization in (
                    f"Bearer {dsp.credential}",
                    f"Bearer {dsp.credential}x",
                    f"Basic {dsp.credential}",
                    f"Bearer {token}",
                ):
                    answers.append(
                        httpx.post(
                            f"{base}/csp/v1/messages",
                            content=valid_message(),
                            headers={
                                "authorization": authorization,
                                "content-type": "application/octet-stream",
                            },
                        ).status_code
                    )
                bad = httpx.post(
                    f"{base}/csp/v1/messages",
                    content=b"\xdf\x09" + dsp.credential.encode(),
                    headers={
                        "authorization": f"Bearer {dsp.credential}",
                        "content-type": "application/octet-stream",
                    },
                )
                for authorization in (f"Bearer {token}", f"Bearer {token}x", dsp.credential):
                    answers.append(
                        httpx.get(
                            f"{base}/su/v1/inventory/{CH1}",
                            headers={"authorization": authorization},
                        ).status_code
                    )
            stats = drain(engine, Settings(database_url=database_url), lambda: datetime.now(UTC))
            tampered = httpx.post(endpoint, content=b"<x>" + token.encode() + b"</x>")
        assert answers == [200, 401, 401, 401, 200, 401, 401]
        assert bad.status_code == 400
        assert stats.delivered == 2  # N64 to ALICE, N999 to BOB
        assert tampered.status_code == 400

        with engine.connect() as conn:
            hashes = list(conn.execute(sa.select(csps_table.c.token_hash)).scalars())
            hashes += [
                h
                for h in conn.execute(sa.select(service_users.c.inventory_token_hash)).scalars()
                if h
            ]
        captured = capsys.readouterr()
        logs = captured.err + captured.out + "\n".join(r.getMessage() for r in caplog.records)
        assert "cs06_outcome" in logs  # the run was logged at all
        assert "alert_received" in logs or "alert_rejected" in logs
        for fragment in secret_fragments(dsp.credential, token, *hashes) + key_material():
            assert fragment not in logs, "a secret reached the logs"
