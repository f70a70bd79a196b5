"""Reading what a server sends, with caps: a hostile or broken server must not fill the memory.

A listing and ``forcedPrefs.json`` are read as they arrive and decoded here (gzip or deflate, the
only encodings asked for), at most 1 MiB of output per step, so a compression bomb (0.5 MB of
gzip that becomes gigabytes) is stopped at the cap instead of being inflated whole. Media
downloads are never decoded (``Accept-Encoding: identity``) and are checked against the listed
size instead (``transfer.py``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from m3daemon.errors import ServerError, TooLarge
from m3daemon.i18n import _
from m3daemon.remote.http import DavSession, classify_status

if TYPE_CHECKING:
    import httpx

ACCEPT_ENCODING = "gzip, identity"
# Decoded bytes of one listing answer. A 50,000-entry listing is about 25 MB of XML.
MAX_LISTING_BYTES = 256 * 1024 * 1024
# Text of one XML element (an href, an ETag): names are at most 200 bytes, paths a few hundred.
MAX_TEXT_CHARS = 64 * 1024
# Responses in one listing. A congregation folder holds hundreds to a few thousand files.
MAX_ENTRIES = 100_000
# forcedPrefs.json: M³ writes a few kB.
MAX_SETTINGS_BYTES = 1024 * 1024
# An error page or a web page answering a PROPFIND: only its start is read, never the rest.
MAX_ERROR_BODY = 64 * 1024

_STEP = 1 << 20


def too_large(what: str, limit: int) -> TooLarge:
    return TooLarge(
        _("The server's answer for {what} is larger than {limit} once decoded; m3daemon read no more of it.").format(
            what=what, limit=_mib(limit)),
        _("Nothing was changed locally. If it persists, tell the server's administrator "
          "(a broken or hostile server)."),
    )


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def decoded(resp: httpx.Response, what: str, limit: int,
            count_raw: Callable[[int], None] = lambda n: None) -> Iterator[bytes]:
    """The body of ``resp``, decoded, in chunks of at most 1 MiB; :class:`TooLarge` past ``limit``.

    ``count_raw`` is told the bytes as they came over the network.
    """
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(wbits=47)  # gzip or zlib, told apart by the header
    elif encoding in ("", "identity"):
        inflate = None
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise too_large(what, limit)
    else:
        raise ServerError(
            _("The server sent {what} compressed as {encoding}, which m3daemon did not ask for.").format(
                what=what, encoding=encoding),
            _("Tell the server's administrator; m3daemon asks for gzip or no compression."),
        )
    total = 0
    for raw in resp.iter_raw():
        count_raw(len(raw))
        if inflate is None:
            total += len(raw)
            if total > limit:
                raise too_large(what, limit)
            yield raw
            continue
        try:
            data = inflate.decompress(raw, _STEP)
            while True:
                if data:
                    total += len(data)
                    if total > limit:
                        raise too_large(what, limit)
                    yield data
                if not inflate.unconsumed_tail:
                    break
                data = inflate.decompress(inflate.unconsumed_tail, _STEP)
        except zlib.error as exc:
            raise ServerError(
                _("The server sent {what} with broken compression ({reason}).").format(what=what, reason=exc),
                _("Nothing was changed locally. Try again later; if it persists, tell the server's administrator."),
            ) from exc
    if inflate is not None:
        rest = inflate.flush()
        if total + len(rest) > limit:
            raise too_large(what, limit)
        if rest:
            yield rest


def read_start(resp: httpx.Response, limit: int = MAX_ERROR_BODY) -> bytes:
    """At most ``limit`` raw bytes of an answer we will not use (an error page); the rest is left
    unread (the connection is closed with the response)."""
    got = bytearray()
    for raw in resp.iter_raw():
        got += raw
        if len(got) >= limit:
            break
    return bytes(got[:limit])


def read_small_file(session: DavSession, parts: tuple[str, ...], limit: int) -> bytes:
    """A small control file (``forcedPrefs.json``), read with a cap on its decoded size: a
    compression bomb stops at ``limit`` instead of filling the memory."""
    what = "/".join(parts)

    def read(resp: httpx.Response) -> bytes:
        if resp.status_code != 200:
            read_start(resp)
            raise classify_status(resp, what)
        return b"".join(decoded(resp, what, limit, session.stats.add_bytes))

    return session.fetch("GET", parts, read, headers={"Accept-Encoding": ACCEPT_ENCODING})
