"""A real WebDAV server in-process (WsgiDAV on cheroot, HTTPS) for the demo and the tests.

It binds to loopback only and makes its own certificate authority for the run, so the client
verifies TLS exactly as it does against a real server.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class RequestLog:
    entries: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.entries.append((method, path, status))

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def _recording(app: Callable[..., Any], log_: RequestLog) -> Callable[..., Any]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def recorder(status: str, headers: Any, exc_info: Any = None) -> Any:
            log_.add(environ.get("REQUEST_METHOD", "?"), environ.get("PATH_INFO", "?"), int(status.split()[0]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return app(environ, recorder)

    return wrapped


class LocalDavServer:
    """``with LocalDavServer(root, users) as srv:`` serves ``root`` at ``srv.url + prefix``.

    ``users`` maps user name to password; all users may read and write.
    """

    def __init__(
        self,
        root: Path,
        users: dict[str, str],
        *,
        prefix: str = "/dav",
        host: str = "127.0.0.1",
        port: int = 0,
        workdir: Path | None = None,
    ) -> None:
        self.root = root
        self.users = users
        self.prefix = prefix.rstrip("/")
        self.host = host
        self.port = port
        self._tmp = tempfile.TemporaryDirectory(prefix="m3daemon-dav-") if workdir is None else None
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.ca_file = self.workdir / "ca.pem"
        self.requests = RequestLog()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> LocalDavServer:
        import trustme
        from cheroot import wsgi
        from cheroot.ssl.builtin import BuiltinSSLAdapter
        from wsgidav.wsgidav_app import WsgiDAVApp

        if not self.ca_file.exists():
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
            ca.cert_pem.write_to_path(str(self.ca_file))
            cert.private_key_and_cert_chain_pem.write_to_path(str(self.workdir / "server.pem"))
        app = WsgiDAVApp({
            "host": self.host, "port": self.port,
            "provider_mapping": {self.prefix or "/": str(self.root)},
            "simple_dc": {"user_mapping": {"*": {u: {"password": p} for u, p in self.users.items()}}},
            "http_authenticator": {"domain_controller": None, "accept_basic": True,
                                   "accept_digest": False, "default_to_digest": False},
            "verbose": 0, "logging": {"enable": False},
            "lock_storage": True, "property_manager": True, "dir_browser": {"enable": False},
            "block_size": 1 << 20,
        })
        server = wsgi.Server((self.host, self.port), _recording(app, self.requests), numthreads=8)
        pem = str(self.workdir / "server.pem")
        server.ssl_adapter = BuiltinSSLAdapter(certificate=pem, private_key=pem)
        server.prepare()
        self.port = server.bind_addr[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="webdav-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalDavServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
