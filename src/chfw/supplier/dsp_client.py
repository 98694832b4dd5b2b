"""A synchronous HTTP client for the DSP's Service User API, as one Service User.

Used by ``chfw receiver sync`` (the firmware feed, :mod:`chfw.supplier.feed_sync`)
and the dashboard's DCC campaigns page (:mod:`chfw.supplier.dcc_campaigns`).
The bearer token is the user's inventory token (``chfw users token`` on the DSP).
https only, verified against ``ca_bundle`` (default: the system's CAs), unless
``allow_http`` (a local test DSP: the token then travels in clear). Redirects
are not followed and the environment's proxies are not used: the DSP URL is
configured, and the token must go nowhere else.
"""

from __future__ import annotations

from typing import Any

import httpx

from chfw import __version__
from chfw.exceptions import InvalidValueError
from chfw.shared.tls import TlsConfig

USER_AGENT = f"chfw-receiver/{__version__}"
_SNIPPET = 200


def client_options(
    base_url: str,
    token: str,
    *,
    ca_bundle: str | None,
    client_cert: str | None,
    client_key: str | None,
    allow_http: bool,
    timeout: float,
) -> dict[str, Any]:
    """The checked settings of an httpx client (sync or async) that talks to the DSP as one
    Service User: https unless ``allow_http``, the token as bearer, TLS verified, no
    redirects followed, no proxy or netrc from the environment."""
    schemes = ("https://", "http://") if allow_http else ("https://",)
    if not base_url.startswith(schemes):
        raise InvalidValueError(
            f"DSP URL {base_url!r} is not an https URL (e.g. https://dsp.example:8064); "
            "plain http only with --dsp-allow-http, for a local test DSP"
        )
    if not token.strip():
        raise InvalidValueError(
            "no DSP inventory token: issue one on the DSP with `chfw users token USER_ID`"
        )
    tls = TlsConfig(ca_bundle=ca_bundle, client_cert=client_cert, client_key=client_key)
    return {
        "base_url": base_url.rstrip("/"),
        "headers": {"authorization": f"Bearer {token.strip()}", "user-agent": USER_AGENT},
        "timeout": timeout,
        "verify": tls.ssl_context(),
        "trust_env": False,  # the DSP URL is configured; the token must go nowhere else
        "follow_redirects": False,
    }


class DspClient:
    """GET and POST JSON to the DSP; ``transport`` swaps the network for tests."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ca_bundle: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        allow_http: bool = False,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        options = client_options(
            base_url,
            token,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
            allow_http=allow_http,
            timeout=timeout,
        )
        self.base_url: str = options["base_url"]
        self._client = httpx.Client(transport=transport, **options)

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """Raises :class:`httpx.HTTPError` when the DSP cannot be reached."""
        return self._client.get(path, params=params)

    def post(self, path: str, body: Any) -> httpx.Response:
        """Raises :class:`httpx.HTTPError` when the DSP cannot be reached."""
        return self._client.post(path, json=body)


def snippet(response: httpx.Response) -> str:
    """The start of an answer's text, on one line, for an error message."""
    text = " ".join(response.text[: _SNIPPET * 2].split())
    return text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")
