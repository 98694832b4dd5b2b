"""A throw-away PKI for TLS tests: a CA, a server certificate for 127.0.0.1/localhost, a client."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Pki:
    """PEM files of a CA and the server and client certificates it issued."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def create(
        cls, folder: Path, *, server_validity: tuple[dt.datetime, dt.datetime] | None = None
    ) -> Pki:
        """``server_validity``: the server certificate's (not before, not after), e.g. past."""
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("test CA"))
            .issuer_name(_name("test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

        def issue(
            stem: str,
            usage: x509.ObjectIdentifier,
            validity: tuple[dt.datetime, dt.datetime] = (start, start + dt.timedelta(days=1)),
        ) -> tuple[Path, Path]:
            key = ec.generate_private_key(ec.SECP256R1())
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            certificate = (
                x509.CertificateBuilder()
                .subject_name(_name(stem))
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(validity[0])
                .not_valid_after(validity[1])
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
            cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
            key_path.write_bytes(_pem_key(key))
            key_path.chmod(0o600)
            return cert_path, key_path

        server = issue("server", ExtendedKeyUsageOID.SERVER_AUTH, *filter(None, [server_validity]))
        client = issue("client", ExtendedKeyUsageOID.CLIENT_AUTH)
        return cls(folder / "ca.pem", *server, *client)

    def client_context(self, *, with_certificate: bool) -> ssl.SSLContext:
        """A client context trusting the CA, presenting the client certificate if asked."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if with_certificate:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context
