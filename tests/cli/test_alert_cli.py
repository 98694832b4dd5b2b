"""``chfw alert render|verify``: what an integrator runs on a CS06 answer and a received alert."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from chfw.cli import app
from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.core.gbcs import encode_response

runner = CliRunner()
SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"
CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")
SU = Eui64.parse("90-B3-D5-1F-30-01-00-00")


def response_hex(result: ActivationResult, version: str = "02010300") -> str:
    return encode_response(
        device_id=CH,
        recipient=SU,
        counter=1234,
        result=result,
        firmware_version=FirmwareVersion.parse(version),
    ).hex()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "keys"
    assert runner.invoke(app, ["keys", "create", "--out", str(out)]).exit_code == 0
    return out / "signing-key.pem", out / "signing-cert.pem"


def render(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["alert", "render", *args])
    return result.exit_code, result.stdout, result.stderr


class TestRender:
    """Render picks N64 or N999 by DUIS version and refuses outcomes that send nothing."""

    @pytest.mark.parametrize(("version", "code"), [("5.0", "N999"), ("5.1", "N64"), ("5.4", "N64")])
    def test_alert_by_version(self, version: str, code: str) -> None:
        status, out, _ = render(
            "--gbcs", response_hex(ActivationResult.SUCCESS), "--duis-version", version
        )
        assert status == 0
        root = etree.fromstring(out.strip().encode())
        assert root.get("schemaVersion") == version
        assert root.findtext(f"{SR}Body/{SR}DCCAlertMessage/{SR}DCCAlertCode") == code
        assert root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None
        assert f"{CH}:1234" in root.findtext(f"{SR}Header/{SR}ResponseID")

    @pytest.mark.parametrize(
        "result", [ActivationResult.HASH_MISMATCH, ActivationResult.NO_IMAGE_HELD]
    )
    def test_failure_exits_1(self, result: ActivationResult) -> None:
        status, out, err = render("--gbcs", response_hex(result), "--duis-version", "5.1")
        assert status == 1
        assert out == ""
        assert "no alert" in err

    @pytest.mark.parametrize("version", ["5.0", "5.1"])
    def test_version_longer_than_duis_carries_renders_neither_n64_nor_n999(
        self, version: str
    ) -> None:
        status, out, err = render(
            "--gbcs",
            response_hex(ActivationResult.SUCCESS, "0102030405"),
            "--duis-version",
            version,
        )
        assert status == 1
        assert out == ""
        assert "0102030405 has 5 octets" in err
        assert "no N64 or N999" in err

    def test_bad_input_exits_2_without_traceback(self) -> None:
        status, _, err = render("--gbcs", "DF09", "--duis-version", "5.1")
        assert status == 2
        assert "offset" in err
        assert "Traceback" not in err

    def test_unsupported_duis_version(self) -> None:
        status, _, err = render(
            "--gbcs", response_hex(ActivationResult.SUCCESS), "--duis-version", "4.2"
        )
        assert status == 2
        assert "not supported" in err

    def test_key_without_cert_is_refused(self, keys: tuple[Path, Path]) -> None:
        status, _, err = render(
            "--gbcs",
            response_hex(ActivationResult.SUCCESS),
            "--duis-version",
            "5.1",
            "--sign-key",
            str(keys[0]),
        )
        assert status == 2
        assert "go together" in err


class TestVerify:
    """Verify accepts what render signed and rejects anything altered or untrusted."""

    def _signed(self, tmp_path: Path, keys: tuple[Path, Path], version: str = "5.1") -> Path:
        status, out, _ = render(
            "--gbcs",
            response_hex(ActivationResult.SUCCESS),
            "--duis-version",
            version,
            "--sign-key",
            str(keys[0]),
            "--sign-cert",
            str(keys[1]),
        )
        assert status == 0
        path = tmp_path / "alert.xml"
        path.write_text(out.strip())
        return path

    def test_signed_render_verifies(self, tmp_path: Path, keys: tuple[Path, Path]) -> None:
        path = self._signed(tmp_path, keys)
        result = runner.invoke(app, ["alert", "verify", str(path), "--trust", str(keys[1])])
        assert result.exit_code == 0, result.output
        assert "valid" in result.stdout

    def test_tampered_fails(self, tmp_path: Path, keys: tuple[Path, Path]) -> None:
        path = self._signed(tmp_path, keys)
        path.write_text(path.read_text().replace("02010300", "02010301"))
        result = runner.invoke(app, ["alert", "verify", str(path), "--trust", str(keys[1])])
        assert result.exit_code == 1
        assert "digest mismatch" in result.stderr

    def test_untrusted_signer_fails(self, tmp_path: Path, keys: tuple[Path, Path]) -> None:
        path = self._signed(tmp_path, keys)
        other = tmp_path / "other"
        runner.invoke(app, ["keys", "create", "--out", str(other)])
        result = runner.invoke(
            app, ["alert", "verify", str(path), "--trust", str(other / "signing-cert.pem")]
        )
        assert result.exit_code == 1
        assert "signer" in result.stderr

    def test_wrong_version_schema_fails(self, tmp_path: Path, keys: tuple[Path, Path]) -> None:
        path = self._signed(tmp_path, keys)
        result = runner.invoke(
            app,
            ["alert", "verify", str(path), "--trust", str(keys[1]), "--duis-version", "5.0"],
        )
        assert result.exit_code == 1

    def test_official_schemas(
        self, tmp_path: Path, keys: tuple[Path, Path], dcc_reference: Path
    ) -> None:
        """Signed N64 (5.1) and N999 (5.0) pass DCC's own XSDs through the CLI."""
        for version in ("5.1", "5.0"):
            path = self._signed(tmp_path, keys, version)
            result = runner.invoke(
                app,
                [
                    "alert",
                    "verify",
                    str(path),
                    "--trust",
                    str(keys[1]),
                    "--xsd-dir",
                    str(dcc_reference / "xsd"),
                ],
            )
            assert result.exit_code == 0, result.output

    def test_dcc_signed_sample_signature(self, dcc_reference: Path) -> None:
        """DCC's own signed response passes signature and official schema checks."""
        samples = dcc_reference / "duis-samples"
        result = runner.invoke(
            app,
            [
                "alert",
                "verify",
                str(samples / "dccboxed-readfw-response-signed.xml"),
                "--trust",
                str(samples / "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem"),
                "--xsd-dir",
                str(dcc_reference / "xsd"),
            ],
        )
        assert result.exit_code == 0, result.output
