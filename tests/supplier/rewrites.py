"""Rewrites of a signed XML document that canonical form cannot see (and a few it can).

Each rewrite works on the document's text, split into markup and character
data, and keeps it well-formed. Most leave the digest and the signature as
they were -- a comment, a CDATA section or a character reference inside a
value, attributes reordered or requoted, whitespace inside tags or between
elements, an empty element written short, a namespace declared again -- and
so must leave what the receiver records exactly as it was. Some change what
canonical form produces (another prefix, a processing instruction) and must
be refused. A receiver may accept the first kind or refuse any; it must never
record something else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

_PIECES = re.compile(rb"(<[^>]*>)")
_START_TAG = re.compile(rb"<([A-Za-z][\w.-]*:)?[\w.-]+(\s[^>]*)?>$")
_ATTRIBUTE = re.compile(rb'\s+([\w:.-]+)="([^"]*)"')
SR_NS = b"http://www.dccinterface.co.uk/ServiceUserGateway"


def pieces(document: bytes) -> list[bytes]:
    """Markup and character data, alternating as they come (empty text kept out)."""
    return [part for part in _PIECES.split(document) if part]


def _texts(parts: list[bytes]) -> list[int]:
    return [i for i, p in enumerate(parts) if not p.startswith(b"<")]


def _start_tags(parts: list[bytes]) -> list[int]:
    return [i for i, p in enumerate(parts) if _START_TAG.match(p) and not p.startswith(b"<?")]


_TAG = re.compile(rb"</?[A-Za-z]")


def _gaps(parts: list[bytes]) -> list[int]:
    """Indexes between two tags in element-only content (DUIS has no mixed content)."""
    return [
        i
        for i in range(1, len(parts))
        if _TAG.match(parts[i - 1])
        and _TAG.match(parts[i])
        and not (_START_TAG.match(parts[i - 1]) and parts[i].startswith(b"</"))
    ]


@dataclass(frozen=True)
class Rewrite:
    """One change: its name, whether canonical form can see it, and how to make it."""

    name: str
    keeps_digest: bool
    apply: Callable[[list[bytes], st.DataObject], list[bytes]]


def _cuts(text: bytes) -> list[int]:
    """Positions in character data that do not fall inside a reference (``&...;``)."""
    inside = set()
    for reference in re.finditer(rb"&[^;]*;", text):
        inside.update(range(reference.start() + 1, reference.end()))
    return [i for i in range(len(text) + 1) if i not in inside]


def _split_text(
    parts: list[bytes], data: st.DataObject, make: Callable[[bytes, bytes], bytes]
) -> list[bytes]:
    choices = _texts(parts)
    index = data.draw(st.sampled_from(choices), label="text")
    text = parts[index]
    cut = data.draw(st.sampled_from(_cuts(text)), label="cut")
    return [*parts[:index], make(text[:cut], text[cut:]), *parts[index + 1 :]]


def _comment(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    words = data.draw(st.sampled_from([b"", b" ", b"x", b"0123", b"a-b"]), label="comment")
    return _split_text(parts, data, lambda head, tail: head + b"<!--" + words + b"-->" + tail)


def _comment_between(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    at = data.draw(st.sampled_from(_gaps(parts)), label="gap")
    return [*parts[:at], b"<!-- between -->", *parts[at:]]


_NAMED = {b"amp": b"&", b"lt": b"<", b"gt": b">", b"quot": b'"', b"apos": b"'"}


def _unescape(text: bytes) -> bytes:
    """Character data with its references replaced by what they stand for (for CDATA)."""

    def character(reference: re.Match[bytes]) -> bytes:
        name = reference[1]
        if name.startswith(b"#x"):
            return chr(int(name[2:], 16)).encode()
        if name.startswith(b"#"):
            return chr(int(name[1:])).encode()
        return _NAMED[name]

    return re.sub(rb"&([^;]+);", character, text)


def _cdata(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    index = data.draw(st.sampled_from(_texts(parts)), label="text")
    text = parts[index]
    cuts = _cuts(text)
    start = data.draw(st.sampled_from(cuts), label="from")
    end = data.draw(st.sampled_from([c for c in cuts if c >= start]), label="to")
    middle = _unescape(text[start:end])
    wrapped = text[:start] + b"<![CDATA[" + middle + b"]]>" + text[end:]
    return [*parts[:index], wrapped, *parts[index + 1 :]]


def _character_reference(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    index = data.draw(st.sampled_from(_texts(parts)), label="text")
    text = parts[index]
    if b"&" in text:  # keep entity references whole: the documents here have none
        return parts
    plain = list(range(len(text)))
    at = data.draw(st.sampled_from(plain), label="char")
    form = data.draw(st.sampled_from([b"&#x%X;", b"&#x%x;", b"&#%d;", b"&#x000%X;"]), label="ref")
    swapped = text[:at] + form % text[at] + text[at + 1 :]
    return [*parts[:index], swapped, *parts[index + 1 :]]


def _reorder_attributes(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    tags = [i for i in _start_tags(parts) if len(_ATTRIBUTE.findall(parts[i])) >= 1]
    index = data.draw(st.sampled_from(tags), label="tag")
    tag = parts[index]
    attributes = _ATTRIBUTE.findall(tag)
    name = tag[1:].split(maxsplit=1)[0].rstrip(b"/>")
    order = data.draw(st.permutations(attributes), label="order")
    quote = data.draw(st.sampled_from([b'"', b"'"]), label="quote")
    space = data.draw(st.sampled_from([b" ", b"\n", b"\t  "]), label="space")
    empty = tag.endswith(b"/>")
    rebuilt = b"<" + name
    for attribute, value in order:
        value_quoted = value if quote == b'"' else value.replace(b"'", b"&apos;")
        rebuilt += space + attribute + b" = " + quote + value_quoted + quote
    rebuilt += b" />" if empty else b" >"
    return [*parts[:index], rebuilt, *parts[index + 1 :]]


def _space_in_end_tag(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    ends = [i for i, p in enumerate(parts) if p.startswith(b"</")]
    index = data.draw(st.sampled_from(ends), label="end tag")
    return [*parts[:index], parts[index][:-1] + b" \n>", *parts[index + 1 :]]


def _space_between(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    at = data.draw(st.sampled_from(_gaps(parts)), label="gap")
    return [*parts[:at], data.draw(st.sampled_from([b"\n", b"  ", b"\n\t"])), *parts[at:]]


def _short_empty_element(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    empties = [
        i
        for i in range(len(parts) - 1)
        if _START_TAG.match(parts[i]) and parts[i + 1].startswith(b"</")
    ]
    if not empties:
        return parts
    index = data.draw(st.sampled_from(empties), label="empty")
    return [*parts[:index], parts[index][:-1] + b"/>", *parts[index + 2 :]]


def _declaration(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    head = data.draw(
        st.sampled_from(
            [
                b'<?xml version="1.0"?>',
                b'<?xml version="1.0" encoding="UTF-8"?>\n',
                b"<?xml version='1.0' encoding='utf-8' standalone='yes'?>",
            ]
        ),
        label="declaration",
    )
    return [head, *parts, b"\n"]


def _namespace_again(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    tags = [
        i
        for i in _start_tags(parts)[1:]
        if parts[i].startswith(b"<sr:") and b"xmlns:sr" not in parts[i]
    ]
    if not tags:  # another prefix came first
        return parts
    index = data.draw(st.sampled_from(tags), label="tag")
    tag = parts[index]
    again = tag[:-1] + b' xmlns:sr="' + SR_NS + b'"' + tag[-1:]
    return [*parts[:index], again, *parts[index + 1 :]]


def _another_prefix(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    prefix = data.draw(st.sampled_from([b"dcc", b"s", b""]), label="prefix")
    new = prefix + b":" if prefix else b""
    out = []
    for part in parts:
        if part.startswith(b"<"):
            part = part.replace(b"<sr:", b"<" + new).replace(b"</sr:", b"</" + new)
            part = part.replace(b"xmlns:sr=", b"xmlns:" + prefix + b"=" if prefix else b"xmlns=")
        out.append(part)
    return out


def _processing_instruction(parts: list[bytes], data: st.DataObject) -> list[bytes]:
    return _split_text(parts, data, lambda head, tail: head + b"<?chfw split?>" + tail)


REWRITES = (
    Rewrite("comment inside a value", True, _comment),
    Rewrite("comment between elements", True, _comment_between),
    Rewrite("CDATA section", True, _cdata),
    Rewrite("character reference", True, _character_reference),
    Rewrite("attributes reordered, requoted, spaced", True, _reorder_attributes),
    Rewrite("whitespace in an end tag", True, _space_in_end_tag),
    Rewrite("whitespace between elements", True, _space_between),
    Rewrite("empty element written short", True, _short_empty_element),
    Rewrite("XML declaration", True, _declaration),
    Rewrite("namespace declared again", True, _namespace_again),
    Rewrite("another namespace prefix", False, _another_prefix),
    Rewrite("processing instruction inside a value", False, _processing_instruction),
)
