"""DCC's whitespace rule and the lxml canonical forms the verifier digests."""

from __future__ import annotations

import pytest
from lxml import etree

from chfw.core.signing.canon import (
    CanonicalizationError,
    canonical_document,
    canonical_root,
    drop_inter_element_whitespace,
)


def _dropped(xml: bytes) -> bytes:
    root = etree.fromstring(xml)
    drop_inter_element_whitespace(root)
    return etree.tostring(root)


class TestDropInterElementWhitespace:
    """Whitespace-only text goes where elements have element children; leaf text stays."""

    @pytest.mark.parametrize(
        ("xml", "expected"),
        [
            (b"<a>\n  <b>x</b>\n  <c/>\n</a>", b"<a><b>x</b><c/></a>"),
            (b"<a>\t\r\n<b> </b> </a>", b"<a><b> </b></a>"),
            (b"<a>  </a>", b"<a>  </a>"),
            (b"<a> <!--c--> </a>", b"<a> <!--c--> </a>"),
            (b"<a> <!--c--> <b/> </a>", b"<a><!--c--><b/></a>"),
            (b"<a> x <b/> y </a>", b"<a> x <b/> y </a>"),
            (b"<a><b>&#xA0;</b> </a>", b"<a><b>&#160;</b></a>"),
            (b"<a>&#xA0;<b/></a>", b"<a>&#160;<b/></a>"),
        ],
    )
    def test_rule(self, xml: bytes, expected: bytes) -> None:
        assert _dropped(xml) == expected


class TestCanonicalForms:
    """Document-level C14N drops comments and keeps PIs outside the root; root-level drops both."""

    def test_document_versus_root(self) -> None:
        root = etree.fromstring(b"<?pi x?><!--c--><a><!--in--><b/></a>")
        assert canonical_document(root) == b"<?pi x?>\n<a><b></b></a>"
        assert canonical_root(root) == b"<a><b></b></a>"

    def test_relative_namespace_is_refused(self) -> None:
        root = etree.fromstring(b'<a xmlns="relative"><b/></a>')
        with pytest.raises(CanonicalizationError, match="relative namespace URI"):
            canonical_document(root)
