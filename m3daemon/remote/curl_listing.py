"""Listing PROPFINDs on libcurl: the daemon's poll, and a CLI command's one sync.

Why: on a server that is walked (Apache refuses ``Depth: infinity``), an unchanged poll is a dozen
Depth-1 PROPFINDs whose answers are byte for byte the last ones. On httpx each costs about 3 ms of
Python (h11 events, one pass per TLS record): 35-45 ms of CPU a poll, most of it. On one
``CurlMulti`` the dozen cost about 7 ms (docs/performance.md, "Issue 17, seventh stop"). A CLI
command asks its ``Depth: infinity`` and every level of its walk here too: with its downloads on
libcurl as well, a sync then never loads httpx: 100 of the 354 modules a no-op ``update`` loaded
(docs/performance.md, "eighth stop").

So this module only fetches. A clean answer (a complete 207 in XML) goes back to
remote/listing.py, which compares it with the last answer and parses it only if it changed.
Anything else is None for that folder, and listing.py asks for it again on httpx: an error
status, a broken connection, a timeout, an answer too large to hold. The retries, the back-off
and the plain-words error for each failure stay in one place.

The connections stay open between polls (the handles and the multi are kept), as the httpx
session's do; the trust, the account and the timeouts are those of the session.

On a server that speaks HTTP/2 (libcurl offers it by ALPN; Nextcloud hosts and most reverse
proxies accept it), every folder is asked at once on one connection: one TLS handshake and one
round trip. Whether the server does is learnt from its answers (:attr:`PollLister.multiplex`),
never assumed: on HTTP/1.1, libcurl's wait for a first connection to multiplex on
(``CURLOPT_PIPEWAIT``) would only delay the others (docs/performance.md, "sixteenth stop").
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from m3daemon.errors import Cancelled
from m3daemon.remote.curl import SELECT_MAX, new_handle, trust_options, wait_for_sockets
from m3daemon.remote.http import DavSession
from m3daemon.remote.multistatus import PROPFIND_BODY, PROPFIND_CONTENT_TYPE
from m3daemon.remote.retry import FailedAttempt, parse_retry_after

try:  # pragma: no branch - an optional native dependency
    import pycurl
except ImportError:  # pragma: no cover - the walk asks on httpx then
    pycurl = None

log = logging.getLogger(__name__)

Parts = tuple[str, ...]

# libcurl's errors that the retry policy retries as httpx's transport errors: a timeout, a refused
# or broken connection, an empty or cut-off answer. A TLS failure is not among them: httpx's
# one attempt then says what is wrong with the certificate.
TRANSIENT = frozenset({
    7,   # COULDNT_CONNECT
    18,  # PARTIAL_FILE
    28,  # OPERATION_TIMEDOUT
    52,  # GOT_NOTHING
    55,  # SEND_ERROR
    56,  # RECV_ERROR
})


@dataclass
class _Ask:
    parts: Parts
    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    retry_after: str | None = None

    def header(self, line: bytes) -> None:
        name, _sep, value = line.partition(b":")
        if name.strip().lower() == b"retry-after":
            self.retry_after = value.strip().decode("latin-1")

    def write(self, data: bytes) -> int | None:
        self.size += len(data)
        if self.size > self.limit:
            return 0  # libcurl stops the transfer: too large to hold, httpx parses it as it arrives
        self.chunks.append(data)
        return None


# Streams asked at once on one HTTP/2 connection; servers allow 100 or more (Apache's
# H2MaxSessionStreams, nginx's http2_max_concurrent_streams), a walk asks a dozen or two.
MULTIPLEXED = 32


class PollLister:
    """Depth-1 PROPFINDs of known folders, ``parallel`` at a time (every one at once where the server
    multiplexes), on one kept ``CurlMulti``."""

    def __init__(self, session: DavSession, trust: Sequence[tuple[int, Any]], *, parallel: int = 4,
                 multiplex: bool = False) -> None:
        assert pycurl is not None
        self.session = session
        self.trust = list(trust)
        self.parallel = max(1, parallel)
        # The server's last answer came over HTTP/2: the next requests wait for one connection and
        # share it. Set from each answer; the caller keeps it for the next process (remote/listing.py).
        self.multiplex = multiplex
        self._multi = pycurl.CurlMulti()
        self._free: list[Any] = []

    @classmethod
    def for_session(cls, session: DavSession, **kwargs: Any) -> PollLister | None:
        """The fast path for this session, or None where libcurl cannot verify the server as
        httpx does (pycurl missing, macOS's Keychain) or has no password to send."""
        if pycurl is None or os.environ.get("M3DAEMON_NO_CURL"):
            return None
        if session.endpoint.timeout < 1 or session.endpoint.timeout % 1:
            return None  # libcurl's low-speed limit counts whole seconds; httpx keeps this one exactly
        trust = trust_options(session.endpoint.ca_file)
        if trust is None or session.password is None:
            return None
        return cls(session, trust, **kwargs)

    def ask(self, folders: Sequence[Parts], limit: int, *, depth: str = "1",
            refused: frozenset[int] = frozenset()) -> dict[Parts, bytes | int | FailedAttempt | None]:
        """Each folder's answer: its body when it was a complete 207 in XML of at most ``limit``
        bytes (decoded); its status when that is one of ``refused`` (``Depth: infinity`` refused:
        the caller walks instead); a :class:`~m3daemon.remote.retry.FailedAttempt` when the retry
        policy would ask again; else None (too large to hold, or an error status that httpx's
        answer puts in plain words). Raises Cancelled when the sync is cancelled."""
        assert pycurl is not None
        multi, session = self._multi, self.session
        queue = deque(folders)
        active: dict[int, tuple[Any, _Ask]] = {}
        out: dict[Parts, bytes | int | FailedAttempt | None] = {}
        headers = [f"Depth: {depth}", f"Content-Type: {PROPFIND_CONTENT_TYPE}", "Expect:"]
        try:
            while queue or active:
                if session.cancel is not None and session.cancel.is_set():
                    raise Cancelled
                while queue and len(active) < (MULTIPLEXED if self.multiplex else self.parallel):
                    ask = _Ask(queue.popleft(), limit)
                    handle = self._start(ask, headers)
                    multi.add_handle(handle)
                    active[id(handle)] = (handle, ask)
                while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                    pass
                finished = False
                while True:
                    left, ok, failed = multi.info_read()
                    for handle in ok:
                        self._finish(active, handle, None, out, refused)
                    for handle, code, message in failed:
                        self._finish(active, handle, (code, message), out, refused)
                    finished = finished or bool(ok or failed)
                    if not left:
                        break
                if active and not (finished and queue):
                    wait_for_sockets(multi, SELECT_MAX)
        finally:
            for handle, _ask in list(active.values()):
                multi.remove_handle(handle)
                self._free.append(handle)
        return out

    def close(self) -> None:
        for handle in self._free:
            handle.close()
        self._free.clear()
        self._multi.close()

    def _start(self, ask: _Ask, headers: list[str]) -> Any:
        assert pycurl is not None
        if self._free:
            c = self._free.pop()
        else:
            c = new_handle(self.session, self.trust)
            endpoint = self.session.endpoint
            c.setopt(pycurl.CUSTOMREQUEST, "PROPFIND")
            c.setopt(pycurl.POSTFIELDS, PROPFIND_BODY)
            c.setopt(pycurl.ACCEPT_ENCODING, "")  # what libcurl decodes; the size is counted decoded
            # As the httpx session: nothing for `timeout` seconds, or past the deadline, gives up.
            c.setopt(pycurl.LOW_SPEED_LIMIT, 1)
            c.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(endpoint.timeout)))
            c.setopt(pycurl.TIMEOUT_MS, int(endpoint.deadline * 1000))
        c.setopt(pycurl.PIPEWAIT, 1 if self.multiplex else 0)
        c.setopt(pycurl.HTTPHEADER, headers)
        c.setopt(pycurl.URL, self.session.url(ask.parts, collection=True))
        c.setopt(pycurl.WRITEFUNCTION, ask.write)
        c.setopt(pycurl.HEADERFUNCTION, ask.header)
        self.session.stats.count("PROPFIND")
        return c

    def _finish(self, active: dict[int, tuple[Any, _Ask]], handle: Any, error: tuple[int, str] | None,
                out: dict[Parts, bytes | int | FailedAttempt | None], refused: frozenset[int]) -> None:
        assert pycurl is not None
        _handle, ask = active.pop(id(handle))
        self._multi.remove_handle(handle)
        self.session.stats.add_bytes(int(handle.getinfo(pycurl.SIZE_DOWNLOAD_T)))
        status = int(handle.getinfo(pycurl.RESPONSE_CODE))
        ctype = handle.getinfo(pycurl.CONTENT_TYPE) or ""
        if status:  # (an answer came: over which protocol)
            self.multiplex = int(handle.getinfo(pycurl.INFO_HTTP_VERSION)) >= pycurl.CURL_HTTP_VERSION_2_0
        self._free.append(handle)
        if error is None and status == 207 and ("xml" in ctype or not ctype):
            out[ask.parts] = b"".join(ask.chunks)
            return
        if error is None and status in refused:
            out[ask.parts] = status
            return
        log.debug("PROPFIND of %s asked again on httpx: %s", "/".join(ask.parts) or "/",
                  f"{error[1]} (libcurl {error[0]})" if error else f"status {status} {ctype}")
        if error is not None and error[0] == pycurl.E_WRITE_ERROR:
            out[ask.parts] = None  # stopped by ``write``: too large to hold
        elif error is not None and error[0] in TRANSIENT:
            out[ask.parts] = FailedAttempt()
        elif error is None and status in self.session.retry.statuses:
            out[ask.parts] = FailedAttempt(parse_retry_after(ask.retry_after))
        else:
            out[ask.parts] = None
