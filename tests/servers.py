"""Real WebDAV servers for the test suite.

Four server kinds share one interface (:class:`DavServer`):

==========  ==========================================  ===============  =======================
kind        what                                        Depth: infinity  ETag in PROPFIND
==========  ==========================================  ===============  =======================
wsgidav     WsgiDAV 4.4 in-process (cheroot thread)     207 (allowed)    files yes, dirs no
apache      private apache2 + mod_dav_fs subprocess     403              files and dirs
nginx       private nginx + dav-ext module subprocess   403              **no** (GET/HEAD do)
rclone      ``rclone serve webdav`` subprocess          207 (allowed)    files yes, dirs no
==========  ==========================================  ===============  =======================

Every server serves ``root`` (a directory on disk) under the URL prefix ``/dav/`` over HTTPS
with a trustme CA (cert for 127.0.0.1 and localhost) and HTTP Basic auth for the read-write
user alice / s3cret. Except rclone, they also have a read-only user bob / r3ad.

Tests write fixture files straight into ``root`` on disk (see :func:`make_tree`); the
servers read them from there.

Dialect notes, measured on Debian 12 (apache2 2.4, nginx 1.22.1 + dav-ext 3.0, rclone 1.60.1):

* PROPFIND without a Depth header: WsgiDAV, Apache and rclone treat it as infinity (RFC 4918);
  Apache then answers 403. **nginx dav-ext treats it as Depth 0.**
* PROPFIND on ``/dav`` (no trailing slash): nginx answers **405** (the ``location /dav/``
  does not match), rclone answers 308 to ``/dav/``. Always use ``/dav/`` for the collection.
* nginx dav-ext never reports ``getetag`` (not even when asked for it by name: it is silently
  left out, without a 404 propstat) and no ``getcontenttype``; its GET/HEAD responses carry an
  ``ETag`` header (``"<mtime hex>-<size hex>"``).
* rclone needs ``--dir-cache-time 0s``. With the default (5 min), files written to disk behind
  its back stay invisible in listings, and a GET of a file that grew is cut to the cached size.
* Apache's ETag is weak (``W/"size-mtime"``) while the file's mtime is less than a second old;
  ``If-Match`` with that weak ETag gives 412 (strong comparison). After a second it is strong.
* A PUT with an ``If-Match`` that no longer matches: 412 on WsgiDAV and Apache; **nginx and rclone
  ignore If-Match and write** (``honours_if_match``; the coordinator's forcedPrefs.json write warns).
* Creating a file under a missing parent with PUT: 409 on WsgiDAV and Apache, 404 on rclone,
  201 on nginx (``create_full_put_path on``). MKCOL on an existing collection: 405, except
  rclone: 201. nginx wants a trailing slash for MKCOL and for DELETE of a directory (else 409).
* A read-only user's write is refused with **401** by Apache and nginx (authorization failure
  on a Basic-auth realm) and with **403** by WsgiDAV.
* Apache may not run as root (compiled-in check). When the tests run as root, Apache is started
  as ``www-data`` through ``setpriv`` with the ambient capability ``CAP_DAC_OVERRIDE``, so it
  can read and write the root-owned files and directories that the tests create on disk
  (files it creates via PUT belong to www-data; root can still delete them). Run as a normal
  user, every server simply runs as that user. nginx runs its workers as root (``user root``)
  when started as root.
"""

from __future__ import annotations

import abc
import atexit
import base64
import contextlib
import hashlib
import http.client
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

KINDS: tuple[str, ...] = ("wsgidav", "apache", "nginx", "rclone", "lighttpd")

USERNAME = "alice"
PASSWORD = "s3cret"
READONLY_USERNAME = "bob"
READONLY_PASSWORD = "r3ad"

#: Methods the read-only user may use.
READ_METHODS = ("GET", "HEAD", "OPTIONS", "PROPFIND")

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

RequestLogEntry = tuple[str, str, int]


# --------------------------------------------------------------------------------------------
# Skipping / failing on missing system packages
# --------------------------------------------------------------------------------------------


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(message: str) -> None:
    """Skip the current test, or fail it when the environment variable CI is "true"."""
    import pytest

    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _which(name: str) -> str | None:
    """shutil.which, also looking in the sbin dirs that a normal user's PATH may lack."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        cand = Path(d, name)
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


# --------------------------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    ca_file: Path  # PEM of the CA
    cert_file: Path  # server certificate chain (PEM)
    key_file: Path  # server private key (PEM)
    combined_file: Path  # key + chain in one PEM


def make_tls_files(directory: Path) -> TLSFiles:
    """Create a trustme CA and a server cert for 127.0.0.1 and localhost."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server-cert.pem",
        key_file=directory / "server-key.pem",
        combined_file=directory / "server.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    cert.private_key_pem.write_to_path(str(files.key_file))
    files.cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_and_cert_chain_pem.write_to_path(str(files.combined_file))
    for p in (files.ca_file, files.cert_file, files.key_file, files.combined_file):
        p.chmod(0o644)  # the servers may run as another user (see module doc)
    return files


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def make_tree(root: Path, files: Mapping[str, bytes | str], *, mtime: float | None = None) -> Path:
    """Lay out files under ``root``: ``{"a/b.mp4": b"...", "empty-dir/": b""}``.

    Parent directories are created. A key ending in "/" creates an (empty) directory.
    ``str`` values are written as UTF-8. ``mtime`` (epoch seconds), if given, is set on the
    files written. Note that Apache hands out a *weak* ETag (``W/"..."``) for a file modified
    less than a second ago, and ``If-Match`` with a weak ETag always gives 412; pass e.g.
    ``mtime=time.time() - 60`` when a test needs strong ETags right away. Returns ``root``.
    """
    for rel, data in files.items():
        rel_path = rel.lstrip("/")
        target = root / rel_path
        if rel_path.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        if mtime is not None:
            os.utime(target, (mtime, mtime))
    return root


def clear_dir(root: Path) -> None:
    """Remove everything inside ``root`` (not ``root`` itself)."""
    root.mkdir(parents=True, exist_ok=True)
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _ephemeral_low() -> int:
    """The lowest port the system hands out to outgoing connections (Linux: 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152  # IANA's dynamic range, which macOS and Windows use


def free_port() -> int:
    """A free loopback port below the range of outgoing connections' source ports.

    Why: a server restarted "on the same port" (a test that stopped it, or the next test) must
    get that port back. A port in the ephemeral range can meanwhile be the source port of any
    outgoing connection on the machine, a browser's or a build's, and bind then fails for as long
    as that connection lives (seen once in CI: WsgiDAV's restart, 10 s of EADDRINUSE)."""
    high = _ephemeral_low() - 1
    low = max(1024, high - 12000)
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _path_from_target(target: str) -> str:
    """Request target (raw, percent-encoded) -> decoded path without query."""
    if "://" in target:  # absolute-form
        target = urllib.parse.urlsplit(target).path
    path = target.split("?", 1)[0]
    return urllib.parse.unquote(path, errors="surrogateescape")


def _htpasswd_sha(user: str, password: str) -> str:
    """An htpasswd line in the {SHA} scheme; Apache, nginx and lighttpd accept it."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


def _htpasswd_all() -> str:
    """The htpasswd lines of both test users."""
    return _htpasswd_sha(USERNAME, PASSWORD) + _htpasswd_sha(READONLY_USERNAME, READONLY_PASSWORD)


def _request_line_target(field: str) -> str:
    """The target of a logged request line ``PROPFIND /dav/a%20b.txt HTTP/1.1`` (raw, encoded)."""
    parts = field.split(" ")
    return parts[1] if len(parts) >= 2 else field


def _pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig TERM --``: the kernel SIGTERMs the server if the test process is
    killed (kill -9, CI timeout), so no server outlives it. Empty when setpriv is missing.

    Caveat: the signal follows the *thread* that started the process; start and restart the
    servers from the main thread (pytest fixtures and test bodies do).
    """
    setpriv = _which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv and sys.platform == "linux" else []


_LIVE: weakref.WeakSet[DavServer] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for srv in list(_LIVE):
        with contextlib.suppress(Exception):
            srv.stop()


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------


class DavServer(abc.ABC):
    """Common interface of the test WebDAV servers.

    ``url`` is ``https://127.0.0.1:PORT`` (no trailing slash); the DAV collection is
    ``url + prefix + "/"`` (:attr:`base_url`) and maps to :attr:`root` on disk.
    """

    kind: ClassVar[str]
    supports_depth_infinity: ClassVar[bool]
    etags: ClassVar[bool]  # getetag in PROPFIND responses for files
    honours_if_match: ClassVar[bool]  # a PUT with a stale If-Match gets 412 (nginx, rclone: written anyway)
    get_etags: ClassVar[bool] = True  # an ETag header on GET/HEAD (lighttpd's mod_webdav sends none)
    has_request_log: ClassVar[bool] = True
    supports_readonly_user: ClassVar[bool] = True

    prefix = "/dav"
    username = USERNAME
    password = PASSWORD

    def __init__(self, workdir: Path, tls: TLSFiles, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root: Path = self.workdir / "root"
        self.root.mkdir(exist_ok=True)
        self.tls = tls
        self.ca_file: Path = tls.ca_file
        self._port: int | None = port
        self.readonly_username: str | None = READONLY_USERNAME if self.supports_readonly_user else None
        self.readonly_password: str | None = READONLY_PASSWORD if self.supports_readonly_user else None

    # -- availability -----------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def missing_requirement(cls) -> str | None:
        """``None`` if this server can run here, else e.g. "needs Debian package apache2"."""

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.kind} server has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """URL of the served collection, with a trailing slash."""
        return f"{self.url}{self.prefix}/"

    def url_for(self, rel: str) -> str:
        """URL of ``rel`` (a path relative to ``root``), percent-encoded."""
        return self.base_url + urllib.parse.quote(rel.lstrip("/"))

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.is_running():
            return
        if self._port is None:
            self._port = self._initial_port()
        self._start()
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.clear_log()  # drop the readiness probes

    def stop(self) -> None:
        self._stop()
        _LIVE.discard(self)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port."""
        self.stop()
        self.start()

    @abc.abstractmethod
    def is_running(self) -> bool: ...

    @abc.abstractmethod
    def _start(self) -> None: ...

    @abc.abstractmethod
    def _stop(self) -> None: ...

    def _initial_port(self) -> int:
        return free_port()

    def _died(self) -> str | None:
        """A message if the server died while starting."""
        return None

    def _wait_ready(self) -> None:
        """Poll with a real HTTPS request until the server answers (any status)."""
        ctx = self.ssl_context()
        deadline = time.monotonic() + READY_TIMEOUT
        last: BaseException | None = None
        while time.monotonic() < deadline:
            died = self._died()
            if died:
                raise RuntimeError(f"{self.kind} server exited during start-up:\n{died}")
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=2)
            try:
                conn.request("OPTIONS", self.prefix + "/")
                conn.getresponse().read()
                return
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise
                last = exc
            finally:
                conn.close()
            time.sleep(0.01)
        raise RuntimeError(
            f"{self.kind} server not ready on port {self.port} after {READY_TIMEOUT}s: {last!r}\n"
            f"{self._diagnostics()}"
        )

    def _diagnostics(self) -> str:
        return ""

    # -- request log ------------------------------------------------------------------------

    @abc.abstractmethod
    def request_log(self) -> list[RequestLogEntry]:
        """(method, path, status) of the requests handled since the last :meth:`clear_log`.

        ``path`` is the percent-decoded request path without query, including the prefix,
        e.g. ``("PROPFIND", "/dav/", 207)``.
        """

    @abc.abstractmethod
    def clear_log(self) -> None: ...

    # -- test helpers -----------------------------------------------------------------------

    def clear_root(self) -> None:
        clear_dir(self.root)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "-"
        return f"<{type(self).__name__} {self.kind} port={port} root={self.root}>"


# --------------------------------------------------------------------------------------------
# WsgiDAV (in-process)
# --------------------------------------------------------------------------------------------


class _RequestRecorder:
    """Outermost WSGI middleware recording (method, path, status)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.entries: list[RequestLogEntry] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = str(environ.get("REQUEST_METHOD", ""))
        raw = environ.get("REQUEST_URI")
        if raw:
            # WSGI strings are latin-1 decoded bytes
            path = _path_from_target(str(raw).encode("latin-1").decode("utf-8", "surrogateescape"))
        else:
            path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        index: list[int] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            code = int(status.split(None, 1)[0])
            with self.lock:
                if index:  # start_response called again (error path): replace
                    self.entries[index[0]] = (method, path, code)
                else:
                    index.append(len(self.entries))
                    self.entries.append((method, path, code))
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, recording_start_response)


def _readonly_guard_class() -> type:
    from wsgidav.mw.base_mw import BaseMiddleware

    class ReadOnlyGuard(BaseMiddleware):  # type: ignore[misc]
        """Refuses write methods (403) for users with the role "reader".

        simple_dc sets environ["wsgidav.auth.roles"] from the user mapping, but WsgiDAV 4.4
        itself does not enforce roles, so this sits right after HTTPAuthenticator.
        """

        def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            roles = environ.get("wsgidav.auth.roles") or ()
            if "reader" in roles and environ.get("REQUEST_METHOD") not in READ_METHODS:
                body = b"Forbidden: read-only user\n"
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                )
                return [body]
            return self.next_app(environ, start_response)

    return ReadOnlyGuard


class WsgiDavServer(DavServer):
    """WsgiDAV 4.4 + cheroot (BuiltinSSLAdapter) in a thread of the test process.

    Depth infinity is allowed (hard-coded in WsgiDAV 4.4). ETag on files, none on dirs.
    Read-only user: simple_dc role "reader" plus :func:`_readonly_guard_class` (403 on writes).
    """

    kind = "wsgidav"
    supports_depth_infinity = True
    etags = True
    honours_if_match = True

    def __init__(self, workdir: Path, tls: TLSFiles, port: int | None = None) -> None:
        super().__init__(workdir, tls, port)
        self._app: _RequestRecorder | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @classmethod
    def missing_requirement(cls) -> str | None:
        try:
            import cheroot  # noqa: F401
            import wsgidav  # noqa: F401
        except ImportError:
            return "needs Python packages WsgiDAV and cheroot (pip install -e .)"
        return None

    def _make_app(self) -> _RequestRecorder:
        from wsgidav.error_printer import ErrorPrinter
        from wsgidav.http_authenticator import HTTPAuthenticator
        from wsgidav.request_resolver import RequestResolver
        from wsgidav.wsgidav_app import WsgiDAVApp

        config = {
            "host": "127.0.0.1",
            "port": 0,
            "provider_mapping": {self.prefix: str(self.root)},
            "simple_dc": {
                "user_mapping": {
                    "*": {
                        USERNAME: {"password": PASSWORD, "roles": ["editor"]},
                        READONLY_USERNAME: {"password": READONLY_PASSWORD, "roles": ["reader"]},
                    }
                }
            },
            "http_authenticator": {
                "domain_controller": None,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "middleware_stack": [
                ErrorPrinter,
                HTTPAuthenticator,
                _readonly_guard_class(),
                RequestResolver,
            ],
            "verbose": 0,
            "logging": {"enable": False},
            "lock_storage": True,
            "property_manager": True,
            "dir_browser": {"enable": False},
        }
        return _RequestRecorder(WsgiDAVApp(config))

    def _initial_port(self) -> int:
        return free_port()  # remembered: restarts bind it again

    def _start(self) -> None:
        from cheroot import wsgi
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        if self._app is None:
            self._app = self._make_app()
        server = wsgi.Server(("127.0.0.1", self._port or 0), self._app, numthreads=10)
        # stop() waits for the selector loop, which wakes every expiration_interval (0.5 s)
        server.expiration_interval = 0.05
        server.ssl_adapter = BuiltinSSLAdapter(
            certificate=str(self.tls.combined_file), private_key=str(self.tls.combined_file)
        )
        # After a stop mid-transfer, the old connections may hold the port for a moment.
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                server.prepare()  # binds and listens
                break
            except OSError as exc:
                if "Address already in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._port = int(server.bind_addr[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve, name=f"wsgidav-{self._port}", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.stop()
        if thread is not None:
            thread.join(STOP_TIMEOUT)

    def is_running(self) -> bool:
        return self._server is not None

    def request_log(self) -> list[RequestLogEntry]:
        if self._app is None:
            return []
        with self._app.lock:
            return list(self._app.entries)

    def clear_log(self) -> None:
        if self._app is not None:
            with self._app.lock:
                self._app.entries.clear()


# --------------------------------------------------------------------------------------------
# Subprocess servers
# --------------------------------------------------------------------------------------------


class _SubprocessServer(DavServer):
    """A server run as a child process in its own session (process group)."""

    #: a settle time: Apache/nginx write the access-log line *after* sending the response
    LOG_SETTLE = 0.015

    def __init__(self, workdir: Path, tls: TLSFiles, port: int | None = None) -> None:
        super().__init__(workdir, tls, port)
        self._proc: subprocess.Popen[bytes] | None = None
        self.output_file = self.workdir / "server-output.log"
        self.access_log = self.workdir / "access.log"
        self._log_offset = 0

    @abc.abstractmethod
    def _command(self) -> list[str]: ...

    def _prepare(self) -> None:
        """Write config files before each start."""

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env.update(
            HOME=str(home),
            XDG_CACHE_HOME=str(home / ".cache"),
            XDG_CONFIG_HOME=str(home / ".config"),
            LANG="C.UTF-8",
        )
        return env

    def _start(self) -> None:
        if self._proc is not None:  # died on its own (or was killed): reap it first
            self._stop()
        self._prepare()
        with open(self.output_file, "ab") as out:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self._child_env(),
                start_new_session=True,
            )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # session leader: pgid == pid
        if proc.poll() is None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # leftovers (workers that outlived their master, or a master that ignored SIGTERM)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _died(self) -> str | None:
        if self._proc is not None and self._proc.poll() is not None:
            return f"exit status {self._proc.returncode}\n{self._diagnostics()}"
        return None

    def _diagnostics(self) -> str:
        parts = []
        for f in (self.output_file, self.workdir / "error.log"):
            if f.exists():
                parts.append(f"--- {f.name} ---\n" + f.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    # -- access log ("METHOD<TAB>request-target<TAB>status" lines) ---------------------------

    def _read_log_settled(self) -> bytes:
        """The access log from the current offset, once it stopped growing for LOG_SETTLE s."""
        deadline = time.monotonic() + 2.0
        prev = None
        while True:
            try:
                with open(self.access_log, "rb") as f:
                    f.seek(self._log_offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data == prev or time.monotonic() > deadline:
                return data
            prev = data
            time.sleep(self.LOG_SETTLE)

    def request_log(self) -> list[RequestLogEntry]:
        data = self._read_log_settled()
        end = data.rfind(b"\n")
        entries: list[RequestLogEntry] = []
        for line in data[: end + 1].decode("utf-8", "replace").splitlines():
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            method, target, status = parts
            try:
                entries.append((method, _path_from_target(self._log_target(target)), int(status)))
            except ValueError:
                continue
        return entries

    def _log_target(self, field: str) -> str:
        return field

    def clear_log(self) -> None:
        data = self._read_log_settled()
        self._log_offset += data.rfind(b"\n") + 1

    def _reset_log_offset(self) -> None:
        try:
            self._log_offset = self.access_log.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0


class ApacheServer(_SubprocessServer):
    """A private apache2 (mpm_event, mod_ssl, mod_dav, mod_dav_fs) with its own config.

    ``DavDepthInfinity`` stays at its default Off: PROPFIND Depth infinity (and a PROPFIND
    without Depth) gets 403 "PROPFIND requests with a Depth of "infinity" are not allowed".
    ETags on files and directories (``"<size hex>-<mtime µs hex>"``).
    Read-only user bob: a write gets 401 (authz failure).
    """

    kind = "apache"
    supports_depth_infinity = False
    etags = True
    honours_if_match = True

    BINARY = "apache2"
    MODULES_DIR = Path("/usr/lib/apache2/modules")
    MODULES: ClassVar[dict[str, str]] = {
        "mpm_event_module": "mod_mpm_event.so",
        "authz_core_module": "mod_authz_core.so",
        "authn_core_module": "mod_authn_core.so",
        "authn_file_module": "mod_authn_file.so",
        "authz_user_module": "mod_authz_user.so",
        "auth_basic_module": "mod_auth_basic.so",
        "alias_module": "mod_alias.so",
        "ssl_module": "mod_ssl.so",
        "dav_module": "mod_dav.so",
        "dav_fs_module": "mod_dav_fs.so",
    }
    RUN_AS = "www-data"  # when the tests run as root

    @classmethod
    def missing_requirement(cls) -> str | None:
        if _which(cls.BINARY) is None or any(
            not (cls.MODULES_DIR / so).exists() for so in cls.MODULES.values()
        ):
            return "needs Debian package apache2"
        if os.geteuid() == 0 and _which("setpriv") is None:
            return "needs Debian package util-linux (setpriv, to run apache2 as www-data)"
        return None

    def _log_target(self, field: str) -> str:
        # %r is the raw request line "PROPFIND /dav/a%20b.txt HTTP/1.1" (Apache has no format
        # for the raw target alone; %U is decoded and then \x-escaped)
        return _request_line_target(field)

    def _prepare(self) -> None:
        run = self.workdir / "run"
        run.mkdir(exist_ok=True)
        (run / "apache.pid").unlink(missing_ok=True)
        htpasswd = self.workdir / "htpasswd"
        htpasswd.write_text(_htpasswd_all())
        htpasswd.chmod(0o644)
        self._reset_log_offset()
        mods = "\n".join(f"LoadModule {name} {self.MODULES_DIR / so}" for name, so in self.MODULES.items())
        mime = ""
        if Path("/etc/mime.types").exists() and (self.MODULES_DIR / "mod_mime.so").exists():
            mime = f"LoadModule mime_module {self.MODULES_DIR / 'mod_mime.so'}\nTypesConfig /etc/mime.types"
        read_methods = " ".join(READ_METHODS)
        conf = f"""\
ServerRoot "{self.workdir}"
ServerName localhost
PidFile "{run}/apache.pid"
DefaultRuntimeDir "{run}"
Mutex file:{run} default
ErrorLog "{self.workdir}/error.log"
LogLevel error
{mods}
{mime}
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 4
MaxSpareThreads 32
Listen 127.0.0.1:{self.port}
LogFormat "%m\\t%r\\t%>s" davlog
CustomLog "{self.access_log}" davlog
DavLockDB "{run}/DavLock"
SSLEngine on
SSLCertificateFile "{self.tls.cert_file}"
SSLCertificateKeyFile "{self.tls.key_file}"
SSLSessionCache none
DocumentRoot "{self.workdir}/htdocs"
Alias {self.prefix} "{self.root}"
<Directory "{self.root}">
    Dav On
    # DavDepthInfinity stays Off (the default): Depth infinity -> 403
    AuthType Basic
    AuthName "m3 test dav"
    AuthBasicProvider file
    AuthUserFile "{htpasswd}"
    <RequireAny>
        Require user {USERNAME}
        <Limit {read_methods}>
            Require user {READONLY_USERNAME}
        </Limit>
    </RequireAny>
</Directory>
"""
        (self.workdir / "htdocs").mkdir(exist_ok=True)
        (self.workdir / "apache.conf").write_text(conf)

    def _command(self) -> list[str]:
        apache = _which(self.BINARY)
        assert apache is not None
        cmd = [apache, "-f", str(self.workdir / "apache.conf"), "-DFOREGROUND"]
        if os.geteuid() == 0:
            # Apache refuses "User root". Run it as www-data; CAP_DAC_OVERRIDE lets it read and
            # write the root-owned test files and dirs (and its root-owned temp dirs).
            # setpriv sets the parent-death signal after the uid change (which clears it).
            return [
                _which("setpriv") or "setpriv",
                f"--reuid={self.RUN_AS}",
                f"--regid={self.RUN_AS}",
                "--clear-groups",
                "--inh-caps=+dac_override",
                "--ambient-caps=+dac_override",
                "--pdeathsig=TERM",
                "--",
                *cmd,
            ]
        return [*_pdeathsig_prefix(), *cmd]

    def _child_env(self) -> dict[str, str]:
        env = super()._child_env()
        # Debian's envvars are only read by apache2ctl; set what the binary may consult
        run = str(self.workdir / "run")
        env.update(
            APACHE_RUN_DIR=run,
            APACHE_PID_FILE=f"{run}/apache.pid",
            APACHE_LOCK_DIR=run,
            APACHE_LOG_DIR=str(self.workdir),
        )
        return env


class NginxServer(_SubprocessServer):
    """A private nginx with the dav-ext module (``nginx -c conf -g 'daemon off;'``).

    PROPFIND Depth infinity: 403 (dav-ext supports only 0 and 1; a missing Depth header is
    taken as 0). PROPFIND never returns getetag, although GET/HEAD send an ETag header.
    Read-only user bob via ``limit_except`` with an alice-only htpasswd: a write gets 401.
    """

    kind = "nginx"
    supports_depth_infinity = False
    etags = False
    honours_if_match = False

    BINARY = "nginx"
    DAV_EXT = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")

    @classmethod
    def missing_requirement(cls) -> str | None:
        if _which(cls.BINARY) is None:
            return "needs Debian package nginx"
        if not cls.DAV_EXT.exists():
            return "needs Debian package libnginx-mod-http-dav-ext"
        return None

    def _prepare(self) -> None:
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        all_users = self.workdir / "htpasswd"
        all_users.write_text(_htpasswd_all())
        writers = self.workdir / "htpasswd.rw"
        writers.write_text(_htpasswd_sha(USERNAME, PASSWORD))
        self._reset_log_offset()
        user = "user root root;" if os.geteuid() == 0 else ""
        mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
        read_methods = " ".join(m for m in READ_METHODS if m != "HEAD")  # GET implies HEAD
        conf = f"""\
load_module {self.DAV_EXT};
{user}
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    {mime}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format davlog "$request_method\\t$request_uri\\t$status";
    access_log {self.access_log} davlog;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {self.tls.cert_file};
        ssl_certificate_key {self.tls.key_file};
        location {self.prefix}/ {{
            alias {self.root}/;
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS;
            dav_access user:rw group:r all:r;
            create_full_put_path on;
            client_max_body_size 0;
            auth_basic "m3 test dav";
            auth_basic_user_file {all_users};
            limit_except {read_methods} {{
                auth_basic "m3 test dav";
                auth_basic_user_file {writers};
            }}
        }}
    }}
}}
"""
        (self.workdir / "nginx.conf").write_text(conf)

    def _command(self) -> list[str]:
        nginx = _which(self.BINARY)
        assert nginx is not None
        return [
            *_pdeathsig_prefix(),
            nginx,
            "-p",
            str(self.workdir),
            "-e",
            str(self.workdir / "error.log"),
            "-c",
            str(self.workdir / "nginx.conf"),
            "-g",
            "daemon off;",
        ]


class RcloneServer(_SubprocessServer):
    """``rclone serve webdav ROOT --baseurl /dav`` (rclone 1.60.1 on Debian 12).

    Depth infinity allowed (207). ETag on files (``"<modtime hex><size hex>"``), none on
    directories. No read-only second user (rclone has one --user/--pass, or an htpasswd file
    without per-user rights).

    ``request_log()`` raises NotImplementedError: rclone logs "PROPFIND from 127.0.0.1:port"
    at INFO level, but never the status code (and GET/auth failures are logged differently).
    """

    kind = "rclone"
    supports_depth_infinity = True
    etags = True
    honours_if_match = False
    has_request_log = False
    supports_readonly_user = False

    BINARY = "rclone"

    @classmethod
    def missing_requirement(cls) -> str | None:
        if _which(cls.BINARY) is None:
            return "needs Debian package rclone"
        return None

    def _command(self) -> list[str]:
        rclone = _which(self.BINARY)
        assert rclone is not None
        return [
            *_pdeathsig_prefix(),
            rclone,
            "serve",
            "webdav",
            str(self.root),
            "--addr",
            f"127.0.0.1:{self.port}",
            "--cert",
            str(self.tls.cert_file),
            "--key",
            str(self.tls.key_file),
            "--user",
            USERNAME,
            "--pass",
            PASSWORD,
            "--baseurl",
            self.prefix,
            # the default (5m) hides files written to disk behind rclone's back
            "--dir-cache-time",
            "0s",
            "--config",
            os.devnull,
            "-v",
        ]

    def _child_env(self) -> dict[str, str]:
        env = super()._child_env()
        env["RCLONE_CONFIG"] = os.devnull
        return env

    def request_log(self) -> list[RequestLogEntry]:
        raise NotImplementedError("rclone serve webdav does not log response status codes")

    def clear_log(self) -> None:
        pass


class LighttpdServer(_SubprocessServer):
    """A private lighttpd 1.4 with mod_webdav (``lighttpd -D -f conf``), as its defaults come.

    It speaks HTTP/2 where the client offers it (libcurl does; httpx does not), answers 415 to a
    PROPFIND whose body is not sent as XML, and 403 ``propfind-finite-depth`` to Depth infinity
    (its ``propfind-depth-infinity`` option stays off). Folders list a getetag and a
    getcontentlength (4096) as files do. A GET or HEAD sends neither ETag nor Last-Modified.
    Read-only user bob: a write gets 401.

    Its stat cache is off: the tests change files on disk behind the server's back, where a
    coordinator uploads through the server (a PUT or MOVE clears the cache). With it on, a GET
    within a second of the last one sends the old file under the new listing's tag.

    The access log goes through a pipe (``|cat``): lighttpd flushes a log file only every few
    seconds, a piped logger at once. HTTP/2's connection preface is logged as a "PRI" request,
    which :meth:`request_log` leaves out.
    """

    kind = "lighttpd"
    supports_depth_infinity = False
    etags = True
    honours_if_match = True
    get_etags = False  # nor Last-Modified; an If-Range therefore always gets the whole file

    BINARY = "lighttpd"
    MODULES_DIR = Path("/usr/lib/lighttpd")
    MODULES = ("mod_alias", "mod_auth", "mod_authn_file", "mod_webdav", "mod_accesslog", "mod_openssl")

    @classmethod
    def missing_requirement(cls) -> str | None:
        if _which(cls.BINARY) is None:
            return "needs Debian package lighttpd"
        for mod, package in (("mod_webdav", "lighttpd-mod-webdav"), ("mod_openssl", "lighttpd-mod-openssl"),
                             ("mod_authn_file", "lighttpd")):
            if not (cls.MODULES_DIR / f"{mod}.so").exists():
                return f"needs Debian package {package}"
        return None

    def _log_target(self, field: str) -> str:
        return _request_line_target(field)  # %r, as Apache's

    def request_log(self) -> list[RequestLogEntry]:
        return [entry for entry in super().request_log() if entry[0] != "PRI"]

    def _prepare(self) -> None:
        (self.workdir / "htdocs").mkdir(exist_ok=True)
        htpasswd = self.workdir / "htpasswd"
        htpasswd.write_text(_htpasswd_all())
        self._reset_log_offset()
        modules = ", ".join(f'"{m}"' for m in self.MODULES)
        reads = "|".join(READ_METHODS)
        cat = _which("cat") or "/bin/cat"
        conf = f"""\
server.modules = ({modules})
server.document-root = "{self.workdir}/htdocs"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{self.workdir}/error.log"
server.pid-file = "{self.workdir}/lighttpd.pid"
server.stat-cache-engine = "disable"
accesslog.filename = "|{cat} >> {self.access_log}"
accesslog.format = "%m\\t%r\\t%>s"
ssl.engine = "enable"
ssl.pemfile = "{self.tls.cert_file}"
ssl.privkey = "{self.tls.key_file}"
alias.url = ("{self.prefix}/" => "{self.root}/")
$HTTP["url"] =~ "^{self.prefix}(/|$)" {{
  webdav.activate = "enable"
  webdav.is-readonly = "disable"
  webdav.sqlite-db-name = "{self.workdir}/webdav.sqlite"
  auth.backend = "htpasswd"
  auth.backend.htpasswd.userfile = "{htpasswd}"
  auth.require = ("" => ("method" => "basic", "realm" => "m3 test dav", "require" => "valid-user"))
  $HTTP["request-method"] !~ "^({reads})$" {{
    auth.require = ("" => ("method" => "basic", "realm" => "m3 test dav", "require" => "user={USERNAME}"))
  }}
}}
"""
        (self.workdir / "lighttpd.conf").write_text(conf)

    def _command(self) -> list[str]:
        lighttpd = _which(self.BINARY)
        assert lighttpd is not None
        return [*_pdeathsig_prefix(), lighttpd, "-D", "-f", str(self.workdir / "lighttpd.conf")]


class ApacheH2Server(ApacheServer):
    """The same Apache with HTTP/2 offered by ALPN (``Protocols h2 http/1.1``, mod_http2), as
    Nextcloud hosts and most reverse proxies are. Not one of :data:`KINDS`: the contract suite
    runs on the HTTP/1.1 one; this one is for what HTTP/2 changes (one connection for many
    requests). ``connections()`` tells which connections the requests came on."""

    kind = "apache-h2"
    MODULES: ClassVar[dict[str, str]] = {**ApacheServer.MODULES, "http2_module": "mod_http2.so"}

    @property
    def connection_log(self) -> Path:
        return self.workdir / "connections.log"

    def _prepare(self) -> None:
        super()._prepare()
        conf = self.workdir / "apache.conf"
        # each request's client port and protocol: one port per TCP connection
        conf.write_text(conf.read_text() + f"""\
Protocols h2 http/1.1
LogFormat "%{{remote}}p\\t%H\\t%m" connlog
CustomLog "{self.connection_log}" connlog
""")

    def clear_log(self) -> None:
        super().clear_log()
        self._conn_offset = self.connection_log.stat().st_size if self.connection_log.exists() else 0

    def connections(self) -> list[tuple[int, str, str]]:
        """(client port, protocol, method) of each request logged since :meth:`clear_log`."""
        self.request_log()  # (waits until the logs settled)
        try:
            with open(self.connection_log, "rb") as f:
                f.seek(getattr(self, "_conn_offset", 0))
                lines = f.read().decode("ascii", "replace").splitlines()
        except FileNotFoundError:
            return []
        rows = [line.split("\t") for line in lines]
        return [(int(row[0]), row[1], row[2]) for row in rows if len(row) == 3]


SERVER_CLASSES: dict[str, type[DavServer]] = {
    cls.kind: cls for cls in (WsgiDavServer, ApacheServer, NginxServer, RcloneServer, LighttpdServer,
                              ApacheH2Server)
}


# --------------------------------------------------------------------------------------------
# A pool of session-wide servers (used by conftest.py)
# --------------------------------------------------------------------------------------------


class ServerPool:
    """Starts each kind at most once; :meth:`close` stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self._tls: TLSFiles | None = None
        self._servers: dict[str, DavServer] = {}
        self._failed: dict[str, str] = {}

    @property
    def tls(self) -> TLSFiles:
        if self._tls is None:
            self._tls = make_tls_files(self.workdir / "tls")
        return self._tls

    def get(self, kind: str) -> DavServer:
        """The running server of this kind; skips (or fails in CI) when it cannot run here."""
        cls = SERVER_CLASSES[kind]
        missing = cls.missing_requirement()
        if missing:
            skip_or_fail(missing)
        if kind in self._failed:
            raise RuntimeError(
                f"{kind} server failed to start earlier in this session:\n{self._failed[kind]}"
            )
        server = self._servers.get(kind)
        if server is None:
            server = cls(self.workdir / kind, self.tls)
            self._servers[kind] = server
        if not server.is_running():  # first use, or a test stopped it
            try:
                server.start()
            except Exception as exc:
                self._failed[kind] = str(exc)
                raise
        return server

    def fresh(self, kind: str) -> DavServer:
        """Running, with an empty root and an empty request log."""
        server = self.get(kind)
        server.clear_root()
        server.clear_log()
        return server

    def close(self) -> None:
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                server.stop()
        self._servers.clear()


def bump(path: Path, data: bytes) -> None:
    """Change a file on the server the way an upload does: new inode, newer mtime."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    later = time.time() + 5
    os.utime(tmp, (later, later))
    os.replace(tmp, path)
