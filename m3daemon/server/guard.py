"""What protects the server, around and inside WsgiDAV.

The request path through the server::

    front (TLS, deadlines, caps) → cheroot → Guard → WsgiDAVApp → ErrorPrinter → HTTPAuthenticator(AccountsDomainController)
                  → RoleGuard → RequestResolver (the WebDAV methods on data/)

- :class:`Guard` (outermost WSGI middleware): the client's address from the front's
  ``X-M3daemon-Peer`` (with the per-run secret; 403 without it), the per-address request rate (token bucket, 429 with
  ``Retry-After``), the brute-force throttle (too many wrong passwords from an address or for an
  account: 429 with ``Retry-After``, checked *before* the password is), request size limits (413) and
  the access log (method, path, status, user, address, bytes, duration; never a header or a password),
  and a complete 400 for a path whose ``..`` leaves the root.
- :class:`AccountsDomainController`: WsgiDAV's hook for checking user name and password; it checks
  them against ``users.json`` (:class:`~m3daemon.server.users.Authenticator`), records failures for
  the throttle and tells the next layers the account's role.
- :class:`RoleGuard` (after authentication): members may only read (PROPFIND, GET, HEAD, OPTIONS);
  every other method gets 403.

Account lock-out is a denial-of-service tool in an attacker's hands: anyone who knows a user name
could keep its owner out. So an address from which an account logged in successfully in the last
``trusted_login_days`` is not locked out for that account (the per-address limit still applies to
it). Behind a reverse proxy every client has the proxy's address; this server does not trust
``X-Forwarded-For`` (it is meant to face the clients directly).
"""

from __future__ import annotations

import base64
import binascii
import logging
import logging.handlers
import math
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from cheroot.errors import MaxSizeExceeded
from wsgidav.dav_error import DAVError
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.mw.base_mw import BaseMiddleware

from m3daemon.core.methods import READ_METHODS
from m3daemon.errors import M3Signal
from m3daemon.local import paths
from m3daemon.server.settings import Limits
from m3daemon.server.throttle import Attempt, Clock, FailureThrottle, TokenBuckets
from m3daemon.server.users import Authenticator, Role
from m3daemon.web.front import peer_from_front

__all__ = [
    "ATTEMPT_KEY", "CONTEXT_KEY", "READ_METHODS", "AccessLog", "AccountsDomainController", "Attempt", "FailureThrottle",
    "Guard",
    "GuardContext", "RoleGuard", "TokenBuckets",
]

#: Key of the shared :class:`GuardContext` in WsgiDAV's configuration.
CONTEXT_KEY = "m3daemon_guard"
#: environ key where the domain controller leaves the account's :class:`Role`.
ROLE_KEY = "m3daemon.role"
#: environ key of the request's reserved :class:`Attempt` (Guard → domain controller).
ATTEMPT_KEY = "m3daemon.attempt"
# What a member may do: READ_METHODS, the same list the client retries as reads (core/methods.py).

StartResponse = Callable[..., Any]


# --- access log -----------------------------------------------------------------------------------


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files are created 0600: they name accounts and addresses."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


class AccessLog:
    """``logs/access.log``, one line per request, rotated by size::

        2025-11-27T19:02:11.204+01:00 192.168.1.20 anna "PUT /Media/2025-12-04/01%20Map.jpg" 201 in=482113 out=0 0.084s
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        paths.ensure_private_dir(path.parent)
        self.path = path
        self._handler = _PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                    encoding="utf-8", delay=True)
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, *, method: str, path: str, status: int, user: str, address: str, bytes_in: int,
              bytes_out: int, seconds: float) -> None:
        stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
        line = (f'{stamp} {address or "-"} {_safe(user) or "-"} "{_safe(method)} {path}" {status} '
                f"in={bytes_in} out={bytes_out} {seconds:.3f}s")
        # straight to the handler (thread-safe, rotating): no logger, so nothing propagates anywhere
        self._handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "levelname": "INFO"}))

    def close(self) -> None:
        self._handler.close()


def _safe(text: str) -> str:
    """No spaces, quotes or control characters in a log field."""
    return urllib.parse.quote(text, safe="/:@!$&'()*+,;=-._~")


def _log_path(environ: dict[str, Any]) -> str:
    raw = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    try:
        text = raw.encode("latin-1").decode("utf-8", "replace")  # WSGI strings are latin-1 bytes
    except UnicodeEncodeError:
        text = raw
    return _safe(text) or "/"


# --- the shared context -----------------------------------------------------------------------------


@dataclass
class GuardContext:
    """Shared by :class:`Guard`, :class:`AccountsDomainController` and :class:`RoleGuard`. WsgiDAV
    deep-copies its configuration; a deep copy of this object is the object itself."""

    authenticator: Authenticator
    limits: Limits
    throttle: FailureThrottle
    buckets: TokenBuckets
    access_log: AccessLog | None = None
    realm: str = "m3daemon"
    data_dir: Path | None = None  # what the URL path ``url_path`` serves (to remove a cut-off upload)
    url_path: str = "/"
    peer_secret: str | None = None  # the front's secret in X-M3daemon-Peer (None: no front)

    @classmethod
    def create(cls, authenticator: Authenticator, limits: Limits, access_log: AccessLog | None,
               clock: Clock = time.monotonic, *, data_dir: Path | None = None, url_path: str = "/",
               peer_secret: str | None = None) -> GuardContext:
        return cls(
            data_dir=data_dir, url_path=url_path, peer_secret=peer_secret,
            authenticator=authenticator, limits=limits,
            throttle=FailureThrottle(limits.auth_max_failures, limits.auth_window_seconds,
                                     limits.trusted_login_days * 86400.0, clock),
            buckets=TokenBuckets(limits.requests_per_second, limits.request_burst, clock),
            access_log=access_log,
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> GuardContext:
        return self


# --- Basic credentials ----------------------------------------------------------------------------


class _Malformed:
    pass


MALFORMED = _Malformed()


def parse_basic(header: str) -> tuple[str, str] | _Malformed | None:
    """``(user, password)`` of a Basic ``Authorization`` header; None for another scheme;
    :data:`MALFORMED` when it cannot be decoded the way WsgiDAV will decode it (UTF-8, one colon)."""
    scheme, _sep, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return MALFORMED
    user, sep, password = text.partition(":")
    if not sep or not user:
        return MALFORMED
    return user, password


# --- the outer middleware -------------------------------------------------------------------------


class _TooLarge(DAVError, M3Signal):  # type: ignore[misc]
    """A request body past the limit. It must be a DAVError: WsgiDAV turns exactly those into the
    HTTP answer (413) inside its own request handling; as an M3Signal it is part of our family."""

    def __init__(self) -> None:
        super().__init__(413, "Request body too large")


class _CountingInput:
    """``wsgi.input`` that counts what is read, and stops a chunked body at ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int | None) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0
        self.overflowed = False

    def _add(self, data: bytes) -> bytes:
        self.count += len(data)
        if self._limit is not None and self.count > self._limit:
            self.overflowed = True
            raise _TooLarge()
        return data

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except MaxSizeExceeded:
            self.overflowed = True
            raise _TooLarge() from None
        except OSError as exc:  # cheroot's chunked reader: IOError("Request Entity Too Large")
            if "too large" in str(exc).lower():
                self.overflowed = True
                raise _TooLarge() from None
            raise

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._call(lambda: self._stream.read(-1 if size is None else size))
        return self._add(data)

    def readline(self, size: int | None = -1) -> bytes:
        data: bytes = self._call(lambda: self._stream.readline(-1 if size is None else size))
        return self._add(data)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = self._call(lambda: self._stream.readlines(hint))
        return [self._add(line) for line in lines]

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class _LoggedBody:
    """The response body, counted; the exchange is logged when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done = done
        self._sent = 0
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self._sent)


class Guard:
    """The outermost WSGI layer: rate limit, brute-force throttle, size limits, access log."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], context: GuardContext) -> None:
        self.app = app
        self.context = context

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        ctx = self.context
        if ctx.peer_secret is not None:
            # through the front (m3daemon.web.front), which names the client; anything else
            # reached cheroot's private socket directly
            if not peer_from_front(environ, ctx.peer_secret):
                body = b"Forbidden: connect to the server's own address.\n"
                start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                                 ("Content-Length", str(len(body))), ("Connection", "close")])
                return [body]
            environ["wsgi.url_scheme"] = "https"  # the client's scheme (MOVE and COPY compare Destination)
            environ["HTTPS"] = "on"
        address = str(environ.get("REMOTE_ADDR") or "-")
        method = str(environ.get("REQUEST_METHOD") or "")
        log_path = _log_path(environ)
        raw_path = str(environ.get("PATH_INFO", ""))
        status_holder: list[int] = [0]
        body_in = _CountingInput(environ["wsgi.input"], None) if "wsgi.input" in environ else None
        attempted: list[str] = [""]

        def done(sent: int) -> None:
            attempt = environ.get(ATTEMPT_KEY)
            if isinstance(attempt, Attempt):
                ctx.throttle.cancel(attempt)  # no-op when a password was checked
            if method == "PUT" and body_in is not None and body_in.overflowed:
                _remove_cut_off_upload(ctx, raw_path)
            if ctx.access_log is None:
                return
            user = str(environ.get("wsgidav.auth.user_name") or "") or attempted[0]
            ctx.access_log.write(method=method, path=log_path, status=status_holder[0], user=user,
                                 address=address, bytes_in=body_in.count if body_in else 0, bytes_out=sent,
                                 seconds=time.perf_counter() - started)

        def reply(code: int, reason: str, text: str, headers: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
            body = (text + "\n").encode("utf-8")
            status_holder[0] = code
            start_response(f"{code} {reason}", [("Content-Type", "text/plain; charset=utf-8"),
                                                ("Content-Length", str(len(body))), *(headers or [])])
            return _LoggedBody([body] if method != "HEAD" else [], done)

        def too_many(wait: float, why: str) -> Iterable[bytes]:
            return reply(429, "Too Many Requests", why,
                         [("Retry-After", str(max(1, math.ceil(wait)))), ("Connection", "close")])

        wait = ctx.buckets.take(address)
        if wait > 0:
            return too_many(wait, "Too many requests from this address; slow down.")

        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            creds = parse_basic(str(header))
            if isinstance(creds, _Malformed):
                ctx.throttle.failed(address, None)
                return reply(400, "Bad Request", "Malformed Authorization header.", [("Connection", "close")])
            user = None
            if creds is not None and ctx.authenticator.store.get(creds[0]) is not None:
                user = attempted[0] = creds[0]  # only existing accounts are named in the log
            wait, attempt = ctx.throttle.reserve(address, user)
            if attempt is None:
                return too_many(wait, "Too many failed logins; try again later.")
            environ[ATTEMPT_KEY] = attempt

        length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
        limit = ctx.limits.max_upload_bytes if method == "PUT" else ctx.limits.max_body_bytes
        if length_text:
            try:
                length = int(length_text)
                if length < 0:
                    raise ValueError(length_text)
            except ValueError:
                return reply(400, "Bad Request", "Bad Content-Length.", [("Connection", "close")])
            if length > limit:
                return reply(413, "Content Too Large",
                             f"The request body is larger than this server accepts ({limit} bytes).",
                             [("Connection", "close")])
        if raw_path != "*" and _escapes_root(raw_path):
            # WsgiDAV refuses it too, but from a generator: its 400 arrives with a Content-Length and
            # no body, and the client waits for the body until its timeout
            return reply(400, "Bad Request", "The path leaves the served folder.", [("Connection", "close")])
        if body_in is not None:
            if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
                body_in = _CountingInput(environ["wsgi.input"], limit)
            environ["wsgi.input"] = body_in

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder[0] = int(status.split(" ", 1)[0])
            if method == "PUT" and body_in is not None and body_in.overflowed:
                _remove_cut_off_upload(ctx, raw_path)  # before the client hears about it
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        try:
            result = self.app(environ, capture)
        except BaseException:
            status_holder[0] = status_holder[0] or 500
            done(0)
            raise
        return _LoggedBody(result, done)


def _escapes_root(path: str) -> bool:
    """Whether ``..`` segments take ``path`` above ``/``."""
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _remove_cut_off_upload(ctx: GuardContext, raw_path: str) -> None:
    """A chunked PUT stopped at the size limit left a partial file (WsgiDAV writes in place):
    remove it, so nobody syncs half a video."""
    if ctx.data_dir is None:
        return
    try:
        path = raw_path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return
    prefix = ctx.url_path.rstrip("/")
    if prefix and not (path == prefix or path.startswith(prefix + "/")):
        return
    parts = [p for p in path[len(prefix):].split("/") if p]
    if not parts or any(p in (".", "..") or "\\" in p for p in parts):
        return
    target = ctx.data_dir.joinpath(*parts)
    try:
        if target.is_file() and not target.is_symlink() and target.resolve().is_relative_to(ctx.data_dir.resolve()):
            target.unlink()
    except OSError:
        pass


# --- inside WsgiDAV -------------------------------------------------------------------------------


class AccountsDomainController(BaseDomainController):  # type: ignore[misc]
    """Checks HTTP Basic credentials against ``users.json`` (Basic only: no digest, since digest
    needs the password or an MD5 of it on the server)."""

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        self.context: GuardContext = config[CONTEXT_KEY]

    def __str__(self) -> str:
        return "AccountsDomainController(users.json)"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        return self.context.realm

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        return True  # no anonymous access, ever

    def supports_http_digest_auth(self) -> bool:
        return False

    def basic_auth_user(self, realm: str, user_name: str, password: str, environ: dict[str, Any]) -> bool:
        ctx = self.context
        address = str(environ.get("REMOTE_ADDR") or "-")
        account = ctx.authenticator.check(user_name, password)
        attempt = environ.get(ATTEMPT_KEY)
        if isinstance(attempt, Attempt):
            attempt.checked = True
        if account is None:
            if not isinstance(attempt, Attempt):  # not through Guard: count it now
                known = ctx.authenticator.store.get(user_name) is not None
                ctx.throttle.failed(address, user_name if known else None)
            return False  # the reserved failure stays
        ctx.throttle.succeeded(address, account.name, attempt if isinstance(attempt, Attempt) else None)
        environ[ROLE_KEY] = account.role
        environ["wsgidav.auth.roles"] = ("editor",) if account.role.can_write else ("reader",)
        environ["wsgidav.auth.permissions"] = ()
        return True


class RoleGuard(BaseMiddleware):  # type: ignore[misc]
    """After authentication: a member may only read; anything else is refused with 403."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        role = environ.get(ROLE_KEY)
        method = str(environ.get("REQUEST_METHOD") or "")
        if not isinstance(role, Role) or (not role.can_write and method not in READ_METHODS):
            body = b"Forbidden: this account may only read.\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(body)))])
            return [body] if method != "HEAD" else []
        result: Iterable[bytes] = self.next_app(environ, start_response)
        return result
