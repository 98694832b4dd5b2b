"""A per-client limit on wrong credentials at the CSP intake and the inventory API, served."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from chfw.dsp.intake import create_app
from chfw.dsp.store import csps, inventory_access
from chfw.shared.config import Settings
from chfw.shared.forwarded import TrustedProxies
from chfw.shared.throttle import LogLimit
from tests.dsp.intake.helpers import valid_message
from tests.dsp.intake.server import running
from tests.dsp.store.scrypt_spy import ScryptSpy
from tests.small_dsp import BOB, CH1, Dsp, build_dsp

ATTACKER = {"x-forwarded-for": "203.0.113.66"}  # as the trusted proxy (127.0.0.1) forwards it
OTHER = {"x-forwarded-for": "203.0.113.67"}
LIMIT = 3


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    csps.clear_cache()
    inventory_access.clear_cache()
    yield build_dsp(engine)
    csps.clear_cache()
    inventory_access.clear_cache()


@pytest.fixture
def client(dsp: Dsp) -> Iterator[httpx.Client]:
    """The intake, served as `chfw serve` serves it behind a proxy on 127.0.0.1."""
    settings = Settings(auth_max_failures=LIMIT, auth_failure_window_seconds=60)
    proxies = TrustedProxies.parse("127.0.0.1")
    with (
        running(create_app(settings, dsp.service), proxies=proxies) as (host, port),
        httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as http,
    ):
        yield http


def post(client: httpx.Client, credential: str, headers: dict[str, str]) -> httpx.Response:
    return client.post(
        "/csp/v1/messages",
        content=valid_message(),
        headers={
            "authorization": f"Bearer {credential}",
            "content-type": "application/octet-stream",
            **headers,
        },
    )


def wrong_credential(dsp: Dsp) -> str:
    return dsp.credential[:-1] + ("A" if dsp.credential[-1] != "A" else "B")


class TestCspIntake:
    def test_blocked_after_the_limit_without_checking(
        self, dsp: Dsp, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for _ in range(LIMIT):
            assert post(client, wrong_credential(dsp), ATTACKER).status_code == 401
        spy = ScryptSpy(monkeypatch)
        blocked = post(client, dsp.credential, ATTACKER)
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert "try again in" in blocked.json()["detail"]
        assert spy.take() == []  # the credential was not even looked at

    def test_other_clients_are_unaffected(self, dsp: Dsp, client: httpx.Client) -> None:
        for _ in range(LIMIT + 1):
            post(client, wrong_credential(dsp), ATTACKER)
        assert post(client, dsp.credential, OTHER).status_code == 200
        assert post(client, wrong_credential(dsp), OTHER).status_code == 401

    def test_successes_do_not_count(self, dsp: Dsp, client: httpx.Client) -> None:
        for _ in range(LIMIT * 2):
            assert post(client, dsp.credential, OTHER).status_code == 200

    def test_failures_are_logged_without_the_credential(
        self, dsp: Dsp, client: httpx.Client
    ) -> None:
        wrong = wrong_credential(dsp)
        with capture_logs() as logs:
            for _ in range(LIMIT):
                post(client, wrong, ATTACKER)
        refused: list[dict[str, Any]] = [e for e in logs if e["event"] == "auth_refused"]
        assert [(e["surface"], e["remote"]) for e in refused] == [("csp", "203.0.113.66")] * 3
        assert [e["failures"] for e in refused] == [1, 2, 3]
        token_id = wrong.split("_")[2]
        assert {e["claimed"] for e in refused} == {f"csp {token_id}"}  # the public part only
        assert any(e["event"] == "auth_client_throttled" for e in logs)
        secret = wrong.rsplit("_", 1)[1]
        assert secret not in repr(logs)

    def test_a_missing_or_foreign_credential_is_logged_too(self, client: httpx.Client) -> None:
        with capture_logs() as logs:
            client.post("/csp/v1/messages", content=b"00", headers=ATTACKER)
            post(client, "Basic something-else", ATTACKER)
        refused = [e for e in logs if e["event"] == "auth_refused"]
        assert [(e["reason"], e["claimed"]) for e in refused] == [
            ("no credential", None),
            ("credential not recognised", "not a chfw credential"),
        ]


class TestLogLimit:
    """A flood of refusals is logged at most LOG_BURST lines a window; the rest are counted."""

    def test_burst_then_counted(self) -> None:
        now = [0.0]
        limit = LogLimit(burst=3, window=60, clock=lambda: now[0])
        assert [limit.allow() for _ in range(5)] == [0, 0, 0, None, None]
        now[0] = 61
        assert limit.allow() == 2  # the next line says two were left out
        assert limit.allow() == 0


class TestInventoryApi:
    def test_blocked_after_the_limit(self, dsp: Dsp, client: httpx.Client) -> None:
        with dsp.engine.begin() as conn:
            token = inventory_access.issue_token(conn, BOB)
        right = {"authorization": f"Bearer {token}"}
        wrong = {"authorization": f"Bearer chfw_su_{BOB.hex.lower()}_{'x' * 43}"}
        path = f"/su/v1/inventory/{CH1}"
        for _ in range(LIMIT):
            assert client.get(path, headers={**wrong, **ATTACKER}).status_code == 401
        blocked = client.get(path, headers={**right, **ATTACKER})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1
        assert client.get(path, headers={**right, **OTHER}).status_code == 200

    def test_csp_failures_do_not_block_inventory_reads(
        self, dsp: Dsp, client: httpx.Client
    ) -> None:
        for _ in range(LIMIT):
            post(client, wrong_credential(dsp), ATTACKER)
        with dsp.engine.begin() as conn:
            token = inventory_access.issue_token(conn, BOB)
        headers = {"authorization": f"Bearer {token}", **ATTACKER}
        assert client.get(f"/su/v1/inventory/{CH1}", headers=headers).status_code == 200
