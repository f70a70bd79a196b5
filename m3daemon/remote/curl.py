"""libcurl handles that talk to the server as the httpx session does, shared by the listing
(``remote/curl_listing.py``) and the fresh downloads (``remote/curl_download.py``).

Why libcurl: per 100 KB file, httpx costs about 1.2 ms of Python (request building, h11 events,
one pass per TLS record, three threads fighting for the GIL); libcurl costs what curl costs, and in
one thread nothing competes for the GIL (docs/performance.md, experiment (b)).

The guarantees are the same as on the httpx path: TLS verified against the same trust (the
configured CA file alone, or the system store Python's ``ssl`` uses), Basic auth, the user agent,
the connection timeout, no proxy and no redirects. Without pycurl (or with ``M3DAEMON_NO_CURL``)
httpx does everything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from m3daemon import __version__
from m3daemon.remote.http import DavSession

try:  # pragma: no branch - an optional native dependency
    import pycurl
except ImportError:  # pragma: no cover - httpx does every download then
    pycurl = None

SELECT_MAX = 0.25  # seconds; how soon a cancel is noticed while every transfer waits


def wait_for_sockets(multi: Any, longest: float) -> None:
    """Wait until one of ``multi``'s sockets is ready, or its next timer is due, at most ``longest``
    seconds: what libcurl asks of a loop on ``curl_multi_fdset`` (``curl_multi_timeout`` says how
    long it may wait; 0: not at all, -1: no timer is set).

    Why: libcurl may want to run at once with nothing to read on any socket (a TLS record it has
    already read, a transfer that moves to its next step). A ``select`` of the full ``longest``
    then waits for nothing: the listing's loop did, in 9 of 160 no-op syncs here, 250 ms each
    (docs/performance.md, "fourteenth stop")."""
    wait = multi.timeout()
    if wait != 0:
        multi.select(longest if wait < 0 else min(wait / 1000, longest))



def trust_options(ca_file: Path | None) -> list[tuple[int, Any]] | None:
    """libcurl's verification settings that trust exactly what the httpx session trusts (the
    configured CA alone, else the system store truststore uses), or None when libcurl cannot ask
    that store (then httpx downloads)."""
    if pycurl is None:
        return None
    common: list[tuple[int, Any]] = [(pycurl.SSL_VERIFYPEER, 1), (pycurl.SSL_VERIFYHOST, 2)]
    if ca_file is not None:
        # The configured CA replaces the store, as in Python: no built-in CA path next to it.
        return [*common, (pycurl.CAINFO, str(ca_file)), (pycurl.CAPATH, None)]
    if sys.platform == "win32":  # pragma: no cover - the Windows store, as truststore uses it
        return [*common, (pycurl.SSL_OPTIONS, pycurl.SSLOPT_NATIVE_CA)]
    if sys.platform != "linux":
        return None  # macOS: Keychain, which only truststore (httpx) asks
    # Linux: OpenSSL's CA file and folder, as truststore uses them (SSL_CERT_FILE/DIR honoured).
    import ssl  # (only here: a command that has a CA file does without it)

    paths = ssl.get_default_verify_paths()
    found: list[tuple[int, Any]] = []
    if paths.cafile and os.path.isfile(paths.cafile):
        found.append((pycurl.CAINFO, paths.cafile))
    if paths.capath and os.path.isdir(paths.capath):
        found.append((pycurl.CAPATH, paths.capath))
    return common + found if found else None


def new_handle(session: DavSession, trust: Sequence[tuple[int, Any]]) -> Any:
    """An easy handle that talks to the session's server as the httpx session does: the same
    trust, Basic auth, user agent and connection timeout; no proxy, no redirects, and only the
    session's scheme."""
    assert pycurl is not None
    c = pycurl.Curl()
    endpoint = session.endpoint
    for opt, value in trust:
        if value is None:
            c.unsetopt(opt)
        else:
            c.setopt(opt, value)
    c.setopt(pycurl.HTTPAUTH, pycurl.HTTPAUTH_BASIC)
    c.setopt(pycurl.USERNAME, endpoint.username)
    c.setopt(pycurl.PASSWORD, session.password or "")
    c.setopt(pycurl.USERAGENT, f"m3daemon/{__version__}")
    c.setopt(pycurl.NOSIGNAL, 1)
    c.setopt(pycurl.NOPROXY, "*")  # as the httpx session: never an environment proxy
    c.setopt(pycurl.FOLLOWLOCATION, 0)
    c.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(endpoint.timeout, 15.0) * 1000))
    if session.base_url.startswith("http://"):
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP)
    else:
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTPS)
    return c
