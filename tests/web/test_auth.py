"""Dashboard sign-in: token, signed session cookie, CSRF and same-origin checks."""

from __future__ import annotations

import io
import re

import httpx
import pytest

from chfw.dsp.store import outbox
from chfw.exceptions import ConfigError
from chfw.shared.web.auth import (
    SESSION_SECONDS,
    DashboardAuth,
    Viewer,
    announce,
    base_url,
    clean_name,
)
from tests.web.conftest import TOKEN
from tests.web.wave import LoadedDsp, settle


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TestTokens:
    """Configured tokens must be long enough; a missing one is generated, never shown in repr."""

    def test_short_token_refused_with_advice(self) -> None:
        with pytest.raises(ConfigError, match=r"at least 16 characters.*token_urlsafe"):
            DashboardAuth("too-short")

    def test_generated_when_unset(self) -> None:
        one, two = DashboardAuth.from_setting(None), DashboardAuth.from_setting(None)
        assert one.generated
        assert two.generated
        assert one.login_url("http://h") != two.login_url("http://h")
        assert not DashboardAuth.from_setting(TOKEN).generated

    def test_repr_hides_the_token(self) -> None:
        assert TOKEN not in repr(DashboardAuth(TOKEN))

    def test_comparison(self) -> None:
        auth = DashboardAuth(TOKEN)
        assert auth.token_matches(f" {TOKEN}\n")
        assert not auth.token_matches(TOKEN[:-1])


class TestSessions:
    """Cookies are signed, bound to the token and realm, and expire."""

    def test_round_trip_keeps_the_name(self) -> None:
        auth = DashboardAuth(TOKEN)
        viewer = auth.session_viewer(auth.issue("Ada Lovelace"))
        assert viewer == Viewer("Ada Lovelace", viewer.session if viewer else "")
        assert viewer is not None
        assert viewer.actor == "dashboard:Ada Lovelace"

    def test_unplain_names_are_dropped(self) -> None:
        assert clean_name("<script>") == ""
        auth = DashboardAuth(TOKEN)
        viewer = auth.session_viewer(auth.issue("<script>alert(1)</script>"))
        assert viewer is not None
        assert viewer.actor == "dashboard"

    def test_forged_tampered_or_foreign_cookies_are_refused(self) -> None:
        auth = DashboardAuth(TOKEN)
        cookie = auth.issue("Ada")
        name, issued, sid, mac = cookie.split(".")
        assert auth.session_viewer(f"{name}.{int(issued) + 1}.{sid}.{mac}") is None
        assert auth.session_viewer(f"QWxpY2U.{issued}.{sid}.{mac}") is None  # "Alice"
        assert auth.session_viewer(f"{name}.{issued}.{'0' * 32}.{mac}") is None
        assert auth.session_viewer(f"{name}.{issued}.{mac}") is None  # before session ids
        assert auth.session_viewer("garbage") is None
        assert DashboardAuth(TOKEN + "x").session_viewer(cookie) is None  # token changed
        assert DashboardAuth(TOKEN, realm="supplier").session_viewer(cookie) is None

    def test_expiry(self) -> None:
        clock = Clock()
        auth = DashboardAuth(TOKEN, clock=clock)
        cookie = auth.issue("Ada")
        clock.now += SESSION_SECONDS - 1
        assert auth.session_viewer(cookie) is not None
        clock.now += 2
        assert auth.session_viewer(cookie) is None

    def test_csrf_token_is_bound_to_the_session(self) -> None:
        auth = DashboardAuth(TOKEN)
        one = auth.session_viewer(auth.issue("Ada"))
        clock = Clock(2_000_000_000.0)
        other_auth = DashboardAuth(TOKEN, clock=clock)
        two = other_auth.session_viewer(other_auth.issue("Ada"))
        assert one is not None
        assert two is not None
        assert auth.csrf_token(one) != auth.csrf_token(two)
        assert auth.csrf_token(Viewer("api", "")) == ""


class TestOverHttp:
    """Every page needs a session or the token; sign-in sets a hardened cookie."""

    def test_pages_redirect_to_sign_in(self, dsp_base: str) -> None:
        with httpx.Client(base_url=dsp_base) as client:
            for path in ("/dashboard/", "/dashboard/dead-letters", "/dashboard/hubs/00-00"):
                answer = client.get(path)
                assert answer.status_code == 303, path
                assert answer.headers["location"] == "/dashboard/login"
            assert client.get("/dashboard").status_code == 307

    def test_json_and_charts_answer_401(self, dsp_base: str) -> None:
        with httpx.Client(base_url=dsp_base) as client:
            for path in ("/dashboard/live.json", "/dashboard/charts/outcomes.svg"):
                answer = client.get(path)
                assert answer.status_code == 401
                assert answer.headers["www-authenticate"] == "Bearer"

    def test_bearer_token_for_scripts(self, dsp_base: str) -> None:
        with httpx.Client(base_url=dsp_base) as client:
            headers = {"authorization": f"Bearer {TOKEN}"}
            assert client.get("/dashboard/live.json", headers=headers).status_code == 200
            wrong = {"authorization": "Bearer not-the-token-at-all"}
            assert client.get("/dashboard/live.json", headers=wrong).status_code == 401

    def test_wrong_token(self, dsp_base: str) -> None:
        with httpx.Client(base_url=dsp_base) as client:
            answer = client.post("/dashboard/login", data={"token": "nope-nope-nope-nope"})
            assert answer.status_code == 401
            assert "That token is not right" in answer.text
            assert "set-cookie" not in answer.headers

    def test_cookie_attributes_and_headers(self, dsp_base: str) -> None:
        with httpx.Client(base_url=dsp_base) as client:
            answer = client.post("/dashboard/login", data={"token": TOKEN, "name": "Ada"})
            cookie = answer.headers["set-cookie"]
            assert cookie.startswith("chfw_dsp_session=")
            for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard", "Max-Age=43200"):
                assert attribute in cookie
            assert TOKEN not in cookie
            page = client.get("/dashboard/")
            assert page.status_code == 200
            assert "Signed in as Ada" in page.text
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["cache-control"] == "no-store"

    def test_a_token_in_the_query_string_is_ignored(self, dsp_base: str) -> None:
        """Query strings end up in proxies' logs: sign-in links carry the token in the fragment."""
        assert (
            DashboardAuth(TOKEN).login_url("http://h:1")
            == f"http://h:1/dashboard/login#token={TOKEN}"
        )
        with httpx.Client(base_url=dsp_base) as client:
            answer = client.get("/dashboard/login", params={"token": TOKEN})
            assert answer.status_code == 200
            assert "set-cookie" not in answer.headers
            assert 'id="login"' in answer.text

    def test_sign_out(self, dsp_base: str) -> None:
        with httpx.Client(base_url=dsp_base) as client:
            assert client.post("/dashboard/login", data={"token": TOKEN}).status_code == 303
            page = client.get("/dashboard/")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            answer = client.post("/dashboard/logout", data={"csrf": csrf.group(1)})
            assert answer.status_code == 303
            assert client.get("/dashboard/").status_code == 303


class TestCsrf:
    """A replay needs the session's CSRF token and, if an Origin is sent, the same origin."""

    def _post(
        self, dsp: httpx.Client, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return dsp.post("/dashboard/dead-letters/replay", data=data, headers=headers or {})

    def test_missing_or_wrong_token(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        settle(loaded.engine, dead=1, retrying=0)
        with loaded.engine.connect() as conn:
            (row,) = outbox.list_rows(conn, state="dead")
        for data in ({"id": str(row.id)}, {"id": str(row.id), "csrf": "0" * 40}):
            answer = self._post(dsp, data)
            assert answer.status_code == 403
            assert "security token" in answer.text
        with loaded.engine.connect() as conn:
            assert outbox.counts(conn)["dead"] == 1

    def test_cross_site_origin(self, dsp: httpx.Client, loaded: LoadedDsp) -> None:
        settle(loaded.engine, dead=1, retrying=0)
        page = dsp.get("/dashboard/dead-letters")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        answer = self._post(
            dsp, {"csrf": csrf.group(1), "action": "all"}, {"origin": "https://evil.example"}
        )
        assert answer.status_code == 403
        assert "cross-site request refused" in answer.text
        same = self._post(
            dsp, {"csrf": csrf.group(1), "action": "all"}, {"origin": str(dsp.base_url).rstrip("/")}
        )
        assert same.status_code == 303


class TestAnnounce:
    """The sign-in link goes to a terminal only; elsewhere the operator is told what to set."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def test_terminal_gets_the_link(self) -> None:
        auth = DashboardAuth.from_setting(None)
        out = self.Tty()
        announce(auth, "http://127.0.0.1:8064", how_to_set="X", stream=out)
        assert auth.login_url("http://127.0.0.1:8064") in out.getvalue()

    def test_not_a_terminal(self) -> None:
        auth = DashboardAuth.from_setting(None)
        out = io.StringIO()
        announce(auth, "http://127.0.0.1:8064", how_to_set="CHFW_DASHBOARD_TOKEN", stream=out)
        assert "token=" not in out.getvalue()
        assert "set CHFW_DASHBOARD_TOKEN" in out.getvalue()

    def test_configured_token_is_never_printed(self) -> None:
        out = self.Tty()
        announce(DashboardAuth(TOKEN), "http://h:1", how_to_set="X", stream=out)
        assert TOKEN not in out.getvalue()
        assert "http://h:1/dashboard/" in out.getvalue()

    def test_base_url(self) -> None:
        assert base_url("0.0.0.0", 8064) == "http://127.0.0.1:8064"  # noqa: S104
        assert base_url("::1", 8064, tls=True) == "https://[::1]:8064"
