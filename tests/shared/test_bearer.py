"""chfw.shared.bearer: the one parser of ``Authorization: Bearer`` headers."""

from __future__ import annotations

import pytest

from chfw.shared.bearer import bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        ("Bearer a.b-c_d~e+f/g=", "a.b-c_d~e+f/g="),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer    ", None),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
        ("Bearerabc", None),
        ("Token abc", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
