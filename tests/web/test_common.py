"""What both dashboards share."""

from __future__ import annotations

from chfw.shared.web.common import fingerprint


class TestFingerprint:
    """Charts are fetched again only when the figures they show change."""

    def test_stable_and_sensitive(self) -> None:
        assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
        assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
