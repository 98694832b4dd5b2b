"""GBCS messages travel as hex text as often as bytes; turn either into bytes.

Whitespace anywhere (spaces, newlines, tabs: a pasted hex dump) is ignored,
as is one leading ``0x``. A character that is not hex is reported at the byte
offset it would have filled, the same offsets the decoder uses.
"""

from __future__ import annotations

import re

from chfw.exceptions import GbcsHexError

_NOT_HEX = re.compile(r"[^0-9A-Fa-f]")

MessageInput = bytes | bytearray | memoryview | str


def message_bytes(data: MessageInput) -> bytes:
    """The message's bytes: ``data`` itself, or the octets its hex text spells."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if not isinstance(data, str):
        raise TypeError(f"a GBCS message is bytes or hex text, not {type(data).__name__}")
    compact = "".join(data.split())
    if compact[:2] in ("0x", "0X"):
        compact = compact[2:]
    bad = _NOT_HEX.search(compact)
    if bad is not None:
        raise GbcsHexError(f"{bad.group()!r} is not a hex digit", bad.start() // 2)
    if len(compact) % 2:
        raise GbcsHexError(
            f"odd number of hex digits ({len(compact)}): the last byte is incomplete",
            len(compact) // 2,
        )
    return bytes.fromhex(compact)
