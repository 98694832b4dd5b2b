"""Parse XML from outside safely: no DTDs, no entities, no loads of any kind, bounded size.

Three layers, each enough on its own for DUIS documents, which never carry a
DOCTYPE (DCC's validator rejects one):

1. **Before the parser.** A document must be UTF-8 (no UTF-16/32 or EBCDIC:
   its first markup byte is ASCII ``<``, and a declared encoding is UTF-8 or
   US-ASCII) and must not contain the bytes ``<!DOCTYPE`` anywhere. With the
   encoding pinned, a DOCTYPE cannot be spelt any other way, so no DTD, no
   entity declaration and no parameter entity ever reaches libxml2. (With
   ``load_dtd=False`` and ``resolve_entities=False`` the pinned libxml2 still
   reads an external parameter entity of the internal subset: a 60-byte
   ``%p;`` naming ``/dev/zero`` never finished, and a missing file was refused
   with other words than an existing one.)
2. **The parser** is told not to load DTDs, resolve entities or use the
   network, and parses as UTF-8 whatever the declaration says.
3. **A resolver that refuses every load** (file, network, catalogue): should
   anything ever ask libxml2 to fetch, the answer is the same error whatever
   exists on this machine's disk.

Parsers are kept per thread: an lxml parser serialises the threads that share it.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from lxml import etree

from chfw.exceptions import ChfwError

DEFAULT_MAX_BYTES = 1024 * 1024


class UnsafeXmlError(ChfwError, ValueError):
    """The document is not well-formed or uses XML features chfw refuses (DTDs, entities)."""


DOCTYPE_REFUSED = "document has a DOCTYPE; DUIS documents must not"
"""The one answer to every document that declares a DTD, whatever it would have loaded."""

_DOCTYPE = b"<!DOCTYPE"
_UTF8_BOM = b"\xef\xbb\xbf"
_XML_WHITESPACE = b" \t\r\n"
# The encoding pseudo-attribute of an XML declaration (which may only come first).
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)[\"']")
_UTF8_NAMES = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})


class LoadRefused(UnsafeXmlError):
    """The parser asked to load something (a DTD, an entity, an include): never allowed."""


class _RefuseEveryLoad(etree.Resolver):
    """Answers every load request libxml2 makes with one refusal, naming nothing."""

    # lxml calls resolve(system_url, public_id, context); lxml-stubs omit the context.
    def resolve(  # type: ignore[override]
        self, system_url: str | None, public_id: str | None, context: Any
    ) -> Any:
        raise LoadRefused("the document asks to load an external resource; chfw loads none")


class _Parsers(threading.local):
    """One safe parser per thread."""

    def __init__(self) -> None:
        parser = etree.XMLParser(
            encoding="utf-8",
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            remove_comments=False,
            remove_pis=False,
            collect_ids=False,
        )
        parser.resolvers.add(_RefuseEveryLoad())
        self.parser = parser


_PARSERS = _Parsers()


def refuse_declarations(data: bytes) -> None:
    """Raise :class:`UnsafeXmlError` unless ``data`` is UTF-8 XML with no DOCTYPE.

    Runs on the raw bytes, before any parser sees them; the answer depends on
    the bytes alone.
    """
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    stripped = data[start:].lstrip(_XML_WHITESPACE)
    if not stripped.startswith(b"<"):
        raise UnsafeXmlError(
            "not well-formed XML: the document does not start with '<' in UTF-8 "
            "(DUIS documents are UTF-8; UTF-16, UTF-32 and EBCDIC are refused)"
        )
    if stripped.startswith(b"<?xml"):
        declared = _DECLARED_ENCODING.match(stripped, 0, stripped.find(b"?>") + 2)
        if declared is not None and declared.group(1).lower() not in _UTF8_NAMES:
            raise UnsafeXmlError(
                f"the document declares encoding {declared.group(1).decode('ascii', 'replace')!r}"
                "; DUIS documents are UTF-8"
            )
    if _DOCTYPE in data:
        raise UnsafeXmlError(DOCTYPE_REFUSED)


def parse_untrusted(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Return the root element of ``data`` or raise :class:`UnsafeXmlError`."""
    if len(data) > max_bytes:
        raise UnsafeXmlError(f"document is {len(data)} bytes; the limit is {max_bytes}")
    refuse_declarations(data)
    try:
        root = etree.fromstring(data, _PARSERS.parser)
    except LoadRefused:
        raise
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # pragma: no cover - refused above
        raise UnsafeXmlError(DOCTYPE_REFUSED)
    return root
