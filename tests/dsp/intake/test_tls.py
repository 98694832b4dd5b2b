"""`chfw serve --tls-cert --tls-key --tls-client-ca`: HTTPS, and mutual TLS for CSPs."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chfw.dsp.intake import create_app
from chfw.shared.config import Settings
from chfw.shared.serving import tls_options
from tests.dsp.intake.helpers import NOTHING, stored, valid_message
from tests.dsp.intake.server import running
from tests.pki import Pki
from tests.small_dsp import Dsp


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    return Pki.create(tmp_path_factory.mktemp("intake-pki"))


@pytest.fixture
def mtls_intake(dsp: Dsp, pki: Pki) -> Iterator[str]:
    """The intake over HTTPS, requiring a client certificate from the test CA."""
    tls = tls_options(pki.server_cert, pki.server_key, pki.ca)
    with running(create_app(Settings(), dsp.service), tls=tls) as (host, port):
        yield f"https://{host}:{port}"


def submit(url: str, dsp: Dsp, verify: object) -> httpx.Response:
    return httpx.post(
        f"{url}/csp/v1/messages",
        content=valid_message(),
        headers={
            "content-type": "application/octet-stream",
            "authorization": f"Bearer {dsp.credential}",
        },
        verify=verify,  # type: ignore[arg-type]
        timeout=10,
    )


class TestMutualTls:
    """With a client CA, only a CSP presenting a certificate from it reaches the API."""

    def test_client_with_certificate_is_served(self, mtls_intake: str, pki: Pki, dsp: Dsp) -> None:
        answer = submit(mtls_intake, dsp, pki.client_context(with_certificate=True))
        assert answer.status_code == 200
        assert answer.json()["status"] == "processed"

    def test_client_without_certificate_is_refused(
        self, mtls_intake: str, pki: Pki, dsp: Dsp
    ) -> None:
        with pytest.raises(httpx.TransportError):
            submit(mtls_intake, dsp, pki.client_context(with_certificate=False))
        assert stored(dsp.engine) == NOTHING

    def test_plain_http_is_not_spoken(self, mtls_intake: str, dsp: Dsp) -> None:
        with pytest.raises(httpx.TransportError):
            submit(mtls_intake.replace("https://", "http://"), dsp, True)
        assert stored(dsp.engine) == NOTHING


class TestServerTlsOnly:
    """Without a client CA the intake is plain HTTPS; the bearer credential still applies."""

    def test_no_client_certificate_needed(self, dsp: Dsp, pki: Pki) -> None:
        tls = tls_options(pki.server_cert, pki.server_key, None)
        with running(create_app(Settings(), dsp.service), tls=tls) as (host, port):
            answer = submit(
                f"https://{host}:{port}", dsp, pki.client_context(with_certificate=False)
            )
        assert answer.status_code == 200
