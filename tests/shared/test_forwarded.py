"""chfw.shared.forwarded: X-Forwarded-For/-Proto from trusted proxies only, served for real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chfw.exceptions import ConfigError
from chfw.shared.config import load_settings
from chfw.shared.forwarded import TrustedProxies
from tests.dsp.intake.server import running


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scheme and client address the application sees."""
    if scope["type"] != "http":
        return
    body = f"{scope['scheme']} {scope['client'][0]}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def seen(base: str, **headers: str) -> str:
    return httpx.get(base, headers=headers, timeout=10).text


@pytest.fixture
def behind_proxy() -> Iterator[str]:
    """``echo`` served with 127.0.0.1 (the test client) as a trusted proxy."""
    with running(echo, proxies=TrustedProxies.parse("127.0.0.1")) as (host, port):
        yield f"http://{host}:{port}/"


@pytest.fixture
def direct() -> Iterator[str]:
    """``echo`` served with no trusted proxy (the default)."""
    with running(echo) as (host, port):
        yield f"http://{host}:{port}/"


FORWARDED = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}


class TestServed:
    def test_trusted_proxy_sets_scheme_and_client(self, behind_proxy: str) -> None:
        assert seen(behind_proxy, **FORWARDED) == "https 203.0.113.9"
        assert seen(behind_proxy) == "http 127.0.0.1"

    def test_forwarded_headers_from_anyone_else_are_ignored(self, direct: str) -> None:
        # 127.0.0.1 is not configured: uvicorn's own default trust of it is off too.
        assert seen(direct, **FORWARDED) == "http 127.0.0.1"

    def test_spoofed_left_entries_prove_nothing(self, behind_proxy: str) -> None:
        spoofed = {"x-forwarded-for": "198.51.100.1, 203.0.113.9"}
        assert seen(behind_proxy, **spoofed) == "http 203.0.113.9"

    def test_unknown_scheme_is_ignored(self, behind_proxy: str) -> None:
        assert seen(behind_proxy, **{"x-forwarded-proto": "gopher"}) == "http 127.0.0.1"


class TestTrustedProxies:
    def test_parse_addresses_and_networks(self) -> None:
        proxies = TrustedProxies.parse(" 10.0.0.5, 10.1.0.0/16 ,::1")
        assert proxies.trusts("10.0.0.5")
        assert proxies.trusts("10.1.200.3")
        assert proxies.trusts("::1")
        assert not proxies.trusts("10.0.0.6")
        assert not proxies.trusts("not an address")
        assert not TrustedProxies.parse("")

    def test_bad_entry_is_a_one_line_config_error(self) -> None:
        with pytest.raises(ConfigError, match=r"trusted_proxies: '10\.0\.0\.300' is not an IP"):
            TrustedProxies.parse("10.0.0.1, 10.0.0.300")

    def test_client_skips_trusted_hops(self) -> None:
        proxies = TrustedProxies.parse("10.0.0.0/8")
        assert proxies.client("10.0.0.1", "203.0.113.9, 10.0.0.2") == "203.0.113.9"
        assert proxies.client("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3"
        assert proxies.client("10.0.0.1", "garbage") == "10.0.0.1"

    def test_toml_list_or_string(self, tmp_path: Any) -> None:
        config = tmp_path / "chfw.toml"
        config.write_text('trusted_proxies = ["10.0.0.5", "10.1.0.0/16"]\n')
        settings = load_settings(config, env={})
        assert TrustedProxies.parse(settings.trusted_proxies).trusts("10.1.0.9")
        env = {"CHFW_TRUSTED_PROXIES": "192.0.2.1"}
        assert load_settings(config, env=env).trusted_proxies == "192.0.2.1"
