"""Issuer names: RFC 2253 spellings reduce to one key, and only cosmetic differences vanish."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from chfw.core.signing.names import NameSyntaxError, name_key, parse_name_key

CN = NameOID.COMMON_NAME.dotted_string
OU = NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string
O_ = NameOID.ORGANIZATION_NAME.dotted_string


class TestParse:
    """The string reader handles RFC 4514 escapes, quoting, hex values and loose spacing."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("CN=Z1,OU=07", ((CN, "Z1"), (OU, "07"))),
            ("  OU = 07 ,  CN = Z1  ", ((CN, "Z1"), (OU, "07"))),
            ("CN=a\\,b", ((CN, "a,b"),)),
            ("CN=a\\+b+O=x", ((CN, "a+b"), (O_, "x"))),
            ("CN=\\ lead and trail\\ ", ((CN, " lead and trail "),)),
            ("CN=caf\\C3\\A9", ((CN, "café"),)),
            ("CN=café", ((CN, "café"),)),
            ('CN="quoted, with comma"', ((CN, "quoted, with comma"),)),
            ("CN=#0C03616263", ((CN, "abc"),)),
            ("CN=#1E0400410042", ((CN, "AB"),)),
            ("CN=#0401FF", ((CN, "#0401ff"),)),
            ("E=ops@example.com", ((NameOID.EMAIL_ADDRESS.dotted_string, "ops@example.com"),)),
            ("1.2.3.4=x", (("1.2.3.4", "x"),)),
        ],
    )
    def test_reads(self, text: str, expected: tuple[tuple[str, str], ...]) -> None:
        assert parse_name_key(text) == tuple(sorted(expected))

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("", "empty"),
            ("   ", "empty"),
            ("CN", "without '='"),
            ("FOO=bar", "unknown attribute type"),
            ("CN=#ABC", "even number of hex digits"),
            ('CN="open', "unterminated"),
            ("CN=x\\", "dangling backslash"),
            ("CN=\\FF", "not UTF-8"),
            ('CN="a"b', "expected ','"),
        ],
    )
    def test_refuses(self, text: str, problem: str) -> None:
        with pytest.raises(NameSyntaxError, match=problem):
            parse_name_key(text)


class TestAgreesWithCertificates:
    """Whatever cryptography writes for a certificate's issuer reads back to the same key."""

    @given(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.COUNTRY_NAME]
                ),
                st.text(
                    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                    min_size=1,
                    max_size=12,
                ),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def test_rfc4514_string_round_trips(
        self, attributes: list[tuple[x509.ObjectIdentifier, str]]
    ) -> None:
        name = x509.Name(
            [
                x509.NameAttribute(oid, value if oid != NameOID.COUNTRY_NAME else "GB")
                for oid, value in attributes
            ]
        )
        assert parse_name_key(name.rfc4514_string()) == name_key(name)
