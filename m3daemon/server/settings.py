"""``DIR/server.toml``: where the server listens and how it protects itself.

``server init`` writes the file with every setting and a comment; ``server run`` reads it (its
``--host`` and ``--port`` override it for that run). Paths are relative to ``DIR``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from m3daemon.errors import ConfigError
from m3daemon.i18n import _

__all__ = ["DEFAULT_PORT", "Limits", "ServerSettings", "is_loopback_host", "load_settings", "normalize_url_path",
           "settings_text"]

DEFAULT_PORT = 8443
GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 4 * GiB  # PUT bodies (a long video fits)
    max_body_bytes: int = 1 * MiB  # any other request body (PROPFIND, PROPPATCH, LOCK XML)
    requests_per_second: float = 50.0  # per client address, token bucket refill
    request_burst: int = 500  # per client address, token bucket size
    auth_max_failures: int = 10  # wrong passwords per address, and per account, within the window
    auth_window_seconds: int = 900
    trusted_login_days: int = 30  # an address an account logged in from is not locked out for it
    threads: int = 16
    connections_per_address: int = 32  # open connections per client address (a hall may share one)
    max_connections: int = 1000  # open connections in all
    handshake_seconds: float = 10.0  # a TLS handshake must be done within this …
    header_seconds: float = 10.0  # … and a request head within this of its first byte
    log_max_bytes: int = 10 * MiB
    log_backups: int = 5


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    path: str = "/"  # URL path of the congregation folder
    cert: str = "tls/server-cert.pem"  # relative to the server folder, or absolute
    key: str = "tls/server-key.pem"
    limits: Limits = field(default_factory=Limits)

    def cert_path(self, root: Path) -> Path:
        return root / self.cert

    def key_path(self, root: Path) -> Path:
        return root / self.key


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def settings_text(s: ServerSettings) -> str:
    """The file ``server init`` writes: every setting, with what it means."""
    lim = s.limits
    return f"""\
# m3daemon server settings. `m3daemon server run DIR` reads this file; restart the server after a change.

[server]
# Where to listen. "127.0.0.1" (the default) is this computer only. To serve the other computers of
# the Kingdom Hall, use this computer's LAN address (e.g. "192.168.1.10") or "0.0.0.0" (every network).
host = {_toml_str(s.host)}
port = {s.port}
# URL path of the congregation folder (members use it as the congregation sync folder).
path = {_toml_str(s.path)}

[tls]
# Server certificate chain and key (PEM). Relative paths are relative to this folder.
cert = {_toml_str(s.cert)}
key = {_toml_str(s.key)}

[limits]
max_upload_bytes = {lim.max_upload_bytes}      # largest file a coordinator can upload
max_body_bytes = {lim.max_body_bytes}          # largest PROPFIND/PROPPATCH/LOCK body
requests_per_second = {lim.requests_per_second}    # per client address (average)
request_burst = {lim.request_burst}              # per client address (short bursts)
auth_max_failures = {lim.auth_max_failures}           # wrong passwords (per address, per account) …
auth_window_seconds = {lim.auth_window_seconds}       # … within this time, then 429 Too Many Requests
trusted_login_days = {lim.trusted_login_days}          # addresses an account logged in from are not locked out
threads = {lim.threads}                     # requests served at the same time
connections_per_address = {lim.connections_per_address}     # open connections per client address …
max_connections = {lim.max_connections}           # … and in all; more are closed at once
handshake_seconds = {lim.handshake_seconds}        # a client must finish the TLS handshake within this …
header_seconds = {lim.header_seconds}           # … and send each request head within this
log_max_bytes = {lim.log_max_bytes}          # logs/access.log is rotated at this size …
log_backups = {lim.log_backups}                  # … keeping this many old files
"""


def normalize_url_path(value: str) -> str:
    segments = [s for s in value.split("/") if s]
    if any(s in (".", "..") for s in segments) or "\\" in value:
        raise ConfigError(_("[server] path {value!r} is not a plain URL path.").format(value=value),
                          _('Use "/" or a path such as "/congregation".'))
    return "/" + "/".join(segments)


def load_settings(path: Path) -> ServerSettings:
    """Read ``server.toml``; a missing file gives the defaults."""
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return ServerSettings()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(_("Cannot read {path}: {error}").format(path=path, error=exc),
                          _("Fix the file, or delete it to use the defaults.")) from exc

    def table(name: str) -> dict[str, Any]:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(_("{path}: [{name}] must be a table.").format(path=path, name=name))
        return value

    def typed(tab: str, key: str, value: Any, kind: type) -> Any:
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok or (kind in (int, float) and value <= 0 and key != "port"):
            raise ConfigError(_("{path}: [{tab}] {key} has a bad value: {value!r}.").format(
                path=path, tab=tab, key=key, value=value))
        return value

    base = ServerSettings()
    server, tls, limits = table("server"), table("tls"), table("limits")
    s = replace(
        base,
        host=typed("server", "host", server.get("host", base.host), str),
        port=typed("server", "port", server.get("port", base.port), int),
        path=normalize_url_path(typed("server", "path", server.get("path", base.path), str)),
        cert=typed("tls", "cert", tls.get("cert", base.cert), str),
        key=typed("tls", "key", tls.get("key", base.key), str),
    )
    if not 0 <= s.port <= 65535:
        raise ConfigError(_("{path}: [server] port must be between 1 and 65535.").format(path=path))
    lim_values: dict[str, Any] = {}
    for f in fields(Limits):
        if f.name in limits:
            kind = float if f.type in ("float", float) else int
            lim_values[f.name] = typed("limits", f.name, limits[f.name], kind)
    return replace(s, limits=replace(base.limits, **lim_values))
