"""Start-up checks of certificate files, with messages that name the file and the fix.

A server started with an expired certificate, or with its certificate and key
swapped, used to start silently (only its clients noticed) or fail with
OpenSSL's ``[SSL] PEM lib``. These checks run before anything is served:

- :func:`check_server_certificate`: the certificate file holds a certificate
  that is valid now, and the key (its own file, or the same one) is an
  unencrypted private key that belongs to it;
- :func:`describe_signers`: one line per trusted signing certificate (subject,
  serial in hex as ``openssl x509 -serial`` prints it, validity), refusing an
  expired one.

``now`` is passed in (the caller's clock); the files are read here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from chfw.core.signing import serial_hex
from chfw.exceptions import ConfigError

_CERT = b"-----BEGIN CERTIFICATE-----"
_KEY_MARK = b"PRIVATE KEY-----"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def validity_problem(certificate: x509.Certificate, now: dt.datetime) -> str | None:
    """'expired on …' or 'not valid before …', or None when valid at ``now``."""
    if now < certificate.not_valid_before_utc:
        return f"is not valid before {_when(certificate.not_valid_before_utc)}"
    if now > certificate.not_valid_after_utc:
        return f"expired on {_when(certificate.not_valid_after_utc)}"
    return None


def describe(certificate: x509.Certificate) -> str:
    """Subject, serial (hex, as openssl prints it) and validity, on one line."""
    return (
        f"{_subject(certificate)}, serial={serial_hex(certificate.serial_number)}, "
        f"valid {_when(certificate.not_valid_before_utc)} to "
        f"{_when(certificate.not_valid_after_utc)}"
    )


def _server_certificate(cert: Path, blob: bytes) -> x509.Certificate:
    if _CERT not in blob:
        if _KEY_MARK in blob:
            raise ConfigError(
                f"TLS certificate file {cert} holds a private key, not a certificate: "
                "are --tls-cert and --tls-key swapped?"
            )
        raise ConfigError(
            f"TLS certificate file {cert} holds no PEM certificate "
            "('-----BEGIN CERTIFICATE-----'); give the server's certificate chain"
        )
    try:
        return x509.load_pem_x509_certificates(blob)[0]
    except ValueError as exc:
        raise ConfigError(f"TLS certificate file {cert} cannot be read: {exc}") from None


def _private_key(key: Path, blob: bytes, cert: Path) -> PrivateKeyTypes:
    if _KEY_MARK not in blob:
        if key == cert:
            raise ConfigError(
                f"TLS certificate file {cert} holds no private key: give the key with --tls-key"
            )
        if _CERT in blob:
            raise ConfigError(
                f"TLS key file {key} holds a certificate, not a private key: "
                "are --tls-cert and --tls-key swapped?"
            )
        raise ConfigError(f"TLS key file {key} holds no PEM private key")
    start = blob.index(b"-----BEGIN", max(0, blob.index(_KEY_MARK) - 40))
    try:
        return serialization.load_pem_private_key(blob[start:], password=None)
    except TypeError:
        raise ConfigError(
            f"TLS key file {key} is encrypted (password-protected); the server reads it "
            f"unattended: decrypt it (e.g. `openssl pkey -in {key} -out key.pem`) and keep it "
            "readable by the service only"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"TLS key file {key} cannot be read as a private key: {exc}") from None


def _spki(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:  # pragma: no cover - every key type cryptography loads has it
        return b""
    data: bytes = public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def check_server_certificate(cert: Path, key: Path | None, now: dt.datetime) -> x509.Certificate:
    """The server's certificate, after checking it is valid at ``now`` and ``key`` is its key.

    ``key`` None: the key is in ``cert``'s file. Raises ConfigError naming the
    file and the problem: unreadable, swapped, no key, encrypted key, a key of
    another certificate, expired or not yet valid.
    """
    cert_blob = _read(cert, "TLS certificate file")
    certificate = _server_certificate(cert, cert_blob)
    key_path = key or cert
    key_blob = cert_blob if key is None else _read(key, "TLS key file")
    private = _private_key(key_path, key_blob, cert)
    if _spki(private.public_key()) != _spki(certificate.public_key()):
        raise ConfigError(
            f"TLS key file {key_path} does not belong to certificate {cert} "
            f"({_subject(certificate)}): give the key the certificate was issued for"
        )
    problem = validity_problem(certificate, now)
    if problem is not None:
        raise ConfigError(
            f"TLS certificate {cert} ({_subject(certificate)}) {problem}: "
            "renew it (the DSP refuses an invalid certificate)"
        )
    return certificate


def describe_signers(
    files: Iterable[tuple[Path, Iterable[x509.Certificate]]], now: dt.datetime
) -> list[str]:
    """One line per trusted signing certificate; ConfigError for an expired one.

    A certificate not valid *yet* is listed with a note, not refused: a supplier
    may install the DSP's next certificate before the DSP starts using it.
    """
    lines: list[str] = []
    for path, certificates in files:
        for certificate in certificates:
            problem = validity_problem(certificate, now)
            if problem is not None and now > certificate.not_valid_after_utc:
                raise ConfigError(
                    f"trusted signer {_subject(certificate)} "
                    f"(serial={serial_hex(certificate.serial_number)}) in {path} {problem}: "
                    "alerts it signed are refused; get the DSP's current signing certificate "
                    "and give it with --trust"
                )
            note = f" (NOT YET VALID: it {problem})" if problem else ""
            lines.append(f"trusted signer: {describe(certificate)} [{path}]{note}")
    return lines
