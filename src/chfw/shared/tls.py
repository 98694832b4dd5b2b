"""TLS client settings shared by both products: the DSP delivering alerts, the receiver
reading the DSP's inventory. Verification is always on; only the CAs and the client
certificate vary."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from chfw.exceptions import ConfigError


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """The TLS set-up of one client: trusted CAs and an optional client certificate (paths)."""

    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context; ConfigError names the file that could not be used."""
        try:
            context = ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot use CA bundle {self.ca_bundle}: {exc}") from None
        if self.client_cert:
            try:
                context.load_cert_chain(self.client_cert, self.client_key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot use client certificate {self.client_cert} "
                    f"(key {self.client_key or 'in the same file'}): {exc}"
                ) from None
        return context
