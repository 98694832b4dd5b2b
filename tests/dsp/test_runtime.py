"""chfw.dsp.runtime: the signing key owner-only signing key; settings reach the service."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from chfw.dsp.runtime import build_service, load_signer
from chfw.exceptions import ConfigError
from chfw.shared.config import Settings
from tests.small_dsp import CERT_PEM, KEY_PEM

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file permissions")


def identity(folder: Path, mode: int) -> Settings:
    key, cert = folder / "signing.key", folder / "signing.pem"
    key.write_bytes(KEY_PEM)
    cert.write_bytes(CERT_PEM)
    key.chmod(mode)
    return Settings(signing_key=str(key), signing_cert=str(cert))


@posix_only
class TestKeyPermissions:
    """Like ssh, a key other users can read or write stops the service from starting."""

    @pytest.mark.parametrize("mode", [0o600, 0o400])
    def test_owner_only_is_loaded(self, tmp_path: Path, mode: int) -> None:
        signer = load_signer(identity(tmp_path, mode))
        assert signer.sign(b"data")

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o666])
    def test_open_key_is_refused(self, tmp_path: Path, mode: int) -> None:
        settings = identity(tmp_path, mode)
        with pytest.raises(ConfigError) as refused:
            load_signer(settings)
        message = str(refused.value)
        assert f"{mode:04o}" in message
        assert f"chmod 600 {settings.signing_key}" in message

    def test_certificate_may_be_public(self, tmp_path: Path) -> None:
        settings = identity(tmp_path, 0o600)
        Path(str(settings.signing_cert)).chmod(0o644)
        assert load_signer(settings) is not None


class TestMissing:
    """Without both files configured and present, there is nothing to sign with."""

    def test_unset(self) -> None:
        with pytest.raises(ConfigError, match="signing_key and signing_cert must be set"):
            load_signer(Settings())

    def test_absent_file(self, tmp_path: Path) -> None:
        settings = Settings(signing_key=str(tmp_path / "no.key"), signing_cert=str(tmp_path))
        with pytest.raises(ConfigError, match="does not exist"):
            load_signer(settings)


class TestBuildService:
    def test_intake_concurrency_reaches_the_service(self, tmp_path: Path, engine: Engine) -> None:
        settings = identity(tmp_path, 0o600).replace(intake_concurrency=2)
        service = build_service(settings, engine)
        # SQLite allows one writer: one batch at a time there, whatever the setting.
        expected = 1 if engine.dialect.name == "sqlite" else 2
        assert service.concurrent_batches == expected
