"""Value types of the GB smart-metering domain.

Each validates on construction so that malformed data cannot travel inward:
a ``DeviceId`` is always 8 octets, a ``DuisVersion`` always one chfw can render.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import total_ordering
from typing import ClassVar, Self

from chfw.exceptions import FirmwareVersionNotCarriable, InvalidValueError

_HEX_SEPARATORS = re.compile(r"[\s:\-]")
_HEX_ONLY = re.compile(r"[0-9A-Fa-f]*")


@dataclass(frozen=True, slots=True)
class Eui64:
    """An EUI-64 identifier: a Communications Hub's Device ID or a Service User's User ID."""

    octets: bytes

    kind: ClassVar[str] = "EUI-64"

    def __post_init__(self) -> None:
        if not isinstance(self.octets, bytes) or len(self.octets) != 8:
            raise InvalidValueError(f"{self.kind} must be 8 octets, got {self.octets!r}")

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept the DUIS form ``00-DB-12-34-56-78-90-A0`` and plain or colon-separated hex."""
        if not isinstance(text, str):
            raise InvalidValueError(f"{cls.kind} must be text, got {type(text).__name__}")
        compact = _HEX_SEPARATORS.sub("", text)
        if len(compact) != 16 or not _HEX_ONLY.fullmatch(compact):
            raise InvalidValueError(
                f"{cls.kind} {text!r} is not 16 hex digits (expected e.g. 00-DB-12-34-56-78-90-A0)"
            )
        return cls(bytes.fromhex(compact))

    @classmethod
    def from_int(cls, value: int) -> Self:
        if not 0 <= value < 1 << 64:
            raise InvalidValueError(f"{cls.kind} {value} is out of range")
        return cls(value.to_bytes(8, "big"))

    @property
    def hex(self) -> str:
        """Upper-case hex without separators, e.g. ``00DB1234567890A0``."""
        return self.octets.hex().upper()

    def __str__(self) -> str:
        """The DUIS form: upper-case hex pairs joined by '-'."""
        return self.octets.hex("-").upper()

    def __int__(self) -> int:
        return int.from_bytes(self.octets, "big")


@dataclass(frozen=True, slots=True)
class DeviceId(Eui64):
    """A device's EUI-64 (here: a Communications Hub)."""

    kind: ClassVar[str] = "Device ID"


@dataclass(frozen=True, slots=True)
class UserId(Eui64):
    """A DUIS Service User's EUI-64 User ID."""

    kind: ClassVar[str] = "User ID"


@total_ordering
@dataclass(frozen=True, slots=True)
class FirmwareVersion:
    """A firmware version as the octets the device reports.

    GBCS carries it as an OCTET STRING; DUIS as its upper-case hex, at most 8
    characters. Longer versions are valid values (a hub may report one) but
    cannot be put in an N64 -- see :meth:`duis_text`.

    Ordering compares the octets as one unsigned big-endian number, a shorter
    version being left-padded with zero octets (``0102`` < ``00000103``), which
    is how hub vendors number their releases; equal numbers with different
    lengths tie-break on length so that ordering stays consistent with ``==``.
    """

    octets: bytes

    MAX_OCTETS: ClassVar[int] = 32
    DUIS_MAX_OCTETS: ClassVar[int] = 4

    def __post_init__(self) -> None:
        if not isinstance(self.octets, bytes) or not 1 <= len(self.octets) <= self.MAX_OCTETS:
            raise InvalidValueError(
                f"firmware version must be 1 to {self.MAX_OCTETS} octets, got {self.octets!r}"
            )

    @classmethod
    def parse(cls, text: str) -> FirmwareVersion:
        compact = _HEX_SEPARATORS.sub("", text) if isinstance(text, str) else ""
        if not compact or len(compact) % 2 or not _HEX_ONLY.fullmatch(compact):
            raise InvalidValueError(
                f"firmware version {text!r} is not an even number of hex digits (e.g. 0123ABCE)"
            )
        return cls(bytes.fromhex(compact))

    @property
    def hex(self) -> str:
        return self.octets.hex().upper()

    @property
    def duis_carriable(self) -> bool:
        """Whether DUIS ``FirmwareVersion`` (1-8 hex characters) can carry this version."""
        return len(self.octets) <= self.DUIS_MAX_OCTETS

    def duis_text(self) -> str:
        """The DUIS ``FirmwareVersion`` text; refuses versions DUIS cannot carry."""
        if not self.duis_carriable:
            raise FirmwareVersionNotCarriable(
                f"firmware version {self.hex} has {len(self.octets)} octets; DUIS FirmwareVersion "
                f"carries at most {self.DUIS_MAX_OCTETS} (8 hex characters)"
            )
        return self.hex

    def _sort_key(self) -> tuple[int, int]:
        return int.from_bytes(self.octets, "big"), len(self.octets)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, FirmwareVersion):
            return NotImplemented
        return self._sort_key() < other._sort_key()

    def __str__(self) -> str:
        return self.hex


_DUIS_VERSION = re.compile(r"(\d+)\.(\d+)")


@total_ordering
@dataclass(frozen=True, slots=True)
class DuisVersion:
    """A DUIS schema version chfw can render, e.g. 5.1."""

    major: int
    minor: int

    SUPPORTED: ClassVar[tuple[tuple[int, int], ...]] = ((5, 0), (5, 1), (5, 2), (5, 3), (5, 4))
    N64_SINCE: ClassVar[tuple[int, int]] = (5, 1)

    def __post_init__(self) -> None:
        if (self.major, self.minor) not in self.SUPPORTED:
            supported = ", ".join(f"{a}.{b}" for a, b in self.SUPPORTED)
            raise InvalidValueError(
                f"DUIS version {self.major}.{self.minor} is not supported (supported: {supported})"
            )

    @classmethod
    def parse(cls, text: str) -> DuisVersion:
        match = _DUIS_VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidValueError(
                f"DUIS version {text!r} is not of the form MAJOR.MINOR (e.g. 5.1)"
            )
        return cls(int(match[1]), int(match[2]))

    @property
    def supports_n64(self) -> bool:
        """N64 (CommsHubFirmwareActivation) exists from DUIS 5.1 on."""
        return (self.major, self.minor) >= self.N64_SINCE

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, DuisVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


class ActivationResult(enum.Enum):
    """What a CS06 answer says happened. Values are the names the CLI and JSON use."""

    SUCCESS = "success"
    NO_IMAGE_HELD = "no_image_held"
    HASH_MISMATCH = "hash_mismatch"
    ACTIVATION_FAILURE = "activation_failure"
    ACCEPTED = "accepted"

    @classmethod
    def from_response_code(cls, code: int) -> ActivationResult:
        try:
            return _BY_RESPONSE_CODE[code]
        except KeyError:
            raise InvalidValueError(
                f"CS06 responseCode {code} is not defined (0 success, 1 no image held, "
                "2 hash mismatch, 3 activation failure)"
            ) from None

    @property
    def response_code(self) -> int | None:
        """The GBCS responseCode, or None for 'command accepted'."""
        return _RESPONSE_CODES.get(self)

    @property
    def is_failure(self) -> bool:
        return self not in (ActivationResult.SUCCESS, ActivationResult.ACCEPTED)


_BY_RESPONSE_CODE = {
    0: ActivationResult.SUCCESS,
    1: ActivationResult.NO_IMAGE_HELD,
    2: ActivationResult.HASH_MISMATCH,
    3: ActivationResult.ACTIVATION_FAILURE,
}
_RESPONSE_CODES = {result: code for code, result in _BY_RESPONSE_CODE.items()}


class AlertKind(enum.Enum):
    """The DCC Alert a recipient gets for a CH firmware activation."""

    N64 = "N64"
    N999 = "N999"


class SupplierRole(enum.Enum):
    """The roles a supplier is registered in against a meter point.

    IS and GS make it a Responsible Supplier of the CH; ES only where the CH
    has no Import Supplier (see :func:`chfw.core.domain.recipients.responsible_suppliers`).
    """

    IMPORT_SUPPLIER = "IS"
    EXPORT_SUPPLIER = "ES"
    GAS_SUPPLIER = "GS"
