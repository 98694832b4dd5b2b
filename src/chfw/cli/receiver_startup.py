"""`chfw receiver serve`'s start-up checks: what is trusted, where it listens, what it logs.

Each check ends the command with one line that names the file or the port and
the fix, before anything is announced: the server certificate and key
(:func:`chfw.shared.serving.tls_options`), the trusted signers (listed one
per line, an expired one refused), the DSP (``receiver_lookups.lookup_worker``),
then the port, bound before "receiving alerts on …" is printed.
"""

from __future__ import annotations

from pathlib import Path

import typer

from chfw.core.clock import utc_now
from chfw.core.signing import TrustStore
from chfw.exceptions import ConfigError
from chfw.shared.certificates import describe_signers
from chfw.shared.handshakes import HandshakeFailures
from chfw.supplier.app import ReceiverApp


def trusted_signers(paths: list[Path]) -> TrustStore:
    """The trust store of ``--trust``; one line per signer on stderr, ConfigError for an
    expired one or for a file without a certificate."""
    if not paths:
        raise ConfigError("give the DSP's signing certificate with --trust CERT.pem")
    per_file = [(path, list(TrustStore.from_files(path))) for path in paths]
    for path, certificates in per_file:
        if not certificates:
            raise ConfigError(f"trust file {path} holds no certificate")
    for line in describe_signers(per_file, utc_now()):
        typer.echo(line, err=True)
    return TrustStore.from_files(*paths)


def handshake_watch(app: ReceiverApp) -> HandshakeFailures:
    """Failed TLS handshakes counted in the app's /metrics and logged (rate-limited)."""
    return HandshakeFailures(app.metrics.handshake_failed)
