"""Issue 20: the signing certificate's expiry on /metrics and on the DSP dashboard's overview."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy.engine import Engine

from chfw.core.duis import bundled_schemas
from chfw.core.signing import PemSigner, create_development_identity
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.intake import create_app
from chfw.dsp.processing import ActivationService
from chfw.dsp.web.overview import signing_line
from chfw.shared.config import Settings
from tests.shared.test_metrics import scrape, value
from tests.sim.live import serve
from tests.small_dsp import DCC, Sequential
from tests.web.conftest import TOKEN

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def signer(days_left: float) -> PemSigner:
    key_pem, cert_pem = create_development_identity(
        "chfw DSP signer", now=NOW - 300 * DAY, validity=(300 + days_left) * DAY
    )
    return PemSigner.from_pem(key_pem, cert_pem)


def service(engine: Engine, identity: PemSigner) -> ActivationService:
    return ActivationService(engine, AlertBuilder(DCC, identity, bundled_schemas()), Sequential())


class TestServed:
    def test_metric_and_dashboard_line(self, engine: Engine) -> None:
        identity = signer(days_left=10)
        app = create_app(
            Settings(dashboard_token=TOKEN, stats_cache_seconds=0), service(engine, identity)
        )
        with serve(app) as base:
            samples = scrape(base)
            with httpx.Client(base_url=base, timeout=10) as client:
                assert client.post("/dashboard/login", data={"token": TOKEN}).status_code == 303
                page = client.get("/dashboard/").text
        left = value(
            samples,
            "chfw_signing_certificate_expiry_seconds",
            issuer="CN=chfw DSP signer",
            serial=str(identity.serial_number),
        )
        assert 9 * 86400 < left <= 10 * 86400
        assert 'id="signing-certificate"' in page
        assert f"serial {identity.serial_number}" in page
        assert 'class="error" role="alert" id="signing-certificate"' in page
        assert "Roll over to a new key" in page


class TestLine:
    def test_quiet_while_far_from_expiry(self) -> None:
        line = signing_line(signer(days_left=200).certificate, NOW)
        assert 'class="hint"' in line
        assert "(in 200 days)" in line or "(in 199 days)" in line

    def test_expired(self) -> None:
        certificate = signer(days_left=10).certificate
        line = signing_line(certificate, NOW + 11 * DAY)
        assert "EXPIRED" in line
        assert 'class="error"' in line
