"""HTTPS and mutual TLS: a self-made CA, a server certificate for 127.0.0.1, a DSP client cert."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.engine import Engine

from chfw.exceptions import ConfigError
from chfw.receiver.app import create_receiver_app
from chfw.receiver.pipeline import ReceiverConfig
from chfw.serving import tls_options as _tls_options
from tests.receiver.helpers import Dsp, Served, count_rows

_START = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_pair(
    folder: Path, stem: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class Pki:
    """A CA and the server and client certificates it issued, as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def create(cls, folder: Path) -> Pki:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("test supplier CA"))
            .issuer_name(_name("test supplier CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_START)
            .not_valid_after(_START + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_path = folder / "ca.pem"
        ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

        def issue(
            common_name: str, usage: x509.ObjectIdentifier, san: x509.GeneralName
        ) -> tuple[Path, Path]:
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = (
                x509.CertificateBuilder()
                .subject_name(_name(common_name))
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(_START)
                .not_valid_after(_START + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
            return _write_pair(folder, common_name.replace(" ", "-"), key, certificate)

        server_cert, server_key = issue(
            "receiver",
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        )
        client_cert, client_key = issue(
            "dsp client", ExtendedKeyUsageOID.CLIENT_AUTH, x509.DNSName("dsp.example")
        )
        return cls(ca_path, server_cert, server_key, client_cert, client_key)

    def client_context(self, *, with_certificate: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if with_certificate:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


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
        with pytest.raises(ConfigError, match="cannot use TLS certificate"):
            _tls_options(tmp_path / "missing.pem", None, None)
        with pytest.raises(ConfigError, match="client CA file"):
            _tls_options(pki.server_cert, pki.server_key, tmp_path / "missing-ca.pem")
