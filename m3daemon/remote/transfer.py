"""Streamed downloads into a staging file, with resume (``Range`` + ``If-Range``) and checks.

The staging file never has a real name: the executor renames it into place only after this
module has checked its size (and ETag, when the server sends one) and fsync'd it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from m3daemon.core.entries import normalize_etag
from m3daemon.errors import (
    Cancelled,
    DiskFullError,
    InterruptedTransfer,
    LocalFolderError,
    M3Error,
    TransferError,
    UnservableFile,
)
from m3daemon.i18n import _
from m3daemon.local.longpaths import plain_path
from m3daemon.local.safefs import open_existing, open_new, write_new_text
from m3daemon.remote.http import DavSession, classify_status, classify_transport_error
from m3daemon.remote.multistatus import PROPFIND_BODY, PROPFIND_HEADERS

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# Files from this size on get their resume sidecar as soon as their body starts (so a killed
# process resumes them); smaller ones only when their download is interrupted: for a 100 KB
# file, starting again costs less than a sidecar written and removed for every file.
RESUME_SIDECAR_FROM = 1 << 20


class Limiter:
    """One bandwidth limit shared by every download of a sync, in bytes per second.

    Each chunk books its share of time on one clock; a chunk that would run ahead of the limit
    waits (or stops waiting at a cancel). Up to ``burst`` seconds of unused time can be caught
    up, so a short pause does not slow what follows below the limit.
    """

    def __init__(self, bytes_per_s: int, burst: float = 0.25) -> None:
        if bytes_per_s <= 0:
            raise ValueError("a limit must be above 0")
        self.rate = bytes_per_s
        self.burst = burst
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int, cancel: threading.Event | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now - self.burst)
            self._next = start + n / self.rate
            wait = self._next - now
        if wait > 0:
            (cancel or threading.Event()).wait(wait)


def limiter_for(bytes_per_s: int | None) -> Limiter | None:
    """The limiter for a sync: the given limit, else ``M3DAEMON_DOWNLOAD_LIMIT_BPS`` (tests and
    slow shared connections), else none."""
    if not bytes_per_s:
        bytes_per_s = int(os.environ.get("M3DAEMON_DOWNLOAD_LIMIT_BPS", "0") or 0)
    return Limiter(bytes_per_s) if bytes_per_s and bytes_per_s > 0 else None


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    etag: str | None  # normalized ETag of what was received, when the server sent one
    network_bytes: int
    resumed_from: int


def download(
    session: DavSession,
    parts: tuple[str, ...],
    part_file: Path,
    *,
    size: int,
    etag: str | None,
    modified: datetime | None = None,
    on_bytes: Callable[[int], None] = lambda n: None,
    cancel: threading.Event | None = None,
    weak_etag: bool = False,
    limiter: Limiter | None = None,
) -> Downloaded:
    """Fetch ``parts`` into ``part_file``, resuming a previous attempt when it is the same version.

    ``etag`` is the normalized ETag from the listing (``weak_etag``: it was listed as ``W/"…"``).
    A partial file is resumed only when its
    sidecar says it holds that same version and the server agrees through ``If-Range`` (the ETag,
    or the modification date where a server lists no ETag, as nginx does); a server that ignores
    the range or changed the file restarts from zero, never splicing two versions.
    """
    import httpx  # (a download on the httpx session; most go over libcurl, remote/curl_download.py)

    meta_file = resume_sidecar(part_file)
    # If-Range takes only a strong validator (RFC 9110 §13.1.5): a weak ETag is never sent with
    # its W/ stripped (a server rightly refuses that, and every resume restarted from zero);
    # the resume is validated by the Last-Modified date instead, as where no ETag is listed.
    by_date = not etag or weak_etag
    validator = _validator(etag, modified, weak_etag)
    offset = _resumable_offset(part_file, meta_file, validator, size)
    headers: dict[str, str] = {"Accept-Encoding": "identity"}
    if offset and validator:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator
    else:
        _discard(part_file)
    _write_meta(meta_file, validator, size)
    what = "/".join(parts)
    received = 0
    try:
        with session.stream("GET", parts, headers=headers, expect_bytes=size - offset) as resp:
            start = _check_response(resp, offset, what, lambda: _still_listed(session, parts))
            got_etag = normalize_etag(resp.headers.get("ETag"))
            if etag and got_etag and got_etag != etag:
                raise _changed(what)
            if start and by_date and not _same_second(resp.headers.get("Last-Modified"), modified):
                # Resumed on the date alone (no ETag listed, as on nginx): a server that ignores
                # If-Range sends the range of a newer version; its date gives it away.
                raise _changed(what)
            try:
                # Never through a link planted in the staging folder.
                f = open_existing(part_file) if start else open_new(part_file)
            except OSError as exc:
                raise local_error(exc, part_file) from exc
            with f:
                f.seek(start)
                f.truncate()
                pos = start
                for chunk in resp.iter_raw():
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    try:
                        f.write(chunk)
                    except OSError as exc:
                        raise local_error(exc, part_file) from exc
                    n = len(chunk)
                    pos += n
                    received += n
                    session.stats.add_bytes(n)
                    on_bytes(n)
                    if limiter is not None:
                        limiter.take(n, cancel)
                    if pos > size:
                        raise _size_mismatch(what, size, pos)
                if pos != size:
                    raise _size_mismatch(what, size, pos)
                try:
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as exc:
                    raise local_error(exc, part_file) from exc
    except httpx.TransportError as exc:
        # The connection broke mid-body: keep what arrived for the next attempt to resume.
        raise InterruptedTransfer(
            _("The download of {what} was interrupted: {reason}").format(
                what=what, reason=classify_transport_error(exc, session.base_url).message
            ),
            _("The next sync resumes it."),
        ) from exc
    except DiskFullError:
        _discard(part_file)
        raise
    except TransferError:
        # Rejected (wrong size, another version, an odd range): what arrived cannot be the start
        # of the file, so the next attempt must not resume from it.
        _discard(part_file)
        _discard(meta_file)
        raise
    _discard(meta_file)
    return Downloaded(part_file, size, got_etag or etag, received, start)


def _still_listed(session: DavSession, parts: tuple[str, ...]) -> bool:
    """Whether the server still lists ``parts`` (one PROPFIND Depth 0)."""
    try:
        resp = session.request("PROPFIND", parts, headers={"Depth": "0", **PROPFIND_HEADERS}, content=PROPFIND_BODY,
                               ok=(207,))
    except M3Error:
        return False
    return resp.status_code == 207


def _same_second(header: str | None, modified: datetime | None) -> bool:
    """Whether a ``Last-Modified`` header names the listed modification time (or cannot tell)."""
    if not header or modified is None:
        return True
    from email.utils import parsedate_to_datetime  # (a resume by date only: 2 ms of a command's start)

    try:
        sent = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return True
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    return int(sent.timestamp()) == int(modified.timestamp())


def _validator(etag: str | None, modified: datetime | None, weak_etag: bool = False) -> str | None:
    """What ``If-Range`` sends to resume: a strong ETag, else the listed modification date."""
    if etag and not weak_etag:
        return f'"{etag}"'
    from email.utils import format_datetime

    return format_datetime(modified.astimezone(UTC), usegmt=True) if modified else None


def open_staging(part_file: Path, *, resume: bool = False) -> BinaryIO:
    """Open a staging file for writing, never through a link planted in the staging folder;
    ``resume`` keeps what is there (the caller seeks), otherwise it starts empty."""
    return open_existing(part_file) if resume else open_new(part_file)


def resume_sidecar_name(part_name: str) -> str:
    """The name of the sidecar that says which version a partial file ``part_name`` holds."""
    return part_name.rpartition(".")[0] + ".json" if "." in part_name else part_name + ".json"


def resume_sidecar(part_file: Path) -> Path:
    return part_file.with_name(resume_sidecar_name(part_file.name))


def keep_for_resume(
    part_file: Path, etag: str | None, modified: datetime | None, size: int, weak_etag: bool = False
) -> None:
    """Write the sidecar that lets the next attempt resume ``part_file`` (same version only)."""
    validator = _validator(etag, modified, weak_etag)
    if validator:
        _write_meta(resume_sidecar(part_file), validator, size)


def discard_resume(part_file: Path) -> None:
    """Forget that ``part_file`` could be resumed (what it holds is not the start of the file)."""
    _discard(resume_sidecar(part_file))


def _check_response(resp: httpx.Response, offset: int, what: str, still_listed: Callable[[], bool]) -> int:
    """Where the body starts in the file: ``offset`` for a valid 206, else 0."""
    if resp.status_code == 206 and offset:
        crange = resp.headers.get("Content-Range", "")
        if not crange.startswith(f"bytes {offset}-"):
            raise TransferError(
                _("The server answered a resume of {what} with an unexpected range ({range}).").format(
                    what=what, range=crange or "none"
                ),
                _("The next sync downloads it again from the start."),
            )
        return offset
    if resp.status_code == 200:
        return 0
    if resp.status_code == 404:
        # Listed a moment ago. Either deleted or renamed on the server since (it no longer lists
        # it), or a server that lists what it cannot serve: ask which, so the message is true.
        resp.read()
        if still_listed():
            raise unservable(what, 404)
        raise TransferError(
            _("{what} disappeared from the server during the sync.").format(what=what),
            _("Nothing to do: the next sync follows the server's new listing."),
        )
    if resp.status_code == 416:
        raise TransferError(
            _("The server refused to resume {what}.").format(what=what),
            _("The next sync downloads it again from the start."),
        )
    resp.read()
    err = classify_status(resp, what)
    err.server_status = resp.status_code  # type: ignore[attr-defined]  # for "fails every sync"
    raise err


def unservable(what: str, status: int) -> UnservableFile:
    return UnservableFile(
        _("The server lists {what} but answers {status} for it; tell the coordinator.").format(
            what=what, status=status),
        _("The coordinator can upload the file again (or remove it). The other media are in place."),
    )


def _resumable_offset(part_file: Path, meta_file: Path, validator: str | None, size: int) -> int:
    if not validator:
        return 0
    try:
        st = part_file.lstat()
        if not stat.S_ISREG(st.st_mode) or meta_file.is_symlink():
            return 0
        have = st.st_size
        meta = json.loads(meta_file.read_text("utf-8"))
    except (OSError, ValueError):
        return 0
    if meta.get("validator") != validator or meta.get("size") != size or not 0 < have < size:
        return 0
    return have


def _write_meta(meta_file: Path, validator: str | None, size: int) -> None:
    try:
        write_new_text(meta_file, json.dumps({"validator": validator, "size": size}))
    except OSError as exc:
        raise local_error(exc, meta_file) from exc


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def changed_error(what: str) -> TransferError:
    return _changed(what)


def size_error(what: str, expected: int, got: int) -> TransferError:
    return _size_mismatch(what, expected, got)


def _changed(what: str) -> TransferError:
    return TransferError(
        _("{what} changed on the server during the sync.").format(what=what),
        _("The next sync fetches the new version."),
    )


def _size_mismatch(what: str, expected: int, got: int) -> TransferError:
    return TransferError(
        _("{what} arrived with {got} bytes instead of the {expected} the server listed; it was rejected.").format(
            what=what, got=got, expected=expected
        ),
        _("The next sync tries again. If it keeps happening, the file may be changing on the server."),
    )


def local_error(exc: OSError, path: Path) -> M3Error:
    """Translate an OS error on the media folder into a plain-words error."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            _("The disk holding {path} is full.").format(path=path.parent),
            _("Free some space (empty the trash, remove old videos), then update again."),
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LocalFolderError(
            _("m3daemon may not write in {path}.").format(path=path.parent),
            _("Check that the media folder exists, is not read-only and belongs to you."),
        )
    if exc.errno == errno.ENAMETOOLONG:
        if len(path.name.encode("utf-8", "surrogateescape")) > 255:
            return LocalFolderError(
                _("The name {name} is too long for this disk.").format(name=path.name),
                _("Ask the coordinator to use a shorter file name."),
            )
        return LocalFolderError(
            _("The path {path} is too long for this computer ({n} characters).").format(
                path=plain_path(str(path)), n=len(plain_path(str(path)))),
            _("Choose a media folder with a shorter path (for example D:\\Media or ~/Media), "
              "or ask the coordinator to use shorter file names."),
        )
    return LocalFolderError(
        _("Writing {path} failed: {reason}.").format(path=path, reason=exc.strerror or exc),
        _("Check the media folder and the disk."),
    )
