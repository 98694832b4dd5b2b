"""``chfw keys create``: a usable development key pair, written safely, never overwritten."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner

from chfw.cli.keys import CERT_FILE, KEY_FILE, app
from chfw.core.signing import PemSigner, TrustStore, sign_canonical, verify_document
from tests.core.signing.builders import N64_DOCUMENT

runner = CliRunner()


class TestKeysCreate:
    """keys create writes a P-256 PKCS#8 key (0600) and its self-signed certificate."""

    def test_creates_a_working_pair_in_a_new_directory(self, tmp_path: Path) -> None:
        out = tmp_path / "deep" / "keys"
        result = runner.invoke(app, ["create", "--out", str(out)])
        assert result.exit_code == 0, result.output
        key_path, cert_path = out / KEY_FILE, out / CERT_FILE
        assert str(key_path) in result.output
        assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        signer = PemSigner.from_files(key_path, cert_path)
        trust = TrustStore.from_files(cert_path)
        assert verify_document(sign_canonical(N64_DOCUMENT, signer), trust).content == (
            N64_DOCUMENT
        )

    def test_common_name_option(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["create", "--out", str(tmp_path), "--common-name", "DSP test"])
        assert result.exit_code == 0, result.output
        cert = x509.load_pem_x509_certificate((tmp_path / CERT_FILE).read_bytes())
        assert cert.issuer.rfc4514_string() == "CN=DSP test"

    def test_refuses_to_overwrite(self, tmp_path: Path) -> None:
        assert runner.invoke(app, ["create", "--out", str(tmp_path)]).exit_code == 0
        before = (tmp_path / KEY_FILE).read_bytes(), (tmp_path / CERT_FILE).read_bytes()
        result = runner.invoke(app, ["create", "--out", str(tmp_path)])
        assert result.exit_code == 1
        assert "refusing to overwrite" in result.output
        assert "Traceback" not in result.output
        assert ((tmp_path / KEY_FILE).read_bytes(), (tmp_path / CERT_FILE).read_bytes()) == before

    def test_refuses_when_only_the_certificate_exists(self, tmp_path: Path) -> None:
        (tmp_path / CERT_FILE).write_text("keep me")
        result = runner.invoke(app, ["create", "--out", str(tmp_path)])
        assert result.exit_code == 1
        assert f"{tmp_path / CERT_FILE} already exists" in result.output
        assert not (tmp_path / KEY_FILE).exists()

    def test_out_is_a_file(self, tmp_path: Path) -> None:
        target = tmp_path / "file"
        target.write_text("x")
        result = runner.invoke(app, ["create", "--out", str(target)])
        assert result.exit_code == 2
        assert "is a file" in result.output

    def test_out_is_required(self) -> None:
        result = runner.invoke(app, ["create"])
        assert result.exit_code == 2
        assert "--out" in result.output


class TestKeysRotate:
    """keys rotate: a new pair in a new directory, and the steps of a rollover."""

    def test_new_pair_and_instructions(self, tmp_path: Path) -> None:
        assert runner.invoke(app, ["create", "--out", str(tmp_path / "old")]).exit_code == 0
        out = tmp_path / "new"
        result = runner.invoke(app, ["rotate", "--out", str(out)])
        assert result.exit_code == 0, result.output
        old = PemSigner.from_files(tmp_path / "old" / KEY_FILE, tmp_path / "old" / CERT_FILE)
        new = PemSigner.from_files(out / KEY_FILE, out / CERT_FILE)
        assert new.serial_number != old.serial_number
        assert f"CHFW_SIGNING_KEY={(out / KEY_FILE).resolve()}" in result.output
        assert f'signing_cert = "{(out / CERT_FILE).resolve()}"' in result.output
        assert "SIGHUP" in result.output
        assert "--trust OLD.pem --trust NEW.pem" in result.output

    def test_refuses_to_overwrite(self, tmp_path: Path) -> None:
        assert runner.invoke(app, ["create", "--out", str(tmp_path)]).exit_code == 0
        result = runner.invoke(app, ["rotate", "--out", str(tmp_path)])
        assert result.exit_code == 1
        assert "refusing to overwrite" in result.output
