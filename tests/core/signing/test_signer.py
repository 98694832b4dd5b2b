"""Signers: PEM loading with actionable errors, raw r‖s output, development identities."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from chfw.core.signing import PemSigner, Signer, create_development_identity
from chfw.core.signing.signer import der_to_raw
from chfw.exceptions import SigningError
from tests.core.signing.builders import RecordingSigner, certificate, key_pem, p256_key, pem


class TestPemSigner:
    """A P-256 key and its certificate sign; anything else fails with a message saying what."""

    def test_signs_raw_r_s_that_verifies(self, signer: PemSigner) -> None:
        raw = signer.sign(b"octets")
        assert len(raw) == 64
        public_key = signer.certificate.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        public_key.verify(der, b"octets", ec.ECDSA(hashes.SHA256()))

    def test_exposes_issuer_and_serial_of_its_certificate(self, signer: PemSigner) -> None:
        assert signer.issuer_name == signer.certificate.issuer.rfc4514_string()
        assert signer.serial_number == signer.certificate.serial_number
        assert str(signer.serial_number) in repr(signer)

    def test_is_a_signer(self, signer: PemSigner) -> None:
        assert isinstance(signer, Signer)
        assert isinstance(RecordingSigner(signer), Signer)

    def test_from_files(self, tmp_path: Path, identity: tuple[bytes, bytes]) -> None:
        (tmp_path / "k.pem").write_bytes(identity[0])
        (tmp_path / "c.pem").write_bytes(identity[1])
        loaded = PemSigner.from_files(tmp_path / "k.pem", tmp_path / "c.pem")
        assert loaded.certificate == x509.load_pem_x509_certificate(identity[1])

    def test_missing_file_is_named(self, tmp_path: Path, identity: tuple[bytes, bytes]) -> None:
        (tmp_path / "c.pem").write_bytes(identity[1])
        with pytest.raises(SigningError, match=r"signing key file .*absent\.pem"):
            PemSigner.from_files(tmp_path / "absent.pem", tmp_path / "c.pem")

    def test_key_not_matching_certificate(self, identity: tuple[bytes, bytes]) -> None:
        with pytest.raises(SigningError, match="does not match the certificate"):
            PemSigner.from_pem(key_pem(p256_key()), identity[1])

    def test_mismatch_from_files_names_both_files(
        self, tmp_path: Path, identity: tuple[bytes, bytes]
    ) -> None:
        (tmp_path / "other.pem").write_bytes(key_pem(p256_key()))
        (tmp_path / "c.pem").write_bytes(identity[1])
        with pytest.raises(SigningError, match=r"other\.pem.*c\.pem"):
            PemSigner.from_files(tmp_path / "other.pem", tmp_path / "c.pem")

    def test_p384_key_refused(self) -> None:
        key = ec.generate_private_key(ec.SECP384R1())
        cert = certificate(key)  # type: ignore[arg-type]
        with pytest.raises(SigningError, match=r"P-256.*got EC secp384r1"):
            PemSigner.from_pem(key_pem(key), pem(cert))  # type: ignore[arg-type]

    def test_rsa_key_refused(self, identity: tuple[bytes, bytes]) -> None:
        rsa_pem = rsa.generate_private_key(65537, 2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(SigningError, match=r"P-256.*RSAPrivateKey"):
            PemSigner.from_pem(rsa_pem, identity[1])

    def test_unreadable_key(self, identity: tuple[bytes, bytes]) -> None:
        with pytest.raises(SigningError, match="not a readable PEM private key"):
            PemSigner.from_pem(b"garbage", identity[1])

    def test_unreadable_certificate(self, identity: tuple[bytes, bytes]) -> None:
        with pytest.raises(SigningError, match=r"not a readable PEM X\.509 certificate"):
            PemSigner.from_pem(identity[0], b"garbage")

    def test_encrypted_key(self, identity: tuple[bytes, bytes]) -> None:
        key = serialization.load_pem_private_key(identity[0], None)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        with pytest.raises(SigningError, match="give the password"):
            PemSigner.from_pem(encrypted, identity[1])
        assert PemSigner.from_pem(encrypted, identity[1], password=b"secret").serial_number > 0


class TestDerToRaw:
    """The hand-sliced DER reader agrees with cryptography's for every r and s."""

    @given(
        r=st.one_of(st.integers(1, 2**256 - 1), st.integers(1, 2**40)),
        s=st.one_of(st.integers(1, 2**256 - 1), st.sampled_from([1, 2**255, 2**256 - 1])),
    )
    def test_matches_decode_dss_signature(self, r: int, s: int) -> None:
        raw = der_to_raw(encode_dss_signature(r, s))
        assert (int.from_bytes(raw[:32]), int.from_bytes(raw[32:])) == (r, s)

    def test_real_signatures(self) -> None:
        key = p256_key()
        for message in (b"a", b"b", b"c", b"d"):
            der = key.sign(message, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            assert der_to_raw(der) == r.to_bytes(32) + s.to_bytes(32)


class TestDevelopmentIdentity:
    """Development identities: a PKCS#8 P-256 key and a self-signed ten-year certificate."""

    def test_key_and_certificate(self) -> None:
        now = dt.datetime(2030, 5, 1, 12, tzinfo=dt.UTC)
        key_bytes, cert_bytes = create_development_identity("dev CN", now=now)
        assert key_bytes.startswith(b"-----BEGIN PRIVATE KEY-----")
        key = serialization.load_pem_private_key(key_bytes, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"
        cert = x509.load_pem_x509_certificate(cert_bytes)
        assert cert.subject == cert.issuer
        assert cert.issuer.rfc4514_string() == "CN=dev CN"
        cert.verify_directly_issued_by(cert)
        assert cert.not_valid_before_utc <= now
        assert dt.timedelta(days=3650) <= cert.not_valid_after_utc - now <= dt.timedelta(days=3660)
        assert PemSigner.from_pem(key_bytes, cert_bytes).certificate == cert

    def test_serials_are_random(self) -> None:
        serials = {
            x509.load_pem_x509_certificate(create_development_identity()[1]).serial_number
            for _ in range(3)
        }
        assert len(serials) == 3

    def test_empty_common_name(self) -> None:
        with pytest.raises(SigningError, match="common name"):
            create_development_identity("")
