"""HTTPS and mutual TLS: a self-made CA, a server certificate for 127.0.0.1, a DSP client cert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.exceptions import ConfigError
from chfw.shared.serving import tls_options as _tls_options
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.pki import Pki
from tests.supplier.helpers import Dsp, Served, count_rows


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mtls_receiver(engine: Engine, dsp: Dsp, pki: Pki) -> Iterator[Served]:
    app = create_receiver_app(ReceiverConfig(trust=dsp.trust), engine)
    options = _tls_options(pki.server_cert, pki.server_key, pki.ca)
    server = Served(app, ssl=options).start()
    yield server
    server.stop()


class TestMutualTls:
    """With a client CA configured, only a DSP presenting a certificate from it gets through."""

    def test_client_with_certificate_is_served(
        self, mtls_receiver: Served, pki: Pki, dsp: Dsp, engine: Engine
    ) -> None:
        answer = mtls_receiver.post(dsp.n64(), verify=pki.client_context(with_certificate=True))
        assert answer.status_code == 204
        assert count_rows(engine, "bo_alerts") == 1

    def test_client_without_certificate_is_refused(
        self, mtls_receiver: Served, pki: Pki, dsp: Dsp, engine: Engine
    ) -> None:
        with pytest.raises(httpx.TransportError):
            mtls_receiver.post(dsp.n64(), verify=pki.client_context(with_certificate=False))
        assert count_rows(engine, "bo_alerts") == 0

    def test_plain_http_is_not_spoken(self, mtls_receiver: Served, dsp: Dsp) -> None:
        url = mtls_receiver.url().replace("https://", "http://")
        with pytest.raises(httpx.TransportError):
            httpx.post(url, content=dsp.n64(), timeout=5)


class TestTlsOptions:
    """The serve command's TLS options are checked before the server starts."""

    def test_no_tls(self) -> None:
        assert _tls_options(None, None, None) == {}

    def test_server_only(self, pki: Pki) -> None:
        options = _tls_options(pki.server_cert, pki.server_key, None)
        assert options == {"ssl_certfile": str(pki.server_cert), "ssl_keyfile": str(pki.server_key)}

    def test_key_without_certificate(self, pki: Pki) -> None:
        with pytest.raises(ConfigError, match="need --tls-cert"):
            _tls_options(None, pki.server_key, None)

    def test_unreadable_files_are_named(self, pki: Pki, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"cannot read TLS certificate file .*missing\.pem"):
            _tls_options(tmp_path / "missing.pem", None, None)
        with pytest.raises(ConfigError, match="client CA file"):
            _tls_options(pki.server_cert, pki.server_key, tmp_path / "missing-ca.pem")
