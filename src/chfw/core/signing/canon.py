"""Canonical forms the profile relies on, done by lxml (libxml2), plus DCC's whitespace rule.

These are the slow, general paths; ``sign.sign_canonical`` produces the same
bytes directly for documents already in canonical form, and the tests prove
the two agree.
"""

from __future__ import annotations

from lxml import etree


class CanonicalizationError(ValueError):
    """libxml2 refused to canonicalise (e.g. a relative namespace URI)."""


def drop_inter_element_whitespace(root: etree._Element) -> None:
    """Remove whitespace-only text between elements, in place.

    DCC's validator parses with the schema attached, so whitespace-only text
    in element-only content disappears before it recomputes the digest; we do
    the same without the schema by treating every element that has element
    children as element-only (DUIS has no mixed content). Leaf text is kept
    as it is, even when it is only whitespace.
    """
    matches = _WHITESPACE_ONLY_TEXT(root)
    if not isinstance(matches, list):  # pragma: no cover - a node-set query returns a list
        return
    for text in matches:
        if not isinstance(text, etree._ElementUnicodeResult):  # pragma: no cover
            continue
        owner = text.getparent()
        if owner is None:  # pragma: no cover - lxml always knows the owner of a text node
            continue
        container = owner if text.is_text else owner.getparent()
        if container is None or next(container.iterchildren(etree.Element), None) is None:
            continue
        if text.is_text:
            owner.text = None
        else:
            owner.tail = None


# XPath's normalize-space() strips exactly XML whitespace (space, tab, CR, LF). A
# compact document has no such text node, so the common case costs one query.
_WHITESPACE_ONLY_TEXT = etree.XPath(".//text()[normalize-space(.) = '']")


def canonical_document(root: etree._Element) -> bytes:
    """Inclusive C14N 1.0 without comments of the whole document ``root`` belongs to.

    This is what an enveloped Reference with ``URI=""`` digests once the
    Signature has been removed: comments are not part of that node-set, and
    processing instructions outside the root element are.
    """
    try:
        return etree.tostring(root.getroottree(), method="c14n", with_comments=False)
    except etree.C14NError as exc:
        raise CanonicalizationError(_c14n_problem(exc)) from None


def canonical_root(root: etree._Element) -> bytes:
    """Inclusive C14N 1.0 without comments of the root element alone (what chfw signs)."""
    try:
        return etree.tostring(root, method="c14n", with_comments=False)
    except etree.C14NError as exc:
        raise CanonicalizationError(_c14n_problem(exc)) from None


def exclusive_canonical(element: etree._Element) -> bytes:
    """Exclusive C14N 1.0 without comments of ``element``'s subtree (for SignedInfo)."""
    try:
        return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    except etree.C14NError as exc:
        raise CanonicalizationError(_c14n_problem(exc)) from None


def _c14n_problem(exc: etree.C14NError) -> str:
    return (
        f"the document cannot be canonicalised ({exc}); a common cause is a relative "
        "namespace URI, which Canonical XML forbids"
    )
