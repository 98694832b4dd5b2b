"""Issue 20: what keeping every alert signed by the current identity costs the worker.

For each claimed row the worker asks whether its stored document already names
the current certificate (:meth:`chfw.core.signing.Resigner.is_current`), and only if
not, re-signs it (:meth:`~chfw.core.signing.Resigner.resign`: strip the Signature,
sign the same canonical bytes). Both are timed on a real N64, beside a plain
:func:`~chfw.core.signing.sign_canonical` of the unsigned document for comparison.

    .venv/bin/python bench/bench_resign.py
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]

from _timing import per_call_seconds  # noqa: E402
from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId  # noqa: E402
from chfw.core.duis import ResponseId, render_n64  # noqa: E402
from chfw.core.signing import (  # noqa: E402
    PemSigner,
    Resigner,
    create_development_identity,
    sign_canonical,
    unsigned,
)

CH = DeviceId.parse("00-DB-12-34-56-78-90-A0")


def main() -> None:
    old = PemSigner.from_pem(*create_development_identity(common_name="chfw DSP signer 2025"))
    new = PemSigner.from_pem(*create_development_identity(common_name="chfw DSP signer 2026"))
    document = render_n64(
        response_id=ResponseId(UserId.parse("90-B3-D5-1F-30-00-00-02"), CH, 1),
        device_id=CH,
        firmware_version=FirmwareVersion.parse("0123ABCE"),
        duis_version=DuisVersion(5, 1),
        at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    current = sign_canonical(document, new)
    stale = sign_canonical(document, old)
    resigner = Resigner(new)
    assert resigner.is_current(current)
    assert not resigner.is_current(stale)

    figures = {
        "check, already current (is_current)": per_call_seconds(
            lambda: resigner.is_current(current)
        ),
        "check, signed by another (is_current)": per_call_seconds(
            lambda: resigner.is_current(stale)
        ),
        "strip the Signature (unsigned)": per_call_seconds(lambda: unsigned(stale)),
        "re-sign (resign)": per_call_seconds(lambda: resigner.resign(stale)),
        "sign at intake (sign_canonical), for comparison": per_call_seconds(
            lambda: sign_canonical(document, new)
        ),
    }
    print(f"N64 document: {len(current)} bytes signed")
    for name, seconds in figures.items():
        print(f"{name:50} {seconds * 1e6:9.2f} µs")


if __name__ == "__main__":
    main()
