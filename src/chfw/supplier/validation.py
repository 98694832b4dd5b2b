"""Which schema an incoming alert is checked against, so that any DCC alert code can be kept.

chfw's bundled XSD describes only the alerts chfw emits: its DCCAlert choice
holds the N64 and N999 bodies and nothing else. Checked against it, every other
DCC alert (N1 … N65) would be refused, yet the receiver must store and list them.
So, with the bundled schemas:

- an alert whose code is N64 or N999 is validated fully, body included;
- any other alert is validated against the *envelope*: the same schema, derived
  in memory, in which DCCAlertCode is any code the version defines
  (:func:`chfw.core.duis.alert_codes.dcc_alert_codes`: a code the version lacks is
  refused, as DCC's own schema would) and DCCAlert holds exactly one element
  of the DUIS namespace whose content is not checked. Response, Header
  (ResponseID, ResponseCode, ResponseDateTime), Body and DCCAlertMessage stay
  strict.

With the official DUIS schemas configured (``--xsd-dir``), every alert is
validated fully against them: they define every alert body.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

from chfw.core.domain import DuisVersion
from chfw.core.duis import SR_NAMESPACE, SchemaSet, bundled_schemas, official_schemas
from chfw.core.duis.alert_codes import dcc_alert_codes
from chfw.supplier.facts import alert_code_of

_XS = "http://www.w3.org/2001/XMLSchema"
_NS = {"xs": _XS, "sr": SR_NAMESPACE}
_CODE_PATH = (
    f"{{{SR_NAMESPACE}}}Body/{{{SR_NAMESPACE}}}DCCAlertMessage/{{{SR_NAMESPACE}}}DCCAlertCode"
)

FULLY_CHECKED_CODES = frozenset({"N64", "N999"})
"""The alert codes whose bodies chfw's bundled schema defines."""


class AlertSchemas:
    """Validates alerts of any DCC alert code: in full where the body is known, else by envelope."""

    def __init__(self, full: SchemaSet, envelope: SchemaSet | None) -> None:
        self.full = full
        self.envelope = envelope

    @classmethod
    def bundled(cls) -> AlertSchemas:
        """chfw's subset: N64/N999 in full, other alert codes by their envelope."""
        return cls(bundled_schemas(), envelope_schemas())

    @classmethod
    def official(cls, directory: Path) -> AlertSchemas:
        """DCC's XSDs in ``directory`` (``<dir>/<version>/DUIS Schema V<version>.xsd``), in full."""
        return cls(official_schemas(directory), None)

    @property
    def source(self) -> str:
        return self.full.source

    def preload(self, version: DuisVersion) -> None:
        """Compile the schemas of ``version`` now, so a broken set-up fails at start-up."""
        self.full.schema_for(version)
        if self.envelope is not None:
            self.envelope.schema_for(version)

    def validate(self, root: etree._Element, version: DuisVersion) -> None:
        """Raise SchemaValidationError unless ``root`` is a valid DUIS ``version`` alert."""
        if self.envelope is not None and alert_code_of(root) not in FULLY_CHECKED_CODES:
            self.envelope.validate(root, version)
        else:
            self.full.validate(root, version)


@cache
def envelope_schemas() -> SchemaSet:
    """The bundled schema with the version's DCC alert codes and an unchecked DCCAlert body."""
    return SchemaSet(
        "chfw's DUIS alert envelope schema (alert body not checked)",
        lambda version: _compile_envelope(_bundled_file(version), dcc_alert_codes(version)),
    )


def _bundled_file(version: DuisVersion) -> str:
    # chfw.core.duis ships one file for 5.0 (no N64) and one for 5.1 to 5.4; the envelope
    # only uses their Header and message types, which are the same in both.
    return "chfw-duis-alerts-5.0.xsd" if not version.supports_n64 else "chfw-duis-alerts-5.1.xsd"


@cache
def _compile_envelope(filename: str, codes: frozenset[str]) -> etree.XMLSchema:
    data = (resources.files("chfw.core.duis") / "xsd" / filename).read_bytes()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, remove_blank_text=True)
    tree = etree.fromstring(data, parser)
    code = _one(tree, "xs:simpleType[@name='DCCAlertCode']/xs:restriction")
    for child in list(code):
        code.remove(child)
    for value in sorted(codes):
        etree.SubElement(code, f"{{{_XS}}}enumeration", value=value)
    alert = _one(tree, "xs:complexType[@name='DCCAlert']")
    for child in list(alert):
        alert.remove(child)
    sequence = etree.SubElement(alert, f"{{{_XS}}}sequence")
    etree.SubElement(
        sequence, f"{{{_XS}}}any", namespace="##targetNamespace", processContents="skip"
    )
    return etree.XMLSchema(tree)


def _one(tree: etree._Element, path: str) -> etree._Element:
    found = tree.find(path, _NS)
    if found is None:  # pragma: no cover - a packaging error, caught by the tests
        raise RuntimeError(f"chfw's bundled DUIS schema has no {path}")
    return found
