"""The sender: one POST, its answer classified, httpx errors mapped at the boundary."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chfw.core.domain.values import DeviceId, UserId
from chfw.dsp.delivery.sender import (
    DeliveryTransport,
    SendResult,
    Transports,
    check_status,
    default_transport_factory,
    post_document,
    send,
    tls_for_alert,
)
from chfw.dsp.delivery.transport import KeepAliveTransport, RawResponse
from chfw.dsp.store.outbox import ClaimedAlert
from chfw.exceptions import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from chfw.shared.config import Settings
from chfw.shared.tls import TlsConfig
from tests.dsp.delivery.helpers import MockTransport

URL = "https://supplier.example/duis"
DOC = b'<?xml version="1.0"?><sr:Response xmlns:sr="urn:x"><a>\xc3\xa9</a></sr:Response>'

Handler = Callable[[httpx.Request], httpx.Response]


def post_with(handler: Handler) -> SendResult:
    return asyncio.run(send(MockTransport(handler), URL, DOC, timeout=3.0))


def answer(status: int, body: bytes = b"", **headers: str) -> Handler:
    return lambda _request: httpx.Response(status, content=body, headers=headers)


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


class TestRequest:
    """What goes on the wire: the document unchanged, as application/xml, by POST."""

    def test_post_carries_the_document(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(204)

        assert post_with(handler).verdict == "delivered"
        (request,) = seen
        assert request.method == "POST"
        assert str(request.url) == URL
        assert request.headers["content-type"] == "application/xml"
        assert request.headers["host"] == "supplier.example"
        assert request.headers["content-length"] == str(len(DOC))
        assert request.content == DOC
        assert request.extensions["timeout"]["read"] == 3.0

    def test_post_document_returns_the_response_on_2xx(self) -> None:
        response = asyncio.run(post_document(MockTransport(answer(202)), URL, DOC))
        assert response.status_code == 202

    def test_invalid_url_is_retryable(self) -> None:
        result = asyncio.run(send(MockTransport(answer(204)), "http://[::1", DOC))
        assert result.verdict == "retryable"
        assert result.error is not None
        assert "not valid" in result.error


class TestClassification:
    """2xx delivered; 400 and 413 permanent; any other status retryable."""

    @pytest.mark.parametrize("status", [200, 201, 202, 204])
    def test_2xx_is_delivered(self, status: int) -> None:
        result = post_with(answer(status))
        assert (result.verdict, result.status_code, result.error) == ("delivered", status, None)

    @pytest.mark.parametrize("status", [400, 413])
    def test_final_answers_are_permanent(self, status: int) -> None:
        result = post_with(answer(status, b"signature does not verify"))
        assert result.verdict == "permanent"
        assert result.status_code == status
        assert result.error is not None
        assert f"answered {status}" in result.error
        assert "signature does not verify" in result.error

    @pytest.mark.parametrize("status", [401, 403, 404, 408, 429, 500, 502, 503, 504])
    def test_other_statuses_are_retryable(self, status: int) -> None:
        result = post_with(answer(status, b"busy"))
        assert result.verdict == "retryable"
        assert result.status_code == status
        assert result.error is not None
        assert str(status) in result.error

    def test_redirects_are_not_followed(self) -> None:
        result = post_with(answer(301, location="https://elsewhere.example/"))
        assert result.verdict == "retryable"
        assert result.error is not None
        assert "elsewhere.example" in result.error
        assert "endpoint URL" in result.error

    def test_body_snippet_is_short_and_on_one_line(self) -> None:
        body = b"line one\n   line two\n" + b"x" * 5000
        with pytest.raises(RetryableDeliveryError) as caught:
            check_status(URL, RawResponse(500, [], body))
        message = str(caught.value)
        assert "line one line two" in message
        assert "\n" not in message
        assert len(message) < 400

    def test_errors_are_chfw_delivery_errors(self) -> None:
        with pytest.raises(PermanentDeliveryError, match="400"):
            check_status(URL, RawResponse(400, [], b""))
        check_status(URL, RawResponse(204, [], b""))  # no error for 2xx


class TestTransportErrors:
    """Timeouts, refused connections and protocol errors are retryable, with a readable message."""

    @pytest.mark.parametrize(
        ("exc", "words"),
        [
            (httpx.ConnectError("cannot connect to supplier.example:443 (refused)"), "refused"),
            (httpx.ConnectTimeout("took longer than 10 s"), "timed out"),
            (httpx.ReadTimeout("no answer within 10 s"), "timed out"),
            (httpx.RemoteProtocolError("closed mid-answer"), "closed mid-answer"),
            (httpx.UnsupportedProtocol("scheme 'ftp'"), "not usable"),
        ],
    )
    def test_mapped_to_retryable(self, exc: Exception, words: str) -> None:
        result = post_with(raising(exc))
        assert result.verdict == "retryable"
        assert result.status_code is None
        assert result.error is not None
        assert words in result.error
        assert URL in result.error

    def test_post_document_raises_the_mapped_error(self) -> None:
        transport = MockTransport(raising(httpx.ConnectError("refused")))
        with pytest.raises(RetryableDeliveryError, match="refused") as caught:
            asyncio.run(post_document(transport, URL, DOC))
        assert isinstance(caught.value.__cause__, httpx.ConnectError)


def claimed(**tls: str | None) -> ClaimedAlert:
    return ClaimedAlert(
        id=1,
        response_id="R",
        user_id=UserId.from_int(1),
        device_id=DeviceId.from_int(2),
        alert_code="N64",
        document=DOC,
        attempts=0,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        user_known=True,
        endpoint_url=URL,
        tls_ca_bundle=tls.get("ca"),
        tls_client_cert=tls.get("cert"),
        tls_client_key=tls.get("key"),
        max_in_flight=4,
    )


class TestTls:
    """TLS set-up: the user's CA bundle first, then the settings', then the system's."""

    def test_user_bundle_wins_over_settings(self) -> None:
        settings = Settings(delivery_ca_bundle="/etc/dsp-ca.pem")
        assert tls_for_alert(claimed(ca="/u/ca.pem"), settings).ca_bundle == "/u/ca.pem"
        assert tls_for_alert(claimed(), settings).ca_bundle == "/etc/dsp-ca.pem"
        assert tls_for_alert(claimed(), Settings()).ca_bundle is None

    def test_client_certificate_is_carried(self) -> None:
        tls = tls_for_alert(claimed(cert="/c.pem", key="/k.pem"), Settings())
        assert (tls.client_cert, tls.client_key) == ("/c.pem", "/k.pem")

    def test_system_context_verifies(self) -> None:
        context = TlsConfig().ssl_context()
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname

    def test_missing_ca_bundle_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"CA bundle .*missing\.pem"):
            TlsConfig(ca_bundle=str(tmp_path / "missing.pem")).ssl_context()

    def test_bad_client_certificate_is_a_config_error(self, tmp_path: Path) -> None:
        bad = tmp_path / "client.pem"
        bad.write_text("not a certificate")
        with pytest.raises(ConfigError, match=r"client certificate .*client\.pem"):
            TlsConfig(client_cert=str(bad)).ssl_context()


class TestTransports:
    """One transport per distinct TLS set-up, reused, all closed together."""

    def test_one_transport_per_tls_config(self) -> None:
        made: list[TlsConfig] = []
        closed: list[TlsConfig] = []

        class Recording(MockTransport):
            def __init__(self, tls: TlsConfig) -> None:
                super().__init__(answer(204))
                self.tls = tls

            async def aclose(self) -> None:
                closed.append(self.tls)

        def factory(tls: TlsConfig) -> DeliveryTransport:
            made.append(tls)
            return Recording(tls)

        async def run() -> None:
            transports = Transports(factory)
            first = transports.get(TlsConfig())
            assert transports.get(TlsConfig()) is first
            assert transports.get(TlsConfig(ca_bundle="/ca.pem")) is not first
            assert len(transports) == 2
            await transports.aclose()
            assert len(transports) == 0

        asyncio.run(run())
        assert made == [TlsConfig(), TlsConfig(ca_bundle="/ca.pem")]
        assert sorted(closed, key=str) == sorted(made, key=str)

    def test_a_proxy_setting_is_refused_by_the_default_transports(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
        with pytest.raises(ConfigError, match=r"https_proxy is set.*does not use proxies"):
            Transports()
        Transports(lambda _tls: MockTransport(answer(204)))  # tests' fakes: no network

    def test_an_empty_proxy_setting_is_no_proxy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTPS_PROXY", "")
        assert len(Transports()) == 0

    def test_default_factory_verifies(self) -> None:
        transport = default_transport_factory(TlsConfig())
        assert isinstance(transport, KeepAliveTransport)
