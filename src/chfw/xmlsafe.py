"""Parse XML from outside safely: no DTDs, no entities, no network, bounded size."""

from __future__ import annotations

from typing import Any

from lxml import etree

from chfw.exceptions import ChfwError

DEFAULT_MAX_BYTES = 1024 * 1024


class UnsafeXmlError(ChfwError, ValueError):
    """The document is not well-formed or uses XML features chfw refuses (DTDs, entities)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )


_PARSER = _parser()


def parse_untrusted(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Return the root element of ``data`` or raise :class:`UnsafeXmlError`.

    DCC's own validator rejects any document with a DOCTYPE, and so do we:
    that single rule removes entity-expansion and external-entity attacks.
    """
    if len(data) > max_bytes:
        raise UnsafeXmlError(f"document is {len(data)} bytes; the limit is {max_bytes}")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXmlError("document has a DOCTYPE; DUIS documents must not")
    return root
