"""Compare X.509 issuer names written as RFC 2253 / RFC 4514 strings.

KeyInfo carries the signer's issuer as text, and each XML-DSig implementation
writes it a little differently: Java's ``X500Principal`` emits ``CN=Z1,OU=07``,
OpenSSL's one-line form ``OU = 07, CN = Z1``, others use lower-case attribute
types or dotted OIDs. A trust-store lookup must not fail on such cosmetics, so
both sides are reduced to one key: the sorted (OID, value) pairs. Values are
compared exactly (after unescaping); attribute types, spacing and order are not.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography import x509
from cryptography.x509.oid import NameOID

from chfw.exceptions import ChfwError

NameKey = tuple[tuple[str, str], ...]
"""A normalised distinguished name: sorted (dotted OID, value) pairs."""

_TYPE_NAMES: dict[str, str] = {
    "CN": NameOID.COMMON_NAME.dotted_string,
    "C": NameOID.COUNTRY_NAME.dotted_string,
    "L": NameOID.LOCALITY_NAME.dotted_string,
    "ST": NameOID.STATE_OR_PROVINCE_NAME.dotted_string,
    "S": NameOID.STATE_OR_PROVINCE_NAME.dotted_string,
    "STREET": NameOID.STREET_ADDRESS.dotted_string,
    "O": NameOID.ORGANIZATION_NAME.dotted_string,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string,
    "DC": NameOID.DOMAIN_COMPONENT.dotted_string,
    "UID": NameOID.USER_ID.dotted_string,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER.dotted_string,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS.dotted_string,
    "E": NameOID.EMAIL_ADDRESS.dotted_string,
    "T": NameOID.TITLE.dotted_string,
    "TITLE": NameOID.TITLE.dotted_string,
    "SN": NameOID.SURNAME.dotted_string,
    "SURNAME": NameOID.SURNAME.dotted_string,
    "GIVENNAME": NameOID.GIVEN_NAME.dotted_string,
    "G": NameOID.GIVEN_NAME.dotted_string,
    "INITIALS": NameOID.INITIALS.dotted_string,
    "GENERATIONQUALIFIER": NameOID.GENERATION_QUALIFIER.dotted_string,
    "DNQUALIFIER": NameOID.DN_QUALIFIER.dotted_string,
    "PSEUDONYM": NameOID.PSEUDONYM.dotted_string,
    "ORGANIZATIONIDENTIFIER": NameOID.ORGANIZATION_IDENTIFIER.dotted_string,
    "POSTALCODE": NameOID.POSTAL_CODE.dotted_string,
    "BUSINESSCATEGORY": NameOID.BUSINESS_CATEGORY.dotted_string,
}

_SPACE = " "
_HEX = "0123456789abcdefABCDEF"

# DER string types a "#hex" value may carry, with the codec that reads them.
_DER_STRING_CODECS: dict[int, str] = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x12: "ascii",  # NumericString
    0x14: "latin-1",  # TeletexString (T61), read as Latin-1 like most tools
    0x1A: "ascii",  # VisibleString
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
}


class NameSyntaxError(ChfwError, ValueError):
    """A distinguished-name string is not RFC 2253 / RFC 4514 syntax."""


def name_key(name: x509.Name) -> NameKey:
    """The normalised key of a certificate's name (issuer or subject)."""
    pairs = []
    for attribute in name:
        value = attribute.value
        text = value if isinstance(value, str) else "#" + value.hex()
        pairs.append((attribute.oid.dotted_string, text))
    return tuple(sorted(pairs))


@lru_cache(maxsize=256)
def parse_name_key(text: str) -> NameKey:
    """The normalised key of an RFC 2253 string, or :class:`NameSyntaxError`.

    Cached: a receiver sees the same few issuer names over and over.
    """
    return tuple(sorted(_Parser(text).parse()))


class _Parser:
    """A small hand-written RFC 4514 reader (cryptography's is strict about spacing and case)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> list[tuple[str, str]]:
        if not self.text.strip(_SPACE):
            raise NameSyntaxError("issuer name is empty")
        pairs = [self._attribute()]
        while self.pos < len(self.text):
            separator = self.text[self.pos]
            if separator not in ",;+":
                raise self._error(f"expected ',' or '+' but found {separator!r}")
            self.pos += 1
            pairs.append(self._attribute())
        return pairs

    def _error(self, problem: str) -> NameSyntaxError:
        shown = self.text if len(self.text) <= 100 else self.text[:100] + "..."
        return NameSyntaxError(f"issuer name {shown!r}: {problem} at character {self.pos}")

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == _SPACE:
            self.pos += 1

    def _attribute(self) -> tuple[str, str]:
        self._skip_spaces()
        equals = self.text.find("=", self.pos)
        if equals < 0:
            raise self._error("attribute without '='")
        oid = _attribute_oid(self.text[self.pos : equals].strip(_SPACE), self)
        self.pos = equals + 1
        self._skip_spaces()
        if self.pos < len(self.text) and self.text[self.pos] == "#":
            value = self._hex_value()
        elif self.pos < len(self.text) and self.text[self.pos] == '"':
            value = self._quoted_value()
        else:
            value = self._plain_value()
        self._skip_spaces()
        return oid, value

    def _hex_value(self) -> str:
        start = self.pos + 1
        end = start
        while end < len(self.text) and self.text[end] in _HEX:
            end += 1
        digits = self.text[start:end]
        self.pos = end
        if not digits or len(digits) % 2:
            raise self._error("'#' value needs an even number of hex digits")
        return _decode_der_string(bytes.fromhex(digits))

    def _quoted_value(self) -> str:
        self.pos += 1
        out: list[bytes] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return self._utf8(out)
            if char == "\\":
                out.append(self._escape())
                continue
            out.append(char.encode("utf-8", "surrogatepass"))
            self.pos += 1
        raise self._error("unterminated quoted value")

    def _plain_value(self) -> str:
        raw: list[bytes] = []
        trailing_plain_spaces = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in ",;+":
                break
            if char == "\\":
                raw.append(self._escape())
                trailing_plain_spaces = 0
                continue
            raw.append(char.encode("utf-8", "surrogatepass"))
            trailing_plain_spaces = trailing_plain_spaces + 1 if char == _SPACE else 0
            self.pos += 1
        if trailing_plain_spaces:
            raw = raw[:-trailing_plain_spaces]
        return self._utf8(raw)

    def _utf8(self, chunks: list[bytes]) -> str:
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise self._error("escaped bytes are not UTF-8") from None

    def _escape(self) -> bytes:
        """Read one escape at ``pos`` (a backslash): ``\\,`` style or ``\\XX``, one UTF-8 byte."""
        following = self.text[self.pos + 1 : self.pos + 3]
        if len(following) == 2 and all(c in _HEX for c in following):
            self.pos += 3
            return bytes.fromhex(following)
        if not following:
            raise self._error("dangling backslash")
        self.pos += 2
        return following[0].encode("utf-8", "surrogatepass")


_ARC_DIGITS_MAX = 40  # an OID arc of 2**128 has 39 digits; no real one comes close


def _is_arc(part: str) -> bool:
    """A dotted-OID arc: ASCII digits, of a length ``int()`` reads at once."""
    return part.isascii() and part.isdigit() and len(part) <= _ARC_DIGITS_MAX


def _attribute_oid(attribute_type: str, parser: _Parser) -> str:
    upper = attribute_type.upper()
    if upper.startswith("OID."):
        upper = upper[4:]
    if upper in _TYPE_NAMES:
        return _TYPE_NAMES[upper]
    parts = upper.split(".")
    if len(parts) >= 2 and all(_is_arc(part) for part in parts):
        return ".".join(str(int(part)) for part in parts)
    raise parser._error(f"unknown attribute type {attribute_type!r}")


def _decode_der_string(der: bytes) -> str:
    """The text of a DER-encoded string value, or the hex itself for anything else."""
    fallback = "#" + der.hex()
    if len(der) < 2 or der[0] not in _DER_STRING_CODECS:
        return fallback
    length = der[1]
    offset = 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[2 : 2 + size], "big")
        offset = 2 + size
    if offset + length != len(der):
        return fallback
    try:
        return der[offset:].decode(_DER_STRING_CODECS[der[0]])
    except UnicodeDecodeError:
        return fallback
