"""The control channel between the CLI (and the dashboard) and the running daemon.

A small JSON API served on loopback only. Each configuration the daemon serves gets a 0600
``daemon.json`` in its state folder with the port and a random per-run token; a request without
that token gets 403. Only the user (and root) can read the file, so only they can steer the
daemon. The port is the front of :mod:`m3daemon.web.front` (plain HTTP), so slow clients cannot
hold cheroot's threads. The same WSGI server carries the dashboard (``ControlApp.fallback``, :mod:`m3daemon.dashboard`),
which has its own key and session checks.

The client side is a socket that speaks the little of HTTP/1.1 this API uses (one request and
one answer at a time on a kept-alive connection, framed by Content-Length or chunks). A CLI command
that hands its work to the daemon imports neither httpx nor the sync engine, nor ``http.client``
(with ``email`` and ``ssl``, 30-40 ms of a 0.2 s command), so it starts in a fraction of the time.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from m3daemon.daemon import CONTROL_FILE
from m3daemon.errors import DaemonAnswerError, DaemonRequestError
from m3daemon.i18n import _

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Handler = Callable[[dict[str, Any]], tuple[int, Any]]


def _json_response(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False, default=str).encode()
    reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
              405: "Method Not Allowed", 500: "Internal Server Error"}.get(status, "OK")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                          ("Cache-Control", "no-store")])
    return [data]


class ControlApp:
    """Routes ``METHOD /api/<name>`` to handlers; everything else may be mounted by the dashboard."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.routes: dict[tuple[str, str], Handler] = {}
        self.fallback: WsgiApp | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def authorized(self, environ: dict[str, Any]) -> bool:
        given = environ.get("HTTP_AUTHORIZATION", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), self.token.encode())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/api/"):
            if self.fallback is not None:
                return self.fallback(environ, start_response)
            return _json_response(start_response, 404, {"error": "not found"})
        if not self.authorized(environ):
            return _json_response(start_response, 403, {"error": "missing or wrong token"})
        handler = self.routes.get((environ.get("REQUEST_METHOD", "GET"), path))
        if handler is None:
            return _json_response(start_response, 404, {"error": "no such endpoint"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body must be an object")  # noqa: TRY004 - answered below as a bad request
        except ValueError as exc:
            return _json_response(start_response, 400, {"error": str(exc)})
        try:
            status, result = handler(body)
        except Exception as exc:
            log.exception("control request %s failed", path)
            return _json_response(start_response, 500, {"error": str(exc)})
        return _json_response(start_response, status, result)


class ControlServer:
    """cheroot behind the front (:mod:`m3daemon.web.front`, plain HTTP) on 127.0.0.1 (or the host
    the user chose), in threads of the daemon.

    Without the front, anyone on the computer could stall the port: cheroot gives each request
    being read one of its threads, so a dozen connections that send a header line a second kept
    every caller (the CLI, the dashboard) waiting. The front reads request heads in its event
    loop with a deadline; cheroot listens on a socket only this user can reach. Every local
    client is 127.0.0.1, so there is no per-address cap here, only the total.
    """

    def __init__(self, app: WsgiApp, host: str = "127.0.0.1", port: int = 0) -> None:
        import os
        import secrets
        import socket
        import tempfile

        from cheroot import wsgi

        from m3daemon.web.front import Backend, Front, FrontLimits, listen

        self._secret = secrets.token_urlsafe(32)
        self._socket_dir: Path | None = None
        if hasattr(socket, "AF_UNIX") and os.name == "posix":
            self._socket_dir = Path(tempfile.mkdtemp(prefix="m3daemon-control-"))
            bind: Any = str(self._socket_dir / "control.sock")
        else:
            bind = ("127.0.0.1", 0)
        # Enough threads that a long dashboard upload and a few image previews never keep the
        # CLI's requests waiting (idle keep-alive connections do not hold a thread).
        self._server = wsgi.Server(bind, _FromFront(app, self._secret), numthreads=10, request_queue_size=256,
                                   timeout=300)
        # The selector loop wakes this often: rarely, so an idle daemon costs nothing (stop waits up to 1 s).
        self._server.expiration_interval = 1.0
        self._server.prepare()
        backend = Backend(path=bind) if isinstance(bind, str) else Backend(port=int(self._server.bind_addr[1]))
        listener = listen(host, port)
        self._front = Front(listener, None, backend, self._secret,
                            FrontLimits(connections_per_address=512, max_connections=512), name="control-front")
        self.host = host
        self.port = int(listener.getsockname()[1])
        self._thread = threading.Thread(target=self._server.serve, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._front.start()

    def stop(self) -> None:
        self._front.stop()
        self._front.socket.close()
        self._server.stop()
        self._thread.join(timeout=5)
        if self._socket_dir is not None:
            import shutil

            shutil.rmtree(self._socket_dir, ignore_errors=True)


class _FromFront:
    """The client's address from the front; a request that reached cheroot another way gets 403."""

    def __init__(self, app: WsgiApp, secret: str) -> None:
        self.app = app
        self.secret = secret

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        from m3daemon.web.front import peer_from_front

        if not peer_from_front(environ, self.secret):
            return _json_response(start_response, 403, {"error": "not through the control port"})
        return self.app(environ, start_response)


@dataclass(frozen=True)
class ControlInfo:
    port: int
    token: str
    pid: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_control_file(state_dir: Path, info: ControlInfo) -> Path:
    from m3daemon.local.paths import write_private_file

    path = state_dir / CONTROL_FILE
    write_private_file(path, json.dumps(info.__dict__).encode())
    return path


def remove_control_file(state_dir: Path, pid: int) -> None:
    info = read_control_file(state_dir)
    if info is not None and info.pid == pid:
        try:
            (state_dir / CONTROL_FILE).unlink()
        except OSError:
            pass


def read_control_file(state_dir: Path) -> ControlInfo | None:
    try:
        data = json.loads((state_dir / CONTROL_FILE).read_text("utf-8"))
        return ControlInfo(int(data["port"]), str(data["token"]), int(data["pid"]), str(data.get("host", "127.0.0.1")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 10.0
WAIT_MAX = 20.0  # seconds one /api/wait call may hold a control thread (the CLI calls again)
MAX_ANSWER_HEAD = 64 * 1024  # a status line and headers longer than this are not the daemon's
MAX_ANSWER = 64 * 1024 * 1024  # nor an answer larger than this
# A stale keep-alive connection (closed by the daemon while idle) fails like this before any byte
# of an answer: the request is sent again once on a new connection.
_STALE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class ControlClient:
    """Talks to the daemon serving one configuration; ``connect`` returns None when none runs."""

    def __init__(self, info: ControlInfo) -> None:
        self.info = info
        self._sock: socket.socket | None = None
        self._reader: BinaryIO | None = None

    @classmethod
    def connect(cls, state_dir: Path) -> ControlClient | None:
        info = read_control_file(state_dir)
        if info is None:
            return None
        client = cls(info)
        try:
            client.call("GET", "ping")
        except (OSError, DaemonRequestError, ValueError):
            client.close()
            log.debug("no daemon answers on port %s (stale control file)", info.port)
            return None
        return client

    def call(self, method: str, name: str, body: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """One request to ``/api/<name>``; its JSON answer. Raises OSError (no daemon) or
        :class:`DaemonRequestError` (an error status; :class:`DaemonAnswerError`, an answer that is not HTTP)."""
        data = json.dumps(body).encode() if body is not None and method != "GET" else b""
        head = (f"{method} /api/{name} HTTP/1.1\r\nHost: {self.info.host}:{self.info.port}\r\n"
                f"Authorization: Bearer {self.info.token}\r\nAccept: application/json\r\n")
        if method != "GET":
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        request = head.encode("latin-1") + b"\r\n" + data
        for attempt in (1, 2):
            reused = self._sock is not None
            try:
                reader = self._send(request, timeout if timeout is not None else READ_TIMEOUT)
                status, raw, closes = _read_answer(reader)
            except _STALE:
                self.close()
                if reused and attempt == 1:
                    continue
                raise
            except (OSError, ValueError, DaemonAnswerError):
                self.close()
                raise
            if closes:
                self.close()
            break
        if status >= 400:
            try:
                why = str(json.loads(raw).get("error", ""))
            except (ValueError, AttributeError):
                why = raw[:200].decode("utf-8", "replace")
            raise DaemonRequestError(_("The running m3daemon refused the request ({status} {why}).").format(
                status=status, why=why), status)
        return json.loads(raw) if raw else None

    def _send(self, request: bytes, timeout: float) -> BinaryIO:
        if self._sock is None:
            sock = socket.create_connection((self.info.host, self.info.port), timeout=CONNECT_TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms wait per request
            self._sock, self._reader = sock, sock.makefile("rb")
        assert self._reader is not None
        self._sock.settimeout(timeout)
        self._sock.sendall(request)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _read_answer(reader: BinaryIO) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 answer: its status, its body, and whether the daemon closes the connection."""
    line = reader.readline(MAX_ANSWER_HEAD)
    if not line:
        raise ConnectionResetError("the daemon closed the connection before answering")
    bits = line.split(None, 2)
    if len(bits) < 2 or not bits[0].startswith(b"HTTP/1.") or not bits[1].isdigit():
        raise DaemonAnswerError(f"not an HTTP answer: {line[:80]!r}")
    status = int(bits[1])
    headers: dict[bytes, bytes] = {}
    size = len(line)
    while True:
        line = reader.readline(MAX_ANSWER_HEAD)
        size += len(line)
        if not line.endswith(b"\n") or size > MAX_ANSWER_HEAD:
            raise DaemonAnswerError("the answer's head was cut off or too long")
        if line in (b"\r\n", b"\n"):
            break
        key, sep, value = line.partition(b":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    closes = headers.get(b"connection", b"").lower() == b"close" or bits[0] == b"HTTP/1.0"
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return status, _read_chunks(reader), closes
    length = headers.get(b"content-length")
    if length is None:
        body = reader.read(MAX_ANSWER + 1)  # (to the end of the connection)
        if len(body) > MAX_ANSWER:
            raise DaemonAnswerError("the answer is too large")
        return status, body, True
    if not length.isdigit() or int(length) > MAX_ANSWER:
        raise DaemonAnswerError(f"a Content-Length of {length[:20]!r}")
    body = reader.read(int(length))
    if len(body) < int(length):
        raise DaemonAnswerError("the answer was cut off")
    return status, body, closes


def _read_chunks(reader: BinaryIO) -> bytes:
    body = bytearray()
    while True:
        size_line = reader.readline(1024).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise DaemonAnswerError(f"a chunk size of {size_line[:20]!r}") from None
        if size > MAX_ANSWER - len(body):
            raise DaemonAnswerError("the answer is too large")
        if size == 0:
            while reader.readline(MAX_ANSWER_HEAD) not in (b"\r\n", b"\n", b""):
                pass  # (trailers)
            return bytes(body)
        chunk = reader.read(size + 2)
        if len(chunk) < size + 2:
            raise DaemonAnswerError("the answer was cut off")
        body += chunk[:size]


def is_daemon_running() -> bool:
    """Whether a daemon answers for any congregation configured on this computer."""
    from m3daemon.settings.config import load_config_or_default
    from m3daemon.settings.registry import all_config_paths

    for path in all_config_paths():
        try:
            state_dir = load_config_or_default(path).state_dir
        except Exception:  # noqa: BLE001, S112 - a broken config is not a running daemon
            continue
        client = ControlClient.connect(state_dir)
        if client is not None:
            client.close()
            return True
    return False
