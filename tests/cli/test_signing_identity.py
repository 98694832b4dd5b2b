"""Issue 20: `chfw serve` and `chfw worker` refuse an expired or not-yet-valid signing
certificate (naming the file, its dates and the fix) and warn from 30 days before expiry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import Engine

from chfw.cli.serve import serve
from chfw.cli.worker import worker
from chfw.core.signing import create_development_identity
from chfw.dsp.runtime import expiry_warning, load_signer
from chfw.exceptions import ConfigError
from chfw.shared.config import Settings
from tests.cli.dbcli import CliDb, cli_db
from tests.dsp.delivery.helpers import SUPPLIER_A, add_user, alert, enqueue
from tests.dsp.delivery.receiver import ScriptedReceiver

serve_app = typer.Typer()
serve_app.command()(serve)
worker_app = typer.Typer()
worker_app.command()(worker)

NOW = dt.datetime.now(dt.UTC)


def identity(
    folder: Path, *, start: dt.datetime, days: float, monkeypatch: pytest.MonkeyPatch | None = None
) -> Settings:
    """Signing files whose certificate is valid from ``start`` - 5 min for ``days`` days."""
    key_pem, cert_pem = create_development_identity(
        "chfw DSP signer", now=start, validity=dt.timedelta(days=days)
    )
    key, cert = folder / "signing-key.pem", folder / "signing-cert.pem"
    key.write_bytes(key_pem)
    key.chmod(0o600)
    cert.write_bytes(cert_pem)
    if monkeypatch is not None:
        monkeypatch.setenv("CHFW_SIGNING_KEY", str(key))
        monkeypatch.setenv("CHFW_SIGNING_CERT", str(cert))
    return Settings(signing_key=str(key), signing_cert=str(cert))


EXPIRED = {"start": NOW - dt.timedelta(days=400), "days": 365}
NOT_YET_VALID = {"start": NOW + dt.timedelta(days=2), "days": 365}
EXPIRING = {"start": NOW - dt.timedelta(days=355), "days": 365}  # 10 days left
FINE = {"start": NOW, "days": 365}


class TestLoadSigner:
    def test_expired_is_refused(self, tmp_path: Path) -> None:
        settings = identity(tmp_path, **EXPIRED)  # type: ignore[arg-type]
        with pytest.raises(ConfigError) as refused:
            load_signer(settings)
        message = str(refused.value)
        assert str(settings.signing_cert) in message
        assert "expired at" in message
        assert "notAfter" in message
        assert "chfw keys rotate" in message

    def test_not_yet_valid_is_refused(self, tmp_path: Path) -> None:
        settings = identity(tmp_path, **NOT_YET_VALID)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"is not valid before .* \(notBefore\)"):
            load_signer(settings)

    def test_warning_from_30_days_before(self, tmp_path: Path) -> None:
        settings = identity(tmp_path, **FINE)  # type: ignore[arg-type]
        signer = load_signer(settings)
        assert expiry_warning(signer, settings.signing_cert) is None
        not_after = signer.certificate.not_valid_after_utc
        assert expiry_warning(signer, "x", not_after - dt.timedelta(days=31)) is None
        warning = expiry_warning(signer, "x", not_after - dt.timedelta(days=29))
        assert warning is not None
        assert "x expires at" in warning
        assert "in 29.0 days" in warning
        # The boundary itself: the day it runs out, loading is refused.
        with pytest.raises(ConfigError, match="expired"):
            load_signer(settings, now=not_after)


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


class TestServe:
    def test_refuses_an_expired_certificate(
        self, cli: CliDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = identity(tmp_path, **EXPIRED, monkeypatch=monkeypatch)  # type: ignore[arg-type]
        result = cli.invoke(serve_app)
        assert result.exit_code == 1
        assert f"signing certificate {settings.signing_cert} expired at" in result.stderr
        assert "Traceback" not in result.output

    def test_refuses_a_certificate_not_yet_valid(
        self, cli: CliDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        identity(tmp_path, **NOT_YET_VALID, monkeypatch=monkeypatch)  # type: ignore[arg-type]
        result = cli.invoke(serve_app)
        assert result.exit_code == 1
        assert "is not valid before" in result.stderr

    def test_warns_before_expiry_and_serves(
        self, cli: CliDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = identity(tmp_path, **EXPIRING, monkeypatch=monkeypatch)  # type: ignore[arg-type]
        served: list[object] = []
        monkeypatch.setattr("chfw.shared.serving.serve", lambda app, *_args: served.append(app))
        result = cli.invoke(serve_app)
        assert result.exit_code == 0, result.output
        assert f"warning: signing certificate {settings.signing_cert} expires at" in result.stderr
        assert len(served) == 1


class TestWorker:
    def test_refuses_an_expired_certificate(
        self, cli: CliDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = identity(tmp_path, **EXPIRED, monkeypatch=monkeypatch)  # type: ignore[arg-type]
        result = cli.invoke(worker_app, "--once")
        assert result.exit_code == 1
        assert f"signing certificate {settings.signing_cert} expired at" in result.stderr
        assert "CHFW_SIGNING_CERT" in result.stderr

    def test_warns_before_expiry_and_delivers(
        self, cli: CliDb, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        identity(tmp_path, **EXPIRING, monkeypatch=monkeypatch)  # type: ignore[arg-type]
        receiver = ScriptedReceiver().start()
        try:
            add_user(engine, SUPPLIER_A, receiver.url())
            enqueue(engine, [alert("R-1")], NOW)
            result = cli.invoke(worker_app, "--once")
        finally:
            receiver.stop()
        assert result.exit_code == 0, result.output
        assert "warning: signing certificate" in result.stderr
        assert "chfw worker: signing with issuer CN=chfw DSP signer" in result.stderr
        assert "delivered 1" in result.stdout

    def test_without_signing_settings_it_says_so(self, cli: CliDb) -> None:
        result = cli.invoke(worker_app, "--once")
        assert result.exit_code == 0, result.output
        assert "never re-signed" in result.stderr
