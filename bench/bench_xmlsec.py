"""Issue 2: python-xmlsec (libxmlsec1) against chfw's own signer, same document, same run.

python-xmlsec is not a chfw dependency: it needs libxmlsec1 and an lxml built
against the same libxml2 (`pip install --no-binary lxml,xmlsec lxml xmlsec`
after `apt-get install libxml2-dev libxmlsec1-dev pkg-config`), which the pinned
wheels are not. Run this script with such an environment; it imports chfw from
src/ and needs only lxml and cryptography of chfw's dependencies.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]

import xmlsec  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from lxml import etree  # noqa: E402

from _timing import per_call_seconds  # noqa: E402
from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId  # noqa: E402
from chfw.core.duis import ResponseId, render_n64  # noqa: E402
from chfw.core.signing import (  # noqa: E402
    PemSigner,
    canonical_signed_info,
    create_development_identity,
    sign_canonical,
)

CH = DeviceId.parse("00-DB-12-34-56-78-90-A0")


def main() -> None:
    key_pem, cert_pem = create_development_identity(common_name="bench")
    signer = PemSigner.from_pem(key_pem, cert_pem)
    folder = Path(tempfile.mkdtemp())
    (folder / "key.pem").write_bytes(key_pem)
    xkey = xmlsec.Key.from_file(str(folder / "key.pem"), xmlsec.constants.KeyDataFormatPem)
    document = render_n64(
        response_id=ResponseId(UserId.parse("90-B3-D5-1F-30-00-00-02"), CH, 1),
        device_id=CH,
        firmware_version=FirmwareVersion.parse("0123ABCE"),
        duis_version=DuisVersion(5, 1),
        at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    raw_key = ec.generate_private_key(ec.SECP256R1())
    signed_info = canonical_signed_info(b"\x00" * 32)

    def raw_sign() -> None:
        raw_key.sign(signed_info, ec.ECDSA(hashes.SHA256()))

    def chfw_sign() -> None:
        sign_canonical(document, signer)

    def xmlsec_sign() -> None:
        root = etree.fromstring(document)
        sig = xmlsec.template.create(
            root,
            xmlsec.constants.TransformExclC14N,
            xmlsec.constants.TransformEcdsaSha256,
            ns="ds",
        )
        root.append(sig)
        ref = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="")
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
        info = xmlsec.template.ensure_key_info(sig)
        data = xmlsec.template.add_x509_data(info)
        xmlsec.template.x509_data_add_issuer_serial(data)
        ctx = xmlsec.SignatureContext()
        ctx.key = xkey
        ctx.sign(sig)
        etree.tostring(root)

    times = {
        "raw ECDSA P-256 sign": per_call_seconds(raw_sign),
        "chfw sign_canonical": per_call_seconds(chfw_sign),
        "python-xmlsec sign": per_call_seconds(xmlsec_sign),
    }
    base = times["raw ECDSA P-256 sign"]
    for name, t in times.items():
        print(f"{name:28} {t * 1e6:9.2f} µs {t / base:6.2f}×")


if __name__ == "__main__":
    main()
