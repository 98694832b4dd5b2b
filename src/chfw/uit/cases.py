"""The suite: each case an id (``group.name``), one line, the answer DUIS expects, its bodies.

Every case is built from a fresh genuine alert (its own ResponseID), so cases
never depend on each other and a case's record, if any, is found by its
ResponseID. docs/uit.md explains each case and how to fix a failure.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from chfw.core.domain import DuisVersion
from chfw.exceptions import ConfigError
from chfw.uit.documents import (
    DOCTYPE_FORMS,
    HARMLESS_TARGET,
    Alert,
    AlertMaker,
    DoctypeForm,
    another_device,
    cdata_inside,
    comment_inside,
    impostor_of,
    padded,
    reference_inside,
    stranger,
    with_value,
)

DEFAULT_OVERSIZED_BYTES = 2 * 1024 * 1024
OVERSIZED_MIN = 16 * 1024
OVERSIZED_MAX = 64 * 1024 * 1024


class Expect(enum.Enum):
    """What a DUIS endpoint must answer; the value is how reports write it."""

    ACCEPT = "2xx, recorded once"
    REFUSE = "4xx, nothing recorded"
    REFUSE_OR_AS_SIGNED = "4xx, or 2xx recording the signed value"


@dataclass(frozen=True, slots=True)
class Material:
    """What cases are made from: the run's alert maker and its size for the oversized body."""

    maker: AlertMaker
    oversized_bytes: int = DEFAULT_OVERSIZED_BYTES

    def __post_init__(self) -> None:
        if not OVERSIZED_MIN <= self.oversized_bytes <= OVERSIZED_MAX:
            raise ConfigError(
                f"oversized body of {self.oversized_bytes} bytes: give {OVERSIZED_MIN} (far more "
                f"than any alert) to {OVERSIZED_MAX} (more is no test, only load)"
            )


@dataclass(frozen=True, slots=True)
class Prepared:
    """A case ready to send: its bodies in order, what they are, and the alert underneath."""

    bodies: tuple[bytes, ...]
    sent: str
    alert: Alert


Prepare = Callable[[Material], Prepared]


@dataclass(frozen=True, slots=True)
class Case:
    """One check of the endpoint's behaviour."""

    id: str
    description: str
    expect: Expect
    prepare: Prepare
    applies: Callable[[DuisVersion], bool] = field(default=lambda _: True)
    # Whether closing the connection counts as a refusal: only for a body too large to read,
    # whose 413 a client may never see (the connection is reset under the rest of the body).
    closing_refuses: bool = False

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


def _n64_versions(version: DuisVersion) -> bool:
    return version.supports_n64


def _n999_versions(version: DuisVersion) -> bool:
    return not version.supports_n64


def _genuine(material: Material) -> Prepared:
    alert = material.maker.genuine()
    return Prepared((alert.signed,), f"a genuine {alert.code}", alert)


def _replay(material: Material) -> Prepared:
    alert = material.maker.genuine()
    return Prepared((alert.signed, alert.signed), f"a genuine {alert.code}, twice", alert)


def _tampered(material: Material) -> Prepared:
    alert = material.maker.genuine()
    body = with_value(alert.signed, "DeviceID", another_device(alert.device_id))
    return Prepared((body,), "DeviceID changed after signing", alert)


def _unsigned(material: Material) -> Prepared:
    alert = material.maker.genuine()
    return Prepared((alert.unsigned,), "the alert without its ds:Signature", alert)


def _other_key(material: Material) -> Prepared:
    alert = material.maker.genuine(impostor_of(material.maker.signer))
    return Prepared((alert.signed,), "signed by another key naming the trusted certificate", alert)


def _unknown_signer(material: Material) -> Prepared:
    alert = material.maker.genuine(stranger())
    return Prepared((alert.signed,), "signed by a certificate the endpoint never saw", alert)


def _unknown_element(material: Material) -> Prepared:
    alert = material.maker.genuine()
    document = alert.unsigned.replace(
        b"</sr:Header>", b"<sr:NotInDUIS>chfw uit</sr:NotInDUIS></sr:Header>", 1
    )
    return Prepared((material.maker.sign(document),), "sr:NotInDUIS in the Header, signed", alert)


def _version_too_long(material: Material) -> Prepared:
    alert = material.maker.genuine()
    document = with_value(alert.unsigned, "FirmwareVersion", b"0102030405")
    return Prepared((material.maker.sign(document),), "FirmwareVersion 0102030405, signed", alert)


def _code_lacking(material: Material) -> Prepared:
    maker = material.maker
    alert = maker.genuine()
    if maker.duis_version.supports_n64:
        document = alert.unsigned.replace(b">N64</sr:DCCAlertCode>", b">N32</sr:DCCAlertCode>", 1)
        sent = "DCCAlertCode N32 (no DUIS version defines it), signed"
    else:
        document = maker.n64_document(alert.response_id, maker.duis_version)
        sent = f"an N64 with schemaVersion {maker.duis_version} (N64 exists from 5.1), signed"
    return Prepared((maker.sign(document),), sent, alert)


def _in_value(how: str, rewrite: Callable[[bytes, str], bytes], element: str = "") -> Prepare:
    """A genuine alert with one value written another way that canonical form reads the same.

    Without ``element``: the value a wrong reading harms most (N64's FirmwareVersion,
    N999's DeviceID).
    """

    def prepare(material: Material) -> Prepared:
        alert = material.maker.genuine()
        name = element or ("FirmwareVersion" if alert.firmware_version else "DeviceID")
        return Prepared((rewrite(alert.signed, name),), f"{how} in {name}", alert)

    return prepare


def _oversized(material: Material) -> Prepared:
    alert = material.maker.genuine()
    body = padded(alert.signed, material.oversized_bytes)
    return Prepared((body,), f"a signed alert padded to {len(body)} bytes", alert)


def _doctype(form: DoctypeForm) -> Case:
    def prepare(material: Material) -> Prepared:
        alert = material.maker.genuine()
        return Prepared((form.make(HARMLESS_TARGET, alert.signed),), form.description, alert)

    return Case(f"dtd.{form.name}", f"DOCTYPE: {form.description}", Expect.REFUSE, prepare)


CASES: tuple[Case, ...] = (
    Case(
        "valid.n64",
        "A genuine N64, signed by the DSP's key",
        Expect.ACCEPT,
        _genuine,
        _n64_versions,
    ),
    Case(
        "valid.n999",
        "A genuine N999 (DUIS 5.0's alert in place of N64)",
        Expect.ACCEPT,
        _genuine,
        _n999_versions,
    ),
    Case("valid.replay", "The same alert twice (same ResponseID)", Expect.ACCEPT, _replay),
    Case("signature.tampered", "A value changed after signing", Expect.REFUSE, _tampered),
    Case("signature.unsigned", "No signature at all", Expect.REFUSE, _unsigned),
    Case(
        "signature.other-key",
        "Signed by another key, naming the trusted certificate",
        Expect.REFUSE,
        _other_key,
    ),
    Case(
        "signature.unknown-signer",
        "Signed by an untrusted certificate",
        Expect.REFUSE,
        _unknown_signer,
    ),
    Case(
        "schema.unknown-element",
        "Signed, with an element DUIS does not define",
        Expect.REFUSE,
        _unknown_element,
    ),
    Case(
        "schema.version-too-long",
        "Signed, FirmwareVersion longer than 8 characters",
        Expect.REFUSE,
        _version_too_long,
        _n64_versions,
    ),
    Case(
        "schema.code-lacking",
        "Signed, an alert code the DUIS version lacks",
        Expect.REFUSE,
        _code_lacking,
    ),
    *(_doctype(form) for form in DOCTYPE_FORMS),
    Case(
        "signed-value.comment",
        "A comment inside a signed value (digest unchanged)",
        Expect.REFUSE_OR_AS_SIGNED,
        _in_value("<!----> in the middle", comment_inside),
    ),
    Case(
        "signed-value.comment-in-id",
        "A comment inside the ResponseID, the dedupe key (digest unchanged)",
        Expect.REFUSE_OR_AS_SIGNED,
        _in_value("<!----> in the middle", comment_inside, "ResponseID"),
    ),
    Case(
        "signed-value.cdata",
        "Half a signed value as a CDATA section (digest unchanged)",
        Expect.REFUSE_OR_AS_SIGNED,
        _in_value("the second half as CDATA", cdata_inside),
    ),
    Case(
        "signed-value.reference",
        "A character of a signed value as a character reference (digest unchanged)",
        Expect.REFUSE_OR_AS_SIGNED,
        _in_value("the first character as &#x..;", reference_inside),
    ),
    Case(
        "size.oversized",
        "A signed alert far larger than any alert",
        Expect.REFUSE,
        _oversized,
        closing_refuses=True,
    ),
)

GROUPS = tuple(dict.fromkeys(case.group for case in CASES))


def select(version: DuisVersion, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Case]:
    """The cases for ``version``, narrowed by group names or case ids (``--only``/``--skip``).

    Raises ConfigError for a name that is neither a group nor a case id, or when
    nothing is left to run.
    """
    only, skip = list(only), list(skip)
    known = set(GROUPS) | {case.id for case in CASES}
    unknown = sorted(set(only + skip) - known)
    if unknown:
        raise ConfigError(
            f"no case or group named {', '.join(unknown)}; groups are {', '.join(GROUPS)} "
            "(`chfw uit cases` lists every case)"
        )
    chosen = [
        case
        for case in CASES
        if case.applies(version) and (not only or _named(case, only)) and not _named(case, skip)
    ]
    if not chosen:
        raise ConfigError(f"--only/--skip leave no case to run for DUIS {version}")
    return chosen


def _named(case: Case, names: Sequence[str]) -> bool:
    return case.group in names or case.id in names
