"""The server folder (``DIR``) and ``server init``.

::

    DIR/
      server.toml        settings: address, port, URL path, TLS files, limits (see settings.py)
      ca.pem             the CA certificate that members pin (public; its fingerprint is printed)
      users.json         accounts: name, role, scrypt hash (0600)
      data/              the congregation folder, served at the URL path "/" by default
        Media/
          Recurring/
        Hidden/
      tls/               (0700)
        ca-key.pem       the CA's private key (0600): only needed to re-issue the server certificate
        server-cert.pem  the server certificate, then the CA (the chain the server presents)
        server-key.pem   the server's private key (0600)
      logs/              access.log, rotated (0700)
      README.txt         this map, for whoever finds the folder

Folders we create are 0700 and secret files 0600 (``paths.write_private_file``: atomic).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from m3daemon.errors import ConfigError
from m3daemon.i18n import _
from m3daemon.local import paths
from m3daemon.server import tls
from m3daemon.server.settings import ServerSettings, load_settings, settings_text

__all__ = ["InitResult", "ServerLayout", "init_server", "open_layout", "reissue_server_cert", "renew_if_needed"]

CONGREGATION_FOLDERS = ("Media", "Media/Recurring", "Hidden")


@dataclass(frozen=True)
class ServerLayout:
    root: Path

    @property
    def settings_file(self) -> Path:
        return self.root / "server.toml"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def users_file(self) -> Path:
        return self.root / "users.json"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def ca_key(self) -> Path:
        return self.tls_dir / "ca-key.pem"

    @property
    def default_cert(self) -> Path:
        return self.tls_dir / "server-cert.pem"

    @property
    def default_key(self) -> Path:
        return self.tls_dir / "server-key.pem"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def access_log(self) -> Path:
        return self.logs_dir / "access.log"

    def settings(self) -> ServerSettings:
        return load_settings(self.settings_file)

    def ca_fingerprint(self) -> str | None:
        """SHA-256 of ``ca.pem`` (what members compare), or None when there is none."""
        try:
            certs = tls.load_pem_certs(self.ca_file.read_bytes())
        except OSError:
            return None
        return tls.fingerprint(certs[0]) if certs else None


def open_layout(root: Path | str) -> ServerLayout:
    """The server folder ``root``, which ``server init`` must have made."""
    layout = ServerLayout(Path(root).expanduser().absolute())
    if not layout.settings_file.is_file() or not layout.data_dir.is_dir():
        raise ConfigError(
            _("{path} is not an m3daemon server folder.").format(path=layout.root),
            _("Create it with `m3daemon server init {path}`.").format(path=layout.root),
        )
    return layout


@dataclass
class InitResult:
    layout: ServerLayout
    fingerprint: str | None  # of ca.pem
    names: list[str] = field(default_factory=list)  # in the server certificate we made
    created: list[str] = field(default_factory=list)  # what this run created, for the report
    own_cert: bool = False  # --cert/--key were given


_README = """\
This folder belongs to `m3daemon server`, the congregation's own WebDAV server.

  data/         the congregation folder (Media/, Media/Recurring/, Hidden/), served over HTTPS
  ca.pem        give this file to the members' computers (or let `m3daemon setup` fetch it and
                compare the fingerprint that `m3daemon server info` prints)
  server.toml   address, port and limits
  users.json    the accounts (only password hashes; manage them with `m3daemon server user`)
  tls/          private keys: never copy them anywhere
  logs/         access.log

Back up this whole folder. Run it with: m3daemon server run <this folder>
"""


def _write_public(path: Path, data: bytes) -> None:
    paths.write_private_file(path, data)
    if os.name == "posix":
        os.chmod(path, 0o644)


def _check_empty_or_ours(root: Path) -> None:
    if not root.exists():
        return
    if not root.is_dir():
        raise ConfigError(_("{path} is a file, not a folder.").format(path=root))
    layout = ServerLayout(root)
    if layout.settings_file.exists():
        return
    if any(root.iterdir()):
        raise ConfigError(
            _("{path} is not empty and is not an m3daemon server folder.").format(path=root),
            _("Give a new or empty folder; the server keeps its data, keys and accounts there."),
        )


def _check_own_cert(cert: Path, key: Path) -> None:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(_("Cannot use {cert} with {key}: {error}").format(cert=cert, key=key, error=exc),
                          _("Give the PEM certificate (chain) and the matching private key.")) from exc


def init_server(
    root: Path | str,
    host_names: list[str] | tuple[str, ...] = (),
    *,
    cert: Path | None = None,
    key: Path | None = None,
    ca: Path | None = None,
    settings: ServerSettings | None = None,
) -> InitResult:
    """Create (or complete) the server folder. Never replaces what exists: the CA, the accounts and
    the settings of an earlier ``init`` are kept (``settings``, when given, are written); new
    ``host_names`` re-issue the server certificate from the existing CA (members need not pin
    anything again)."""
    layout = ServerLayout(Path(root).expanduser().absolute())
    _check_empty_or_ours(layout.root)
    result = InitResult(layout, None)
    if not layout.root.exists():
        result.created.append(str(layout.root))
    paths.ensure_private_dir(layout.root)
    for rel in CONGREGATION_FOLDERS:
        folder = layout.data_dir / rel
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            result.created.append(str(folder))
    paths.ensure_private_dir(layout.logs_dir)
    paths.ensure_private_dir(layout.tls_dir)
    base = settings or (layout.settings() if layout.settings_file.exists() else ServerSettings())

    if (cert is None) != (key is None):
        raise ConfigError(_("--cert and --key go together."), _("Give both, or neither to make a CA."))
    if cert is not None and key is not None:
        cert, key = cert.expanduser().absolute(), key.expanduser().absolute()
        _check_own_cert(cert, key)
        base = replace(base, cert=str(cert), key=str(key))
        result.own_cert = True
        if ca is not None:
            certs = tls.load_pem_certs(ca.expanduser().read_bytes())
            if len(certs) != 1:
                raise ConfigError(_("{path} is not one PEM certificate.").format(path=ca))
            _write_public(layout.ca_file, ca.expanduser().read_bytes())
            result.created.append(str(layout.ca_file))
    elif not layout.ca_key.exists():
        hostname = socket.gethostname() or "server"
        made = tls.make_ca(f"m3daemon congregation CA ({hostname})")
        paths.write_private_file(layout.ca_key, made.key_pem)
        _write_public(layout.ca_file, made.cert_pem)
        result.created += [str(layout.ca_file), str(layout.ca_key)]
        result.names = reissue_server_cert(layout, host_names, keep_existing=False)
        result.created.append(str(layout.default_cert))
    elif host_names or not layout.default_cert.exists():
        result.names = reissue_server_cert(layout, host_names, keep_existing=True)
    else:
        result.names = tls.cert_names(layout.default_cert.read_bytes())

    if not layout.settings_file.exists() or result.own_cert or settings is not None:
        layout.settings_file.write_text(settings_text(base), "utf-8")
        result.created.append(str(layout.settings_file))
    if not layout.users_file.exists():
        paths.write_private_file(layout.users_file, b'{\n  "version": 1,\n  "users": {}\n}\n')
        result.created.append(str(layout.users_file))
    readme = layout.root / "README.txt"
    if not readme.exists():
        readme.write_text(_README, "utf-8")
    result.fingerprint = layout.ca_fingerprint()
    return result


def reissue_server_cert(layout: ServerLayout, host_names: list[str] | tuple[str, ...] = (),
                        *, keep_existing: bool = True) -> list[str]:
    """A new server certificate from the folder's own CA, for ``host_names`` plus the defaults
    (and the names of the current certificate when ``keep_existing``). Returns the names."""
    try:
        ca = tls.IssuedCert(layout.ca_file.read_bytes(), layout.ca_key.read_bytes())
    except OSError as exc:
        raise ConfigError(
            _("This server folder has no CA key of its own ({path}).").format(path=layout.ca_key),
            _("It uses a certificate you gave (--cert); renew that certificate where you got it."),
        ) from exc
    previous: list[str] = []
    if keep_existing and layout.default_cert.exists():
        previous = tls.cert_names(layout.default_cert.read_bytes())
    names = tls.default_host_names([*host_names, *previous])
    issued = tls.issue_server_cert(ca, names)
    paths.write_private_file(layout.default_key, issued.key_pem)
    paths.write_private_file(layout.default_cert, issued.cert_pem)
    return names


def renew_if_needed(layout: ServerLayout, settings: ServerSettings) -> bool:
    """Re-issue our own server certificate when it expires within ``RENEW_BEFORE_DAYS``."""
    cert = settings.cert_path(layout.root)
    if cert != layout.default_cert or not layout.ca_key.exists() or not cert.exists():
        return False
    if tls.days_left(cert.read_bytes()) > tls.RENEW_BEFORE_DAYS:
        return False
    reissue_server_cert(layout, keep_existing=True)
    return True
