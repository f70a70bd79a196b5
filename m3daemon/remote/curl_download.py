"""Fresh downloads on libcurl: one ``CurlMulti`` drives every new download of a sync from one thread.

This module does only the fast, common case: a new file, fetched whole, written by libcurl
straight into its staging file, its status, size and ETag checked when it is done. Anything else
is handed back to the caller, which runs :func:`m3daemon.remote.transfer.download` (httpx):
resumes, retries, back-off and the plain-words error for each failure stay in one place. A body
broken mid-way keeps what arrived and a resume sidecar, so that hand-over resumes it.

Progress, cancellation, the bandwidth limit and a stall timeout work as on the httpx path, and
nothing is put under a real name: the caller fsyncs and renames after this module has checked the
file. The handles' trust, auth and timeouts are ``remote/curl.py``'s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from m3daemon.core.entries import normalize_etag
from m3daemon.errors import Cancelled
from m3daemon.remote.curl import SELECT_MAX, new_handle, trust_options, wait_for_sockets
from m3daemon.remote.http import MIN_RATE, DavSession
from m3daemon.remote.retry import RETRY_STATUSES, parse_retry_after
from m3daemon.remote.transfer import (
    RESUME_SIDECAR_FROM,
    Limiter,
    changed_error,
    discard_resume,
    keep_for_resume,
    open_staging,
    size_error,
)

try:  # pragma: no branch - an optional native dependency
    import pycurl
except ImportError:  # pragma: no cover - httpx does every download then
    pycurl = None

log = logging.getLogger(__name__)

BUFFER = 256 * 1024  # libcurl's receive buffer: one write per 256 KiB instead of one per TLS record
# The first bytes of the header lines on_header reads: ETag, Retry-After, the status line, the end
_HEADERS_READ = frozenset((b"E", b"e", b"R", b"r", b"H", b"\r", b"\n"))


@dataclass
class Job:
    """One fresh download: ``parts`` on the server into ``part_file`` (a staging name)."""

    parts: tuple[str, ...]
    part_file: Path
    size: int
    etag: str | None
    modified: datetime | None
    key: object = None  # the caller's, handed back with the result
    weak_etag: bool = False  # listed as W/"…": a resume is validated by the date instead
    # filled in while it runs
    file: IO[bytes] | None = field(default=None, repr=False)
    counted: int = 0
    status: int = 0
    etag_seen: str | None = None
    retry_after: str | None = None
    active_at: float = 0.0  # when the last header or byte arrived (the stall timeout)
    headers: list[bytes] | None = field(default=None, repr=False)  # a small file's, read at its end
    deadline: float = 0.0  # the request's overall deadline (monotonic), as on the httpx path
    synced: bool = False  # arrived checked and flushed to disk (MultiDownloader.sync_arrived)


# A job handed back: None = the file arrived complete and checked (the caller fsyncs and places
# it); otherwise why the caller must take it over, and whether a broken body was kept to resume.
@dataclass(frozen=True)
class HandBack:
    reason: str
    interrupted: bool = False
    # the server asked to come back later (423, 429, 502-504): after this pause (Retry-After)
    busy: bool = False
    retry_after: float | None = None
    # the answer was complete but wrong (size, version): this error, without another try
    final: Exception | None = None


def _read_header(job: Job, line: bytes) -> None:
    """What a download needs from one header line: the status, the ETag, Retry-After."""
    if line[:1] not in _HEADERS_READ:
        return  # (most header lines: nothing read from them)
    if line[:5].lower() == b"etag:":
        job.etag_seen = normalize_etag(line[5:].decode("latin-1").strip())
    elif line[:12].lower() == b"retry-after:":
        job.retry_after = line[12:].decode("latin-1").strip()
    elif line[:5] == b"HTTP/":
        # a new response (after a 100 or an auth round)
        bits = line.split()
        job.status = int(bits[1]) if len(bits) > 1 and bits[1].isdigit() else 0
        job.etag_seen = None


def _read_kept_headers(job: Job) -> None:
    """What :func:`_read_header` reads, from a small file's kept lines at once: joined, lowered
    and searched in a few C calls instead of a Python call per line. Only the last response
    counts (one after a 100 or an auth round): a header name holds no ``/``, so a line that
    starts with ``http/`` is a status line."""
    lines, job.headers = job.headers, None
    if not lines:
        return
    block = b"".join(lines)
    low = block.lower()
    start = low.rfind(b"\nhttp/") + 1
    if low.startswith(b"http/", start):
        bits = block[start:low.find(b"\n", start)].split()
        job.status = int(bits[1]) if len(bits) > 1 and bits[1].isdigit() else 0
        job.etag_seen = None
    etag = _header_value(block, low, b"\netag:", start)
    if etag is not None:
        job.etag_seen = normalize_etag(etag)
    retry_after = _header_value(block, low, b"\nretry-after:", start)
    if retry_after is not None:
        job.retry_after = retry_after


def _header_value(block: bytes, low: bytes, name: bytes, start: int) -> str | None:
    """The value of the last ``name`` header line after ``start`` (``name`` lowered, with the
    newline before it), or None."""
    at = low.rfind(name, start)
    if at < 0:
        return None
    at += len(name)
    end = low.find(b"\n", at)
    return block[at:end if end >= 0 else len(block)].decode("latin-1").strip()


class MultiDownloader:
    """Runs fresh downloads ``parallel`` at a time on one ``CurlMulti`` in the calling thread."""

    def __init__(
        self, session: DavSession, trust: Sequence[tuple[int, Any]], *, parallel: int = 3,
        on_bytes: Callable[[int], None] = lambda n: None, cancel: threading.Event | None = None,
        limiter: Limiter | None = None, on_start: Callable[[Job], None] = lambda job: None,
    ) -> None:
        assert pycurl is not None
        self.on_start = on_start  # a job's transfer begins (the progress label names files in flight)
        self.session = session
        self.trust = list(trust)
        self.parallel = max(1, parallel)
        self.on_bytes = on_bytes
        self.cancel = cancel or threading.Event()
        self.limiter = limiter
        self.stall = session.endpoint.timeout
        self._free: list[Any] = []
        # Set by the caller once flushes proved cheap (tmpfs, a fast SSD): each file that arrived
        # checked is flushed to disk before it is closed (Job.synced), which spares reopening it.
        self.sync_arrived = False
        self.on_turn: Callable[[], None] = lambda: None  # called at each turn of the loop

    @classmethod
    def for_session(cls, session: DavSession, **kwargs: Any) -> MultiDownloader | None:
        """The fast path for this session, or None when libcurl cannot download with the same
        guarantees here (pycurl missing, no trust store it can use, no password)."""
        if pycurl is None or os.environ.get("M3DAEMON_NO_CURL"):
            return None
        trust = trust_options(session.endpoint.ca_file)
        if trust is None or session.password is None:
            log.debug("downloads on httpx: libcurl has no trust store to verify with here")
            return None
        log.debug("new files are downloaded on libcurl (%s)", pycurl.version)
        return cls(session, trust, **kwargs)

    def run(self, jobs: Sequence[Job], done: Callable[[Job, HandBack | None], None]) -> None:
        """Download ``jobs``; call ``done(job, None)`` for each that arrived complete and checked,
        ``done(job, HandBack(...))`` for each the caller must take over. Raises Cancelled."""
        assert pycurl is not None
        queue = deque(jobs)
        multi = pycurl.CurlMulti()
        active: dict[int, tuple[Any, Job]] = {}
        try:
            while queue or active:
                if self.cancel.is_set():
                    raise Cancelled
                while queue and len(active) < self.parallel:
                    job = queue.popleft()
                    self.on_start(job)
                    handle = self._start(job, done)
                    if handle is not None:
                        multi.add_handle(handle)
                        active[id(handle)] = (handle, job)
                while True:
                    ret, running = multi.perform()
                    if ret != pycurl.E_CALL_MULTI_PERFORM:
                        break
                while True:
                    left, ok, failed = multi.info_read()
                    for handle in ok:
                        self._finish(multi, active, handle, None, done)
                    for handle, code, message in failed:
                        self._finish(multi, active, handle, f"{message} (libcurl {code})", done)
                    if not left:
                        break
                self.on_turn()
                self._check_progress(multi, active, time.monotonic(), done)
                if running and not self.cancel.is_set():
                    wait_for_sockets(multi, min(SELECT_MAX, self.stall / 4))
        finally:
            for handle, job in list(active.values()):
                multi.remove_handle(handle)
                _read_kept_headers(job)
                self._count(handle, job)
                self._close(job, keep=job.status == 200)
                handle.close()
            for handle in self._free:
                handle.close()
            self._free.clear()
            multi.close()


    def _check_progress(
        self, multi: Any, active: dict[int, tuple[Any, Job]], now: float,
        done: Callable[[Job, HandBack | None], None],
    ) -> None:
        """Count the bytes of each transfer (progress, the bandwidth figures) and give up one
        that stalled or ran past its deadline."""
        for handle, job in list(active.values()):
            self._count(handle, job)
            if now - job.active_at > self.stall:
                # Nothing for the timeout: as httpx's read timeout, the transfer is given up.
                self._finish(multi, active, handle, "the server did not answer in time", done)
            elif now > job.deadline:
                # A server that drips the file past every read timeout ([connection]
                # request_deadline_seconds, plus the size at MIN_RATE).
                self._finish(multi, active, handle, "the download took too long", done)

    # --- one transfer ------------------------------------------------------------------------

    def _handle(self) -> Any:
        """A reused easy handle: its connection (and TLS session) stays alive for the next file."""
        assert pycurl is not None
        if self._free:
            return self._free.pop()
        c = new_handle(self.session, self.trust)
        c.setopt(pycurl.HTTPHEADER, ["Accept-Encoding: identity"])
        # (No byte for `timeout` seconds is a stall: checked in run(), to the tenth of a second.)
        c.setopt(pycurl.BUFFERSIZE, BUFFER)
        return c

    def _start(self, job: Job, done: Callable[[Job, HandBack | None], None]) -> Any:
        assert pycurl is not None
        try:
            job.file = open_staging(job.part_file)
        except Exception as exc:  # noqa: BLE001 - the httpx path reports it in plain words
            done(job, HandBack(str(exc)))
            return None
        c = self._handle()
        c.setopt(pycurl.URL, self.session.url(job.parts))
        c.setopt(pycurl.MAXFILESIZE_LARGE, job.size)

        def on_header(line: bytes) -> None:
            job.active_at = time.monotonic()
            _read_header(job, line)
            if line in (b"\r\n", b"\n") and job.status == 200:
                # The body of the listed file starts: large enough to be worth resuming after a
                # kill, so its sidecar is written now (an error page never gets one).
                try:
                    keep_for_resume(job.part_file, job.etag, job.modified, job.size, job.weak_etag)
                except Exception as exc:  # noqa: BLE001 - without it the next run starts again
                    log.debug("no resume sidecar for %s: %s", job.part_file, exc)

        if job.size >= RESUME_SIDECAR_FROM:
            c.setopt(pycurl.HEADERFUNCTION, on_header)
        else:
            # A small file: its header lines are only kept (a C call, no Python frame each) and
            # read once it has ended. Its stall clock runs on the bytes of its body.
            job.headers = []
            c.setopt(pycurl.HEADERFUNCTION, job.headers.append)
        file = job.file
        if self.limiter is None:
            c.setopt(pycurl.WRITEDATA, file)  # libcurl calls the file's C write: no Python per chunk
        else:
            limiter, cancel = self.limiter, self.cancel

            def write(data: bytes) -> None:
                file.write(data)
                limiter.take(len(data), cancel)  # one thread: this paces every transfer at once

            c.setopt(pycurl.WRITEFUNCTION, write)
        job.counted = job.status = 0
        job.active_at = time.monotonic()
        endpoint = self.session.endpoint
        job.deadline = job.active_at + endpoint.deadline + job.size / MIN_RATE
        self.session.stats.count("GET")
        return c

    def _count(self, handle: Any, job: Job) -> None:
        assert pycurl is not None
        got = int(handle.getinfo(pycurl.SIZE_DOWNLOAD_T))
        if got > job.counted:
            self.session.stats.add_bytes(got - job.counted)
            self.on_bytes(got - job.counted)
            job.counted = got
            job.active_at = time.monotonic()

    def _finish(
        self, multi: Any, active: dict[int, tuple[Any, Job]], handle: Any, error: str | None,
        done: Callable[[Job, HandBack | None], None],
    ) -> None:
        assert pycurl is not None
        _h, job = active.pop(id(handle))
        multi.remove_handle(handle)
        _read_kept_headers(job)
        self._count(handle, job)
        status = int(handle.getinfo(pycurl.RESPONSE_CODE))
        self._free.append(handle)
        assert job.file is not None
        try:
            job.file.flush()
            arrived = job.file.tell()
        except OSError as exc:
            # The last bytes did not reach the disk (it is full): never a short file placed.
            error = error or f"writing the staging file: {exc}"
            arrived = os.fstat(job.file.fileno()).st_size
        verdict: HandBack | None = None
        what = "/".join(job.parts)
        if error is not None:
            broken = status == 200 and 0 < arrived < job.size
            verdict = HandBack(error, interrupted=broken)
        elif status in RETRY_STATUSES:
            verdict = HandBack(f"status {status}", busy=True, retry_after=parse_retry_after(job.retry_after))
        elif status != 200:
            verdict = HandBack(f"status {status}")  # httpx asks again and names the problem
        elif job.etag and job.etag_seen and job.etag_seen != job.etag:
            verdict = HandBack("another version than listed", final=changed_error(what))
        elif arrived != job.size:
            verdict = HandBack("wrong size", final=size_error(what, job.size, arrived))
        if verdict is None and self.sync_arrived:
            try:
                os.fsync(job.file.fileno())
                job.synced = True
            except OSError as exc:  # the caller flushes it again, and names the problem
                log.debug("flushing %s: %s", job.part_file, exc)
        self._close(job, keep=verdict is not None and verdict.interrupted)
        if verdict is not None:
            log.debug("%s handed to the httpx path: %s", "/".join(job.parts), verdict.reason)
        done(job, verdict)

    def _close(self, job: Job, *, keep: bool) -> None:
        """Close the staging file. With ``keep``, what arrived stays with a sidecar to resume;
        without, no sidecar stays either (a wrong body must never be resumed from)."""
        if job.file is None:
            return
        try:
            job.file.close()
        except OSError as exc:
            log.debug("closing %s: %s", job.part_file, exc)
        job.file = None
        try:
            if not keep:
                if job.size >= RESUME_SIDECAR_FROM:
                    discard_resume(job.part_file)
            elif job.size < RESUME_SIDECAR_FROM:  # (a large file's was written as its body began)
                keep_for_resume(job.part_file, job.etag, job.modified, job.size, job.weak_etag)
        except Exception as exc:  # noqa: BLE001 - without a sidecar it simply starts again
            log.debug("resume sidecar of %s: %s", job.part_file, exc)
