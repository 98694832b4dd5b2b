"""The kit's test material: a DSP identity on disk and the alert maker a run would build."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.signing import PemSigner, TrustStore, create_development_identity
from chfw.uit import AlertMaker, Material

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DEVICE = DeviceId.parse("00-1D-A1-FF-FF-FF-FF-64")


@dataclass(frozen=True)
class Identity:
    """The signing key and certificate the endpoint trusts, as PEM files."""

    key: Path
    cert: Path

    @classmethod
    def create(cls, folder: Path) -> Identity:
        key_pem, cert_pem = create_development_identity("uit test DSP")
        (folder / "dsp.key").write_bytes(key_pem)
        (folder / "dsp.pem").write_bytes(cert_pem)
        return cls(folder / "dsp.key", folder / "dsp.pem")

    @property
    def signer(self) -> PemSigner:
        return PemSigner.from_files(self.key, self.cert)

    @property
    def trust(self) -> TrustStore:
        return TrustStore.from_files(self.cert)


def material(identity: Identity, version: str = "5.1", oversized: int = 16384) -> Material:
    counter = itertools.count(1)
    maker = AlertMaker(
        signer=identity.signer,
        dcc_user_id=UserId.parse("90-B3-D5-1F-30-00-00-02"),
        device_id=DEVICE,
        duis_version=DuisVersion.parse(version),
        firmware_version=FirmwareVersion.parse("0A0B0C0D"),
        at=lambda: T0,
        counters=lambda: next(counter),
    )
    return Material(maker, oversized)
