"""Validate DUIS documents: against chfw's bundled subset or the official DUIS XSDs.

Every alert is validated before it is signed. Compiling a schema takes
milliseconds (tens of them for the official files), validating one alert a few
microseconds, so each schema is compiled once per process and kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Protocol, TypeAlias, cast

from lxml import etree

from chfw.core.domain.values import DuisVersion
from chfw.core.duis.render import SR_NAMESPACE
from chfw.core.xmlsafe import UnsafeXmlError, parse_untrusted
from chfw.exceptions import ConfigError, SchemaValidationError

Document: TypeAlias = bytes | etree._Element

_XS = "{http://www.w3.org/2001/XMLSchema}"
_MAX_ERRORS_SHOWN = 3

# Bundled variants: DUIS 5.0 has no N64; 5.1 to 5.4 define the alerts identically.
_BUNDLED_FILES = {
    (5, 0): "chfw-duis-alerts-5.0.xsd",
    (5, 1): "chfw-duis-alerts-5.1.xsd",
    (5, 2): "chfw-duis-alerts-5.1.xsd",
    (5, 3): "chfw-duis-alerts-5.1.xsd",
    (5, 4): "chfw-duis-alerts-5.1.xsd",
}


class _LogEntry(Protocol):
    line: int
    message: str


class DocumentValidator(Protocol):
    """What the pipeline needs from a schema set (lets tests pass a fake)."""

    def validate(self, document: Document, version: DuisVersion) -> None: ...


class SchemaSet:
    """The DUIS schemas of one source, one compiled schema per version, built on first use.

    ``loader`` compiles the schema of a version; it is called at most once per
    version (several versions may share one compiled schema through it).
    """

    def __init__(self, source: str, loader: Callable[[DuisVersion], etree.XMLSchema]) -> None:
        self.source = source
        self._loader = loader
        self._compiled: dict[DuisVersion, etree.XMLSchema] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SchemaSet({self.source!r})"

    def schema_for(self, version: DuisVersion) -> etree.XMLSchema:
        """The compiled schema of ``version``; call at start-up to surface ConfigError early."""
        schema = self._compiled.get(version)
        if schema is None:
            with self._lock:
                schema = self._compiled.get(version)
                if schema is None:
                    schema = self._loader(version)
                    self._compiled[version] = schema
        return schema

    def validate(self, document: Document, version: DuisVersion) -> None:
        """Raise SchemaValidationError unless ``document`` is a valid DUIS ``version`` Response.

        ``document`` is the bytes of a document (parsed safely: no DOCTYPE, no
        entities) or an already parsed element. Its ``schemaVersion`` must be
        ``version``: a document written for one version and checked against
        another is a bug, even where both schemas would accept it.
        """
        schema = self.schema_for(version)
        root = _parse(document, version, self.source) if isinstance(document, bytes) else document
        if schema.validate(root):
            _check_schema_version(root, version, self.source)
            return
        # lxml keeps one error log per schema; under concurrent use another
        # thread may clear it, so re-run under a lock to read a coherent one.
        with self._lock:
            schema.validate(root)
            entries = cast("Iterable[_LogEntry]", schema.error_log)  # lxml-stubs: untyped
            errors = [f"line {entry.line}: {entry.message}" for entry in entries]
        detail = "; ".join(errors[:_MAX_ERRORS_SHOWN]) or "no detail available from libxml2"
        raise SchemaValidationError(
            f"document is not valid against {self.source} for DUIS {version}: "
            + detail.replace(f"{{{SR_NAMESPACE}}}", "sr:")
        )


def _parse(document: bytes, version: DuisVersion, source: str) -> etree._Element:
    try:
        return parse_untrusted(document)
    except UnsafeXmlError as exc:
        raise SchemaValidationError(
            f"document is not valid against {source} for DUIS {version}: {exc}"
        ) from exc


def _check_schema_version(root: etree._Element, version: DuisVersion, source: str) -> None:
    declared = root.get("schemaVersion")
    expected = str(version)
    if declared == expected:
        return
    try:  # xs:decimal: "5.10" and "05.1" are 5.1 too
        matches = declared is not None and Decimal(declared.strip()) == Decimal(expected)
    except InvalidOperation:
        matches = False
    if not matches:
        raise SchemaValidationError(
            f"document declares schemaVersion {declared!r} but was validated as DUIS {version} "
            f"against {source}"
        )


@cache
def bundled_schemas() -> SchemaSet:
    """chfw's own XSDs for the documents it emits (package data, compiled once per process)."""
    return SchemaSet("chfw's bundled DUIS alert schema", _load_bundled)


@cache
def _compile_bundled(filename: str) -> etree.XMLSchema:
    data = (resources.files("chfw.core.duis") / "xsd" / filename).read_bytes()
    return etree.XMLSchema(etree.fromstring(data, _xsd_parser()))


def _load_bundled(version: DuisVersion) -> etree.XMLSchema:
    return _compile_bundled(_BUNDLED_FILES[version.major, version.minor])


def official_schemas(directory: Path) -> SchemaSet:
    """The official DUIS XSDs in ``directory``: ``<directory>/5.1/DUIS Schema V5.1.xsd`` etc.

    Each version's folder holds DCC's DUIS file with the MMC and XML-DSig schemas
    it imports. Folders are read when a version is first used, so an operator
    needs only the versions their users are on.
    """
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise ConfigError(f"official DUIS schema folder {directory} does not exist")
    return _official_schemas(directory)


@cache
def _official_schemas(directory: Path) -> SchemaSet:
    return SchemaSet(
        f"the official DUIS schemas in {directory}",
        lambda version: _compile_official(directory, version),
    )


def _compile_official(directory: Path, version: DuisVersion) -> etree.XMLSchema:
    folder = directory / str(version)
    path = folder / f"DUIS Schema V{version}.xsd"
    if not folder.is_dir():
        raise ConfigError(
            f"no official DUIS {version} schemas: folder {folder} is missing "
            f"(expected {path.name} and the schemas it imports there)"
        )
    try:
        tree = etree.fromstring(path.read_bytes(), _xsd_parser(), base_url=path.as_uri())
    except OSError as exc:
        raise ConfigError(f"cannot read official DUIS {version} schema {path}: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"official DUIS {version} schema {path} is not XML: {exc}") from exc
    # DCC's DUIS file imports "MMC Schema V5.x.xsd": libxml2 does not resolve a
    # schemaLocation containing a space, so percent-encode it (in memory only).
    for node in tree.iter(f"{_XS}import", f"{_XS}include"):
        location = node.get("schemaLocation")
        if location is not None and " " in location:
            node.set("schemaLocation", location.replace(" ", "%20"))
    try:
        return etree.XMLSchema(tree)
    except etree.XMLSchemaParseError as exc:
        raise ConfigError(f"official DUIS {version} schema {path} does not compile: {exc}") from exc


def _xsd_parser() -> etree.XMLParser:
    # Schemas are files the operator installed, but still: no network, no entities.
    return etree.XMLParser(
        no_network=True, resolve_entities=False, remove_comments=True, remove_blank_text=True
    )
