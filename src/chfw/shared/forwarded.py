"""Believe ``X-Forwarded-For`` and ``X-Forwarded-Proto`` only from configured proxies.

Behind a TLS-terminating proxy the server sees plain HTTP from the proxy's
address: without the forwarded headers, session cookies would lose their
``Secure`` flag and every client would share the proxy's failure throttle
(:mod:`chfw.shared.throttle`). But anyone can send those headers, so they are
believed only when the connection comes from an address in
``trusted_proxies`` (addresses or networks; default none), and ignored from
everyone else. uvicorn's own proxy-header handling (which trusts 127.0.0.1
by default) is switched off by :func:`chfw.shared.serving.server_config`, so this is
the only place forwarded headers are read.

From a trusted proxy, the client is the right-most address of
``X-Forwarded-For`` that is not itself a trusted proxy (addresses further
left were written by the client and prove nothing), and the scheme is the
last ``X-Forwarded-Proto`` value when it is ``http`` or ``https``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from chfw.exceptions import ConfigError

Scope = MutableMapping[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The networks whose forwarded headers are believed (empty: nobody's)."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """``"10.0.0.5, 10.1.0.0/16, ::1"``; ConfigError naming the entry that is not one."""
        networks = []
        for part in text.replace(";", ",").split(","):
            entry = part.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(
                    f"trusted_proxies: {entry!r} is not an IP address or network "
                    "(e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return cls(tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client behind ``peer`` (a trusted proxy) from its ``X-Forwarded-For``."""
        client = peer
        for hop in reversed([hop.strip() for hop in forwarded_for.split(",")]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break  # not an address: believe nothing further left
            client = hop
            if not self.trusts(hop):
                break
        return client


def _header(scope: Scope, name: bytes) -> str | None:
    values = [value.decode("latin-1") for key, value in scope["headers"] if key.lower() == name]
    return ", ".join(values) if values else None


class ForwardedHeaders:
    """ASGI wrapper: a trusted proxy's forwarded client and scheme become the request's."""

    def __init__(self, app: App, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            peer = scope["client"][0]
            if self.proxies.trusts(peer):
                scope = dict(scope)
                proto = _header(scope, b"x-forwarded-proto")
                if proto is not None:
                    last = proto.split(",")[-1].strip().lower()
                    if last in ("http", "https"):
                        if scope["type"] == "websocket":
                            last = "wss" if last == "https" else "ws"
                        scope["scheme"] = last
                forwarded_for = _header(scope, b"x-forwarded-for")
                if forwarded_for is not None:
                    scope["client"] = (self.proxies.client(peer, forwarded_for), 0)
        await self.app(scope, receive, send)
