"""The DCC alert codes each DUIS version defines (DCCAlertCode's enumeration), no I/O.

Read off DCC's DUIS schemas: 5.0 has AD1, N1 to N62 without N32, and N999;
5.1 adds N63, N64 and N65, and 5.2 to 5.4 define the same set. A receiver
checks an alert's code against its own version's set: a code its version
lacks is refused, not stored as if it were known.
"""

from __future__ import annotations

from chfw.core.domain.values import DuisVersion

_DUIS_5_0 = frozenset({"AD1", "N999", *(f"N{n}" for n in range(1, 63) if n != 32)})
_DUIS_5_1 = _DUIS_5_0 | {"N63", "N64", "N65"}


def dcc_alert_codes(version: DuisVersion) -> frozenset[str]:
    """Every DCCAlertCode that DUIS ``version`` allows."""
    return _DUIS_5_1 if version.supports_n64 else _DUIS_5_0
