"""Build the WsgiDAV application and run it on cheroot behind the TLS front (:mod:`m3daemon.web.front`): :class:`ServerHandle`.

``ServerHandle(DIR).start()`` serves the server folder in a background thread (``port=0`` picks a
free port; ``.url``, ``.folder``, ``.ca_file``); ``.stop()`` ends it. ``m3daemon server run`` uses
the same handle and waits; the demo and the tests use it in-process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from m3daemon.errors import M3Error, ServerStartError
from m3daemon.i18n import _
from m3daemon.server.layout import ServerLayout, open_layout, renew_if_needed
from m3daemon.server.settings import ServerSettings, is_loopback_host
from m3daemon.server.users import Role

__all__ = ["ServerHandle", "ServerStartError", "build_app", "exposure_warning", "local_server", "server_running",
           "server_spec"]

log = logging.getLogger("m3daemon.server")


def exposure_warning(host: str) -> str | None:
    """The warning to show when ``host`` is not loopback-only (None when it is)."""
    if is_loopback_host(host):
        return None
    where = _("every network interface of this computer") if host in ("0.0.0.0", "::", "") else host
    return _("WARNING: the server accepts connections from other computers ({where}). Anyone who can reach "
             "this computer can try to log in: give every account a strong password, keep the coordinator "
             "accounts few, and do not forward this port from the internet unless you mean to."
             ).format(where=where)


def build_app(layout: ServerLayout, settings: ServerSettings, *, access_log: bool = True,
              peer_secret: str | None = None) -> Any:
    """The WSGI application: :class:`~m3daemon.server.guard.Guard` around WsgiDAV."""
    from wsgidav.error_printer import ErrorPrinter
    from wsgidav.http_authenticator import HTTPAuthenticator
    from wsgidav.request_resolver import RequestResolver
    from wsgidav.wsgidav_app import WsgiDAVApp

    from m3daemon.server.guard import (
        CONTEXT_KEY,
        AccessLog,
        AccountsDomainController,
        Guard,
        GuardContext,
        RoleGuard,
    )
    from m3daemon.server.users import Authenticator, UserStore

    limits = settings.limits
    alog = AccessLog(layout.access_log, limits.log_max_bytes, limits.log_backups) if access_log else None
    context = GuardContext.create(Authenticator(UserStore(layout.users_file)), limits, alog,
                                  data_dir=layout.data_dir, url_path=settings.path, peer_secret=peer_secret)
    config: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "provider_mapping": {settings.path: {"root": str(layout.data_dir), "readonly": False}},
        "fs_dav_provider": {"follow_symlinks": False},
        "http_authenticator": {
            "domain_controller": AccountsDomainController,
            "accept_basic": True, "accept_digest": False, "default_to_digest": False,
            "trusted_auth_header": None,
        },
        "middleware_stack": [ErrorPrinter, HTTPAuthenticator, RoleGuard, RequestResolver],
        CONTEXT_KEY: context,
        "verbose": 0,
        "logging": {"enable": False},
        "lock_storage": True,
        "property_manager": True,
        "dir_browser": {"enable": False},
        "suppress_version_info": True,
        "add_header_MS_Author_Via": True,
        "block_size": 1 << 20,
    }
    return Guard(WsgiDAVApp(config), context)


def _cheroot_error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    # TLS handshakes of clients that do not trust us, port scanners …: not worth a warning
    log.log(logging.WARNING if level >= logging.ERROR else logging.DEBUG, "cheroot: %s", msg,
            exc_info=traceback)


def _url_host(host: str) -> str:
    """The host part of a URL that reaches a server bound to ``host`` from this computer."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def _raise_open_file_limit(wanted: int) -> None:
    """Each open connection is a file descriptor (two while a request runs); Linux allows 1024 by
    default. Raise the soft limit towards ``wanted`` where the hard limit allows it."""
    if sys.platform == "win32":  # no resource module; mypy --platform win32 skips the rest
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class ServerHandle:
    """The congregation's server, in this process.

    ``root``: a folder made by ``server init``. ``host``/``port`` override ``server.toml`` (port 0:
    any free port). Use as a context manager, or ``start()`` / ``stop()``.
    """

    def __init__(self, root: Path | str, *, host: str | None = None, port: int | None = None,
                 settings: ServerSettings | None = None, access_log: bool = True) -> None:
        from dataclasses import replace

        self.layout = open_layout(root)
        base = settings or self.layout.settings()
        self.settings = replace(base, host=host if host is not None else base.host,
                                port=port if port is not None else base.port)
        self._access_log = access_log
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._app: Any = None
        self._address: tuple[str, int] | None = None
        self._front: Any = None
        self._socket_dir: Path | None = None

    # -- addresses --------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The address the listening socket is bound to (host, port)."""
        if self._address is None:
            raise RuntimeError("the server is not running")
        return self._address

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        """``https://host:port`` (the origin; the congregation folder is :attr:`folder`)."""
        return f"https://{_url_host(self.settings.host)}:{self.port}"

    @property
    def folder(self) -> str:
        """The congregation sync folder members configure ("/" by default)."""
        return self.settings.path

    @property
    def folder_url(self) -> str:
        return self.url + (self.folder.rstrip("/") + "/")

    @property
    def ca_file(self) -> Path:
        return self.layout.ca_file

    @property
    def data_dir(self) -> Path:
        return self.layout.data_dir

    @property
    def running(self) -> bool:
        return (self._thread is not None and self._thread.is_alive() and self._front is not None
                and self._front.running)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        from cheroot import wsgi

        from m3daemon.web.front import Backend, Front, FrontLimits, listen

        layout, s = self.layout, self.settings
        if renew_if_needed(layout, s):
            log.warning("the server certificate was about to expire and has been re-issued")
        cert, key = s.cert_path(layout.root), s.key_path(layout.root)
        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise ServerStartError(
                _("Cannot load the server certificate {cert} and key {key}: {error}").format(
                    cert=cert, key=key, error=exc),
                _("Check [tls] in {path}, or run `m3daemon server cert` to make a new one.").format(
                    path=layout.settings_file),
            ) from exc
        try:
            listener = listen(s.host, s.port)
        except OSError as exc:
            raise ServerStartError(
                _("Cannot listen on {host} port {port}: {error}").format(host=s.host, port=s.port, error=exc),
                _("Another program (or another m3daemon server) may use this port; choose another with "
                  "--port, or stop the other one."),
            ) from exc
        secret = secrets.token_urlsafe(32)
        self._app = build_app(layout, s, access_log=self._access_log, peer_secret=secret)
        # cheroot behind the front, on a socket only this user can reach (a 0700 folder)
        if hasattr(socket, "AF_UNIX") and os.name == "posix":
            self._socket_dir = Path(tempfile.mkdtemp(prefix="m3daemon-server-"))
            bind: Any = str(self._socket_dir / "backend.sock")
        else:
            bind = ("127.0.0.1", 0)
        server = wsgi.Server(bind, self._app, numthreads=s.limits.threads, server_name="m3daemon", request_queue_size=1024,
                             timeout=300)  # only the front talks to it, and the front has the deadlines
        server.max_request_header_size = 64 * 1024
        server.max_request_body_size = max(s.limits.max_upload_bytes, s.limits.max_body_bytes)
        server.expiration_interval = 0.1  # stop() waits for the selector loop's next wake-up
        server.error_log = _cheroot_error_log  # type: ignore[method-assign]
        server.prepare()
        backend = Backend(path=bind) if isinstance(bind, str) else Backend(port=int(server.bind_addr[1]))
        lim = s.limits
        _raise_open_file_limit(lim.max_connections * 2 + 64)
        self._front = Front(listener, context, backend, secret, FrontLimits(
            connections_per_address=lim.connections_per_address, max_connections=lim.max_connections,
            handshake_seconds=lim.handshake_seconds, header_seconds=lim.header_seconds))
        bound = listener.getsockname()
        self._address = (str(bound[0]), int(bound[1]))
        warning = exposure_warning(s.host)
        if warning:
            log.info("%s", warning)
        self._server = server
        self._thread = threading.Thread(target=server.serve, name=f"m3daemon-server-{self.port}", daemon=True)
        self._thread.start()
        self._front.start()
        log.info("serving %s at %s", layout.data_dir, self.folder_url)
        return self

    def stop(self) -> None:
        front, server, thread = self._front, self._server, self._thread
        self._front = self._server = self._thread = None
        if front is not None:
            front.stop()
            front.socket.close()
        if server is not None:
            server.stop()
        if thread is not None:
            thread.join(10)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        ctx = getattr(self._app, "context", None)
        if ctx is not None and ctx.access_log is not None:
            ctx.access_log.close()
        self._app = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the serving thread ends (or ``timeout``); True when it ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def local_server(root: Path | str, accounts: Mapping[str, tuple[str, Role]], *, port: int = 0,
                 access_log: bool = True) -> ServerHandle:
    """A loopback server in ``root`` with ``accounts`` (name -> (password, role)), for the demo:
    ``root`` is initialised if needed and the accounts are added (or their password and role set).
    Returns the handle unstarted: ``with local_server(...) as srv:``."""
    from m3daemon.server.layout import init_server
    from m3daemon.server.users import UserStore

    layout = init_server(root).layout
    store = UserStore(layout.users_file)
    existing = store.accounts()
    for name, (password, role) in accounts.items():
        if name in existing:
            store.set_password(name, password)
            store.set_role(name, role)
        else:
            store.add(name, role, password)
    return ServerHandle(layout.root, host="127.0.0.1", port=port, access_log=access_log)


# --- start at boot ----------------------------------------------------------------------------------


def server_spec(root: Path | str) -> Any:
    """The :class:`~m3daemon.service.ServiceSpec` that runs ``m3daemon server run DIR`` at login
    (``m3daemon-server.service`` / ``org.m3daemon.m3daemon-server`` / Run value ``m3daemon-server``).
    The server speaks the systemd notification protocol (READY, WATCHDOG)."""
    from m3daemon.service import ServiceSpec

    folder = Path(root).expanduser().absolute()
    return ServiceSpec("m3daemon-server", _("M³ congregation WebDAV server"), ("server", "run", str(folder)),
                       notify=True)


def server_running(root: Path | str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on the address and port of ``root``'s settings
    (the service's "is it running?" probe where no service manager can tell)."""
    try:
        s = open_layout(root).settings()
    except M3Error:
        return False
    host = _url_host(s.host).strip("[]")
    try:
        with socket.create_connection((host, s.port), timeout=timeout):
            return True
    except OSError:
        return False
