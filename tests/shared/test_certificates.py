"""Start-up checks of certificate files: each problem named with its file and fix."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from chfw.core.signing import create_development_identity, serial_hex
from chfw.exceptions import ConfigError
from chfw.shared.certificates import check_server_certificate, describe_signers
from chfw.shared.handshakes import HandshakeFailures
from tests.pki import Pki

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


class TestServerCertificate:
    def test_a_good_pair(self, pki: Pki) -> None:
        certificate = check_server_certificate(pki.server_cert, pki.server_key, NOW)
        assert certificate.subject.rfc4514_string() == "CN=server"

    def test_key_in_the_certificate_file(self, pki: Pki, tmp_path: Path) -> None:
        both = tmp_path / "both.pem"
        both.write_bytes(pki.server_cert.read_bytes() + pki.server_key.read_bytes())
        check_server_certificate(both, None, NOW)

    def test_encrypted_key(self, pki: Pki, tmp_path: Path) -> None:
        key = serialization.load_pem_private_key(pki.server_key.read_bytes(), None)
        locked = tmp_path / "locked.key"
        locked.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        with pytest.raises(ConfigError, match=r"locked\.key is encrypted"):
            check_server_certificate(pki.server_cert, locked, NOW)

    def test_missing_file(self, pki: Pki, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"cannot read TLS key file .*nope\.key"):
            check_server_certificate(pki.server_cert, tmp_path / "nope.key", NOW)

    def test_expiry_is_checked_against_the_given_time(self, pki: Pki) -> None:
        with pytest.raises(ConfigError, match="expired on"):
            check_server_certificate(pki.server_cert, pki.server_key, NOW + dt.timedelta(days=9))


class TestSigners:
    def test_not_yet_valid_is_listed_with_a_note(self, tmp_path: Path) -> None:
        _, pem = create_development_identity("Next", now=NOW + dt.timedelta(days=3))
        certificate = x509.load_pem_x509_certificate(pem)
        (line,) = describe_signers([(tmp_path / "next.pem", [certificate])], NOW)
        assert f"serial={serial_hex(certificate.serial_number)}" in line
        assert "NOT YET VALID" in line

    def test_serial_hex_is_whole_octets(self) -> None:
        assert [serial_hex(n) for n in (0, 10, 255, 256, 0xABCDE)] == [
            "00",
            "0A",
            "FF",
            "0100",
            "0ABCDE",
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestHandshakeFailures:
    def test_every_failure_counted_one_line_a_minute(self) -> None:
        reasons: list[str] = []
        clock = Clock()
        watch = HandshakeFailures(reasons.append, every=60.0, clock=clock)
        error = ssl.SSLError(1, "peer did not return a certificate")
        error.reason = "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        with capture_logs() as logs:
            for second in (0.0, 1.0, 30.0, 61.0):
                clock.now = second
                watch.failed(error)
        assert reasons == ["PEER_DID_NOT_RETURN_A_CERTIFICATE"] * 4
        assert watch.total == 4
        assert [line["failures_since_last_line"] for line in logs] == [1, 3]
        assert all("client certificate" in line["hint"] for line in logs)
