"""Reading ds: elements strictly, for signature verification: exactly the children the
profile allows, no stray text, base64 of the exact size, and messages that name what
was found (cut to a length a log line can hold).

Every refusal is a :class:`~chfw.exceptions.VerificationError`.
"""

from __future__ import annotations

import binascii

from lxml import etree

from chfw.core.signing import profile
from chfw.exceptions import VerificationError

XML_WHITESPACE = " \t\r\n"
_SHOWN_MAX = 100


def shown(value: str | None) -> str:
    """A value from the document, quoted for a message, cut to a length a log line can hold:
    whatever the sender wrote is echoed into refusals, logs and the rejections table."""
    if value is None or len(value) <= _SHOWN_MAX:
        return repr(value)
    return f"{value[:_SHOWN_MAX]!r}... ({len(value)} characters)"


def children(element: etree._Element) -> list[etree._Element]:
    """Element children, refusing text and processing instructions (comments are ignored)."""
    if element.text is not None and element.text.strip(XML_WHITESPACE):
        raise VerificationError(f"unexpected text inside {describe(element)}")
    found: list[etree._Element] = []
    for child in element:
        if child.tail is not None and child.tail.strip(XML_WHITESPACE):
            raise VerificationError(f"unexpected text inside {describe(element)}")
        if isinstance(child, etree._Comment):
            continue
        if not isinstance(child.tag, str):
            raise VerificationError(f"unexpected {describe(child)} inside {describe(element)}")
        found.append(child)
    return found


def expect(element: etree._Element, names: tuple[str, ...]) -> list[etree._Element]:
    """The children of ``element``, which must be exactly these ds elements in this order."""
    found = children(element)
    for index, name in enumerate(names):
        if index >= len(found):
            raise VerificationError(f"{describe(element)} has no ds:{name}")
        if found[index].tag != profile.ds(name):
            raise VerificationError(
                f"{describe(element)} has {describe(found[index])} where ds:{name} belongs"
                + wrapping_hint(found[index])
            )
    if len(found) > len(names):
        extra = found[len(names)]
        raise VerificationError(
            f"unexpected {describe(extra)} in {describe(element)}" + wrapping_hint(extra)
        )
    return found


def expect_algorithm(element: etree._Element, name: str, algorithm: str) -> None:
    if element.tag != profile.ds(name):
        raise VerificationError(f"expected ds:{name}, found {describe(element)}")
    found = element.get("Algorithm")
    if found != algorithm:
        raise VerificationError(
            f"ds:{name} Algorithm is {shown(found)}; DCC's profile requires {algorithm!r}"
        )
    if children(element):
        raise VerificationError(
            f"ds:{name} has child elements (e.g. InclusiveNamespaces or XPath); "
            "DCC's profile has none"
        )


def base64_value(element: etree._Element, name: str, size: int) -> bytes:
    if len(element):
        raise VerificationError(f"ds:{name} must hold only base64 text")
    text = "".join((element.text or "").split())
    if not text.isascii():
        raise VerificationError(f"ds:{name} is not valid base64: it holds non-ASCII characters")
    try:
        value = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise VerificationError(f"ds:{name} is not valid base64: {exc}") from None
    if len(value) != size:
        raise VerificationError(
            f"ds:{name} holds {len(value)} bytes; expected {size}"
            + (" (raw r‖s, not DER)" if name == "SignatureValue" else "")
        )
    return value


def describe(node: etree._Element) -> str:
    if isinstance(node, etree._Comment):
        return "a comment"
    if isinstance(node, etree._ProcessingInstruction):
        return "a processing instruction"
    qname = etree.QName(node)
    if qname.namespace == profile.DSIG_NS:
        return f"ds:{qname.localname}"
    return f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname


def wrapping_hint(element: etree._Element) -> str:
    if element.tag == profile.ds("Object") or etree.QName(element).namespace != profile.DSIG_NS:
        return " (content inside the Signature is refused: signature wrapping)"
    return ""
