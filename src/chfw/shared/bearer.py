"""The one parser of ``Authorization: Bearer <token>`` headers (RFC 6750 section 2.1).

The CSP intake, the Service Users' inventory endpoint and the dashboards all take
a bearer credential; each asks this function for it, so they agree on what a
well-formed header is: the scheme in any case, then a space, then a token
(surrounding whitespace dropped).
"""

from __future__ import annotations


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization`` header's value; None when there is no header, the
    scheme is not Bearer, or the token is empty."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
