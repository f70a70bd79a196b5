"""Who may use the dashboard, and which requests may change anything.

The dashboard is a web page on loopback, so any web site open in the same browser could try to
reach it (cross-site requests, DNS rebinding). Four checks, every request:

1. **Where from.** The peer must be a loopback address, and the ``Host`` header must name the
   address the daemon listens on (``127.0.0.1:<port>``, ``localhost:<port>`` or ``[::1]:<port>``):
   a DNS-rebinding page sends its own host name and is refused.
2. **Who.** A login key is random, made on request for the user's own processes only (the tray in
   the daemon, and the control API, whose token is in a 0600 file), used once, and valid for
   :data:`KEY_SECONDS`. The tray and ``m3daemon dashboard`` hand it to the browser in a 0600 launch
   page that posts it to ``/login`` (:mod:`~m3daemon.dashboard.launch`), so it is never on a command
   line that ``ps`` shows; ``m3daemon dashboard --url`` prints ``/login?key=…`` for a browser
   started by hand. A right key gives a session: a random id in a cookie (``HttpOnly;
   SameSite=Strict; Path=/``), named after the port so two runs never mix. No session, no page: 403.
3. **Changes.** Every POST must carry the session's CSRF token (form field ``csrf_token`` or header
   ``X-CSRF-Token``) *and* an ``Origin`` (or, without one, a ``Referer``) that is the dashboard's own
   origin. A form on another site fails three times: its cookie is not sent (SameSite), its origin is
   wrong, and it cannot know the token.
4. **What the browser may do.** A strict Content-Security-Policy (own scripts, styles and images
   only; no inline script, no frames), ``nosniff`` and no caching of pages.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from urllib.parse import urlsplit

SESSION_IDLE_SECONDS = 12 * 3600
#: A login key works once, within this many seconds of being made.
KEY_SECONDS = 60.0
MAX_KEYS = 16
MAX_SESSIONS = 32
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy",
     ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two texts."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


@dataclass
class Session:
    sid: str
    csrf: str
    created: float
    last_seen: float
    flashes: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, message, remedy)

    def flash(self, kind: str, message: str, remedy: str = "") -> None:
        self.flashes.append((kind, message, remedy))
        del self.flashes[:-10]

    def take_flashes(self) -> list[tuple[str, str, str]]:
        out, self.flashes = self.flashes, []
        return out


class Sessions:
    """Server-side sessions, in memory: they end with the daemon, like its secret."""

    def __init__(self, idle: float = SESSION_IDLE_SECONDS, limit: int = MAX_SESSIONS) -> None:
        self._idle = idle
        self._limit = limit
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def create(self) -> Session:
        now = time.monotonic()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            if len(self._by_id) >= self._limit:
                oldest = min(self._by_id.values(), key=lambda x: x.last_seen)
                del self._by_id[oldest.sid]
            self._by_id[s.sid] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            found = next((s for k, s in self._by_id.items() if same(k, sid)), None)
            if found is not None:
                found.last_seen = now
            return found

    def _expire(self, now: float) -> None:
        for sid in [k for k, s in self._by_id.items() if now - s.last_seen > self._idle]:
            del self._by_id[sid]


class LoginKeys:
    """Single-use login keys that expire after ``lifetime`` seconds; at most ``limit`` outstanding
    (making one more drops the oldest)."""

    def __init__(self, lifetime: float = KEY_SECONDS, limit: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, float] = {}  # key -> made at

    def issue(self) -> str:
        key = new_secret()
        now = self._clock()
        with self._lock:
            self._expire(now)
            while len(self._keys) >= self.limit:
                del self._keys[min(self._keys, key=self._keys.__getitem__)]
            self._keys[key] = now
        return key

    def consume(self, given: str | None) -> str | None:
        """The key, removed, when ``given`` is one that is still valid; else None."""
        if not given:
            return None
        now = self._clock()
        with self._lock:
            self._expire(now)
            found = next((k for k in self._keys if same(k, given)), None)
            if found is not None:
                del self._keys[found]
            return found

    def expired(self) -> list[str]:
        """Remove and return the keys that are past their lifetime (for their launch pages)."""
        with self._lock:
            return self._expire(self._clock())

    def _expire(self, now: float) -> list[str]:
        old = [k for k, made in self._keys.items() if now - made > self.lifetime]
        for key in old:
            del self._keys[key]
        return old


class Guard:
    """The checks of the module docstring for one daemon run."""

    def __init__(self, keys: LoginKeys | None = None) -> None:
        self.keys = keys or LoginKeys()
        self.sessions = Sessions()
        self.port: int | None = None
        self.host = "127.0.0.1"
        self._hosts: frozenset[str] = frozenset()
        self._origins: frozenset[str] = frozenset()

    def bind(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        names = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]
        self._hosts = frozenset(names)
        self._origins = frozenset(f"http://{n}" for n in names)

    @property
    def cookie_name(self) -> str:
        return f"m3daemon_dashboard_{self.port or 0}"

    @property
    def base_url(self) -> str | None:
        if self.port is None:
            return None
        host = "[::1]" if self.host == "::1" else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def peer_ok(self, environ: Mapping[str, object]) -> bool:
        try:
            return ip_address(str(environ.get("REMOTE_ADDR", "")).split("%")[0]).is_loopback
        except ValueError:
            return False

    def host_ok(self, host_header: str) -> bool:
        return host_header.lower() in self._hosts

    def use_key(self, given: str | None) -> str | None:
        """The login key, now used up, when ``given`` is a valid one."""
        return self.keys.consume(given)

    def origin_ok(self, origin: str | None, referer: str | None) -> bool:
        """The request comes from a page of this dashboard (``Origin``, else ``Referer``)."""
        if origin:
            return origin.lower() in self._origins
        if referer:
            parts = urlsplit(referer)
            return f"{parts.scheme}://{parts.netloc}".lower() in self._origins
        return False

    @staticmethod
    def csrf_ok(session: Session, given: str | None) -> bool:
        return bool(given) and same(given or "", session.csrf)
