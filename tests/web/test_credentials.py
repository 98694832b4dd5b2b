"""Sign-out ends the session on the server; Secure cookies behind a trusted proxy; a failure
limit on wrong tokens. Each against really served apps (both dashboards)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from chfw.dsp.intake import create_app
from chfw.shared.config import Settings
from chfw.shared.forwarded import TrustedProxies
from chfw.shared.throttle import FailureThrottle
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.dsp.intake.server import running
from tests.small_dsp import TRUST, Dsp, build_dsp
from tests.web.conftest import TOKEN

LOCAL_PROXY = TrustedProxies.parse("127.0.0.1")


@pytest.fixture
def dsp(engine: Engine) -> Dsp:
    return build_dsp(engine)


@contextmanager
def served(app: Any, proxies: TrustedProxies | None = None) -> Iterator[httpx.Client]:
    """``app`` served the way `chfw serve` serves it; a client for it."""
    with (
        running(app, proxies=proxies) as (host, port),
        httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as client,
    ):
        yield client


def dsp_app(dsp: Dsp, **settings: Any) -> Any:
    return create_app(Settings(dashboard_token=TOKEN, **settings), dsp.service)


def sign_in(client: httpx.Client) -> str:
    answer = client.post("/dashboard/login", data={"token": TOKEN, "name": "Ada"})
    assert answer.status_code == 303, answer.text
    return answer.headers["set-cookie"].split(";")[0].split("=", 1)[1]


def sign_out(client: httpx.Client) -> None:
    page = client.get("/dashboard/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    assert client.post("/dashboard/logout", data={"csrf": csrf.group(1)}).status_code == 303


def replay(client: httpx.Client, name: str, value: str, path: str) -> httpx.Response:
    client.cookies.clear()
    return client.get(path, headers={"cookie": f"{name}={value}"})


class TestSignOutEndsTheSession:
    """A signed-out cookie is refused afterwards, even when replayed, by every process."""

    def test_dsp_replayed_cookie_is_refused(self, dsp: Dsp) -> None:
        with served(dsp_app(dsp)) as client:
            cookie = sign_in(client)
            assert replay(client, "chfw_dsp_session", cookie, "/dashboard/").status_code == 200
            client.cookies.set("chfw_dsp_session", cookie, path="/dashboard")
            sign_out(client)
            page = replay(client, "chfw_dsp_session", cookie, "/dashboard/")
            assert page.status_code == 303
            assert page.headers["location"] == "/dashboard/login"
            data = replay(client, "chfw_dsp_session", cookie, "/dashboard/live.json")
            assert data.status_code == 401

    def test_another_process_refuses_it_too(self, dsp: Dsp) -> None:
        """Two intakes on one database (as behind a load balancer): out on one, out on both."""
        with served(dsp_app(dsp)) as one, served(dsp_app(dsp)) as two:
            cookie = sign_in(one)
            assert replay(two, "chfw_dsp_session", cookie, "/dashboard/").status_code == 200
            sign_out(one)
            assert replay(two, "chfw_dsp_session", cookie, "/dashboard/").status_code == 303

    def test_other_sessions_live_on(self, dsp: Dsp) -> None:
        with served(dsp_app(dsp)) as client:
            kept = sign_in(client)
            sign_in(client)
            sign_out(client)
            assert replay(client, "chfw_dsp_session", kept, "/dashboard/").status_code == 200

    def test_supplier_replayed_cookie_is_refused(self, engine: Engine) -> None:
        app = create_receiver_app(ReceiverConfig(trust=TRUST), engine, dashboard_token=TOKEN)
        with served(app) as client:
            cookie = sign_in(client)
            sign_out(client)
            page = replay(client, "chfw_supplier_session", cookie, "/dashboard/")
            assert page.status_code == 303
            assert page.headers["location"] == "/dashboard/login"


class TestSecureCookieBehindAProxy:
    """X-Forwarded-Proto: https gives the cookie its Secure flag, from a trusted proxy only."""

    def test_trusted_proxy(self, dsp: Dsp) -> None:
        with served(dsp_app(dsp), LOCAL_PROXY) as client:
            answer = client.post(
                "/dashboard/login",
                data={"token": TOKEN},
                headers={"x-forwarded-proto": "https", "origin": "https://dsp.example"},
            )
            # The Origin check compares with the forwarded scheme and the Host header.
            assert answer.status_code == 303, answer.text
            assert "Secure" in answer.headers["set-cookie"]
            assert (
                "Secure"
                not in client.post("/dashboard/login", data={"token": TOKEN}).headers["set-cookie"]
            )

    def test_untrusted_peer_cannot_claim_https(self, dsp: Dsp) -> None:
        with served(dsp_app(dsp)) as client:
            answer = client.post(
                "/dashboard/login", data={"token": TOKEN}, headers={"x-forwarded-proto": "https"}
            )
            assert answer.status_code == 303
            assert "Secure" not in answer.headers["set-cookie"]


def from_client(address: str) -> dict[str, str]:
    """Headers the trusted proxy (the test client's 127.0.0.1) adds for ``address``."""
    return {"x-forwarded-for": address}


class TestSignInThrottle:
    """Too many wrong tokens from one address: 429 with Retry-After, the token not looked at."""

    def test_dsp_login(self, dsp: Dsp) -> None:
        app = dsp_app(dsp, auth_max_failures=2, auth_failure_window_seconds=60)
        attacker, operator = from_client("203.0.113.7"), from_client("203.0.113.8")
        with served(app, LOCAL_PROXY) as client, capture_logs() as logs:
            for _ in range(2):
                wrong = client.post("/dashboard/login", data={"token": "x" * 20}, headers=attacker)
                assert wrong.status_code == 401
            blocked = client.post("/dashboard/login", data={"token": TOKEN}, headers=attacker)
            assert blocked.status_code == 429
            assert 1 <= int(blocked.headers["retry-after"]) <= 60
            assert "set-cookie" not in blocked.headers
            fine = client.post("/dashboard/login", data={"token": TOKEN}, headers=operator)
            assert fine.status_code == 303
        refused = [entry for entry in logs if entry["event"] == "auth_refused"]
        assert [entry["remote"] for entry in refused] == ["203.0.113.7"] * 2
        assert {entry["surface"] for entry in refused} == {"dashboard:dsp"}
        assert "x" * 20 not in repr(logs)
        assert TOKEN not in repr(logs)

    def test_bearer_tokens_count_too(self, dsp: Dsp) -> None:
        app = dsp_app(dsp, auth_max_failures=2)
        with served(app) as client:
            for status in (401, 401, 429):
                answer = client.get(
                    "/dashboard/live.json", headers={"authorization": "Bearer wrong-wrong-wrong"}
                )
                assert answer.status_code == status
            right = {"authorization": f"Bearer {TOKEN}"}
            assert client.get("/dashboard/live.json", headers=right).status_code == 429

    def test_supplier_login(self, engine: Engine) -> None:
        app = create_receiver_app(ReceiverConfig(trust=TRUST), engine, dashboard_token=TOKEN)
        app.state.dashboard_auth.throttle = FailureThrottle(1, 60)  # as `chfw receiver serve`
        with served(app) as client:
            wrong = client.post("/dashboard/login", data={"token": "y" * 20})
            assert wrong.status_code == 401
            blocked = client.post("/dashboard/login", data={"token": TOKEN})
            assert blocked.status_code == 429
            assert int(blocked.headers["retry-after"]) >= 1
