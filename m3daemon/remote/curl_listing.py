"""The daemon poll's PROPFINDs on libcurl: every folder the last walk opened, asked again at once.

Why: on a server that is walked (Apache refuses ``Depth: infinity``), an unchanged poll is a dozen
Depth-1 PROPFINDs whose answers are byte for byte the last ones. On httpx each costs about 3 ms of
Python (h11 events, one pass per TLS record): 35-45 ms of CPU a poll, most of it. On one
``CurlMulti`` the dozen cost about 7 ms (docs/performance.md, "Issue 17, seventh stop").

So this module only fetches. A clean answer (a complete 207 in XML) goes back to
remote/listing.py, which compares it with the last answer and parses it only if it changed.
Anything else is None for that folder, and listing.py asks for it again on httpx: an error
status, a broken connection, a timeout, an answer too large to hold. The retries, the back-off
and the plain-words error for each failure stay in one place.

The connections stay open between polls (the handles and the multi are kept), as the httpx
session's do; the trust, the account and the timeouts are those of the session.
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
from m3daemon.remote.curl import SELECT_MAX, new_handle, trust_options
from m3daemon.remote.http import DavSession
from m3daemon.remote.multistatus import PROPFIND_BODY

try:  # pragma: no branch - an optional native dependency
    import pycurl
except ImportError:  # pragma: no cover - the walk asks on httpx then
    pycurl = None

log = logging.getLogger(__name__)

Parts = tuple[str, ...]


@dataclass
class _Ask:
    parts: Parts
    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0

    def write(self, data: bytes) -> int | None:
        self.size += len(data)
        if self.size > self.limit:
            return 0  # libcurl stops the transfer: too large to hold, httpx parses it as it arrives
        self.chunks.append(data)
        return None


class PollLister:
    """Depth-1 PROPFINDs of known folders, ``parallel`` at a time, on one kept ``CurlMulti``."""

    def __init__(self, session: DavSession, trust: Sequence[tuple[int, Any]], *, parallel: int = 4) -> None:
        assert pycurl is not None
        self.session = session
        self.trust = list(trust)
        self.parallel = max(1, parallel)
        self._multi = pycurl.CurlMulti()
        self._free: list[Any] = []

    @classmethod
    def for_session(cls, session: DavSession, **kwargs: Any) -> PollLister | None:
        """The fast path for this session, or None where libcurl cannot verify the server as
        httpx does (pycurl missing, macOS's Keychain) or has no password to send."""
        if pycurl is None or os.environ.get("M3DAEMON_NO_CURL"):
            return None
        trust = trust_options(session.endpoint.ca_file)
        if trust is None or session.password is None:
            return None
        return cls(session, trust, **kwargs)

    def ask(self, folders: Sequence[Parts], limit: int) -> dict[Parts, bytes | None]:
        """Each folder's answer: its body when it was a complete 207 in XML of at most ``limit``
        bytes (decoded), else None. Raises Cancelled when the sync is cancelled."""
        assert pycurl is not None
        multi, session = self._multi, self.session
        queue = deque(folders)
        active: dict[int, tuple[Any, _Ask]] = {}
        out: dict[Parts, bytes | None] = {}
        try:
            while queue or active:
                if session.cancel is not None and session.cancel.is_set():
                    raise Cancelled
                while queue and len(active) < self.parallel:
                    ask = _Ask(queue.popleft(), limit)
                    handle = self._start(ask)
                    multi.add_handle(handle)
                    active[id(handle)] = (handle, ask)
                while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                    pass
                finished = False
                while True:
                    left, ok, failed = multi.info_read()
                    for handle in ok:
                        self._finish(active, handle, None, out)
                    for handle, code, message in failed:
                        self._finish(active, handle, f"{message} (libcurl {code})", out)
                    finished = finished or bool(ok or failed)
                    if not left:
                        break
                if active and not (finished and queue):
                    multi.select(SELECT_MAX)
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

    def _start(self, ask: _Ask) -> Any:
        assert pycurl is not None
        if self._free:
            c = self._free.pop()
        else:
            c = new_handle(self.session, self.trust)
            endpoint = self.session.endpoint
            c.setopt(pycurl.CUSTOMREQUEST, "PROPFIND")
            c.setopt(pycurl.HTTPHEADER, ["Depth: 1", "Content-Type: application/xml; charset=utf-8", "Expect:"])
            c.setopt(pycurl.POSTFIELDS, PROPFIND_BODY)
            c.setopt(pycurl.ACCEPT_ENCODING, "")  # what libcurl decodes; the size is counted decoded
            # As the httpx session: nothing for `timeout` seconds, or past the deadline, gives up.
            c.setopt(pycurl.LOW_SPEED_LIMIT, 1)
            c.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(endpoint.timeout)))
            c.setopt(pycurl.TIMEOUT_MS, int(endpoint.deadline * 1000))
        c.setopt(pycurl.URL, self.session.url(ask.parts, collection=True))
        c.setopt(pycurl.WRITEFUNCTION, ask.write)
        self.session.stats.count("PROPFIND")
        return c

    def _finish(self, active: dict[int, tuple[Any, _Ask]], handle: Any, error: str | None,
                out: dict[Parts, bytes | None]) -> None:
        assert pycurl is not None
        _handle, ask = active.pop(id(handle))
        self._multi.remove_handle(handle)
        self.session.stats.add_bytes(int(handle.getinfo(pycurl.SIZE_DOWNLOAD_T)))
        status = int(handle.getinfo(pycurl.RESPONSE_CODE))
        ctype = handle.getinfo(pycurl.CONTENT_TYPE) or ""
        self._free.append(handle)
        if error is None and status == 207 and ("xml" in ctype or not ctype):
            out[ask.parts] = b"".join(ask.chunks)
            return
        log.debug("PROPFIND of %s asked again on httpx: %s", "/".join(ask.parts) or "/",
                  error or f"status {status} {ctype}")
        out[ask.parts] = None
