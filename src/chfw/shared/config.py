"""Settings: one dataclass, read from a TOML file and overridden by CHFW_* variables.

Precedence (last wins): defaults < config file < environment. The config
file is ``--config PATH``, else ``$CHFW_CONFIG``, else ``./chfw.toml`` when it
exists. Relative paths in the file are taken relative to the file's folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from chfw.core.domain.values import UserId
from chfw.exceptions import ConfigError, InvalidValueError

DEFAULT_CONFIG_NAME = "chfw.toml"
# DCC Boxed's DSP User ID: the default first part of every ResponseID we issue.
DEFAULT_DCC_USER_ID = "90-B3-D5-1F-30-00-00-02"

_PATH_FIELDS = ("signing_key", "signing_cert", "duis_xsd_dir", "delivery_ca_bundle")


@dataclass(frozen=True)
class Settings:
    """Everything a chfw process needs to know; see docs/configuration.md."""

    database_url: str = "sqlite:///chfw.db"
    dcc_user_id: str = DEFAULT_DCC_USER_ID
    signing_key: str | None = None
    signing_cert: str | None = None
    duis_xsd_dir: str | None = None  # official DUIS XSDs, <dir>/<version>/; None = bundled subset
    # Intake (CSP Management Gateway side).
    host: str = "127.0.0.1"
    port: int = 8064
    intake_max_body_bytes: int = 4 * 1024 * 1024
    intake_batch_max: int = 10_000
    intake_max_backlog: int = 5_000_000  # pending outbox rows beyond which intake answers 503
    intake_concurrency: int = 1  # submissions one intake process works on at once
    # HTTP servers (`chfw serve`, `chfw receiver serve`): what one client may cost.
    server_request_timeout_seconds: float = 30.0  # a request must arrive in full within this
    server_keep_alive_seconds: float = 15.0
    server_max_header_bytes: int = 64 * 1024
    server_max_connections: int = 2048
    # Addresses or networks (comma-separated, e.g. "10.0.0.5, 10.1.0.0/16") of TLS-terminating
    # proxies in front of chfw: only from these are X-Forwarded-For/-Proto believed. "": none.
    trusted_proxies: str = ""
    # Failed authentications (CSP credentials, inventory tokens, dashboard tokens) one client
    # may make in the window before it is answered 429 without being checked; 0: no limit.
    auth_max_failures: int = 20
    auth_failure_window_seconds: float = 60.0
    # Web dashboard of `chfw serve` (/dashboard). None: a random token is made at each start
    # (printed as a sign-in link when stderr is a terminal). Set one (16+ characters) to keep it.
    dashboard_token: str | None = None
    # The dashboard and /metrics read their figures from the database at most this often.
    stats_cache_seconds: float = 5.0
    # Delivery.
    delivery_timeout_seconds: float = 10.0
    delivery_ca_bundle: str | None = None  # None: the system trust store
    delivery_max_in_flight: int = 16  # per endpoint, unless the user sets its own
    retry_initial_seconds: float = 2.0
    retry_max_seconds: float = 3600.0
    retry_horizon_hours: float = 72.0
    lease_seconds: float = 60.0
    # Permanent refusals (400/413) in a row from one Service User's endpoint after which
    # delivery to that user is suspended (alerts stay pending; `chfw users resume`). 0: never.
    suspend_after_refusals: int = 20
    worker_batch_size: int = 500
    worker_poll_seconds: float = 0.2
    # CSP credential rotation: the replaced credential is still accepted this long.
    csp_rotation_grace_seconds: float = 600.0
    # PostgreSQL connections each process keeps (SQLAlchemy pool), and how many more it may
    # open for a burst. Not used by SQLite.
    database_pool_size: int = 5
    database_max_overflow: int = 10
    # Where the settings came from, for messages.
    source: str = field(default="defaults", compare=False)

    def __post_init__(self) -> None:
        for name, (low, high, open_low) in LIMITS.items():
            check_range(name, getattr(self, name), low, high, open_low, self.source)
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ConfigError(
                f"setting retry_max_seconds ({self.retry_max_seconds:g}) must be at least "
                f"retry_initial_seconds ({self.retry_initial_seconds:g}) (from {self.source})"
            )
        check_database_url(self.database_url)

    @property
    def dcc_user(self) -> UserId:
        try:
            return UserId.parse(self.dcc_user_id)
        except InvalidValueError as exc:
            raise ConfigError(f"dcc_user_id: {exc}") from None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


#: Every numeric setting's range: (lowest, highest or None, lowest excluded).
LIMITS: dict[str, tuple[float, float | None, bool]] = {
    "port": (1, 65535, False),
    "intake_max_body_bytes": (1024, None, False),
    "intake_batch_max": (1, None, False),
    "intake_max_backlog": (0, None, False),
    "intake_concurrency": (1, 256, False),
    "server_request_timeout_seconds": (0, None, True),
    "server_keep_alive_seconds": (0, None, True),
    "server_max_header_bytes": (256, None, False),
    "server_max_connections": (1, None, False),
    "auth_max_failures": (0, None, False),
    "auth_failure_window_seconds": (0, None, True),
    "stats_cache_seconds": (0, None, False),
    "delivery_timeout_seconds": (0, None, True),
    "delivery_max_in_flight": (1, 10_000, False),
    "retry_initial_seconds": (0.001, None, False),
    "retry_max_seconds": (0.001, None, False),
    "retry_horizon_hours": (0, None, True),
    "lease_seconds": (1, None, False),
    "suspend_after_refusals": (0, None, False),
    "worker_batch_size": (1, 100_000, False),
    "worker_poll_seconds": (0, 60, True),
    "csp_rotation_grace_seconds": (0, 7 * 86400, False),
    "database_pool_size": (1, 1000, False),
    "database_max_overflow": (0, 1000, False),
}


def check_range(
    name: str, value: Any, low: float, high: float | None, open_low: bool, source: str
) -> None:
    """ConfigError naming the setting unless ``value`` is a finite number in its range."""
    lowest = f"more than {low:g}" if open_low else f"at least {low:g}"
    wanted = lowest if high is None else f"{lowest} and at most {high:g}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (value <= low if open_low else value < low)
        or (high is not None and value > high)
    ):
        raise ConfigError(
            f"setting {name} = {value!r} is out of range: must be {wanted} (from {source})"
        )


def check_database_url(url: str) -> None:
    """ConfigError for a database URL that cannot be meant as written: more than one ``@``
    before the host is a password with an unencoded ``@``."""
    _scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            "setting database_url is not a URL (expected sqlite:///FILE or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
        )
    authority = rest.split("/", 1)[0]
    if authority.count("@") > 1:
        raise ConfigError(
            "setting database_url has more than one '@' before the host: characters such as "
            "'@', ':', '/' or '%' in the user name or password must be percent-encoded "
            "('@' -> %40, ':' -> %3A, '/' -> %2F, '%' -> %25)"
        )


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    text_kind = str(kind)
    try:
        if "int" in text_kind and "float" not in text_kind:
            return int(raw)
        if "float" in text_kind:
            return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}={raw!r} is not a number") from None
    if raw is None:
        return None
    if isinstance(raw, list):  # TOML arrays, e.g. trusted_proxies = ["10.0.0.5", "10.1.0.0/16"]
        return ", ".join(str(item) for item in raw)
    return str(raw)


def load_settings(
    config_path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the config file, then CHFW_* environment variables."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: list[str] = []
    path = Path(config_path) if config_path else None
    if path is None and env.get("CHFW_CONFIG"):
        path = Path(env["CHFW_CONFIG"])
    if path is None and Path(DEFAULT_CONFIG_NAME).is_file():
        path = Path(DEFAULT_CONFIG_NAME)
    known = {f.name: f for f in fields(Settings) if f.name != "source"}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (run `chfw init` to create one)")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        base = path.resolve().parent
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            value = _coerce(key, raw, known[key].type)
            if key in _PATH_FIELDS and value and not Path(value).is_absolute():
                value = str(base / value)
            if key == "database_url" and str(value).startswith("sqlite:///"):
                db_path = str(value)[len("sqlite:///") :]
                if db_path and not db_path.startswith("/") and db_path != ":memory:":
                    value = f"sqlite:///{base / db_path}"
            values[key] = value
        sources.append(str(path))
    for key, spec in known.items():
        env_key = f"CHFW_{key.upper()}"
        if env_key in env:
            values[key] = _coerce(key, env[env_key], spec.type)
            sources.append(env_key)
    values["source"] = ", ".join(sources) or "defaults"
    return Settings(**values)


def render_settings_toml(settings: Settings) -> str:
    """A config file with every setting, for `chfw init`."""
    lines = ["# chfw settings; every key can be overridden by CHFW_<KEY> in the environment."]
    for spec in fields(Settings):
        if spec.name == "source":
            continue
        value = getattr(settings, spec.name)
        if value is None:
            lines.append(f"# {spec.name} = ")
        elif isinstance(value, bool | int | float):
            lines.append(f"{spec.name} = {value}")
        else:
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{spec.name} = "{escaped}"')
    return "\n".join(lines) + "\n"
