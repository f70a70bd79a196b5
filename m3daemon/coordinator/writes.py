"""Write primitives for the coordinator tools: MKCOL, streamed PUT-then-MOVE, DELETE, markers.

Why not :meth:`DavSession.request` alone: an upload body is a file streamed in 1 MiB chunks (no
size limit from memory, unlike M³'s ~512 MB), which that method cannot send; MOVE and MKCOL are not
idempotent, so it does not retry them (on ``423 Locked`` for instance) while every write here is
safe to repeat (see :meth:`Writer.send`); and a ``401`` on a write must be told apart from a wrong
password. The attempts run through the one retry loop (:mod:`m3daemon.remote.retry`) with the
session's client, policy and error classification.

Rules every write here follows (reference §2, §9.6):

* a collection is created parent first; ``405`` on MKCOL means it exists; any other MKCOL failure is
  checked with ``PROPFIND Depth: 0`` before it counts as an error;
* an upload goes to a hidden temporary name in the target folder, then MOVEs onto the real name with
  ``Overwrite: T``: nobody ever lists a half-uploaded file under its real name;
* DELETE of something already gone (404) is success, so every removal can be repeated.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import httpx

from m3daemon.core.entries import RemoteEntry
from m3daemon.core.methods import READ_METHODS
from m3daemon.errors import (
    FolderNotFoundError,
    LocalFolderError,
    LockedError,
    M3Error,
    ReadOnlyAccountError,
    SourceChanged,
    remedy_for_status,
)
from m3daemon.i18n import _
from m3daemon.remote import retry as retrying
from m3daemon.remote.http import DavSession, classify_status, classify_transport_error
from m3daemon.remote.listing import list_children
from m3daemon.remote.multistatus import PROPFIND_BODY, PROPFIND_HEADERS

log = logging.getLogger(__name__)

Parts = tuple[str, ...]

CHUNK = 1 << 20
# Temporary names start with a dot (our listing model skips them, SPEC "Remote names") and end in
# .part, which is no media extension, so M³ 25+ never shows one.
TEMP_PREFIX = ".m3daemon-upload-"
TEMP_SUFFIX = ".part"
PROBE_PREFIX = ".m3daemon-probe-"
# A temporary file whose server time is older than this is left over from a killed upload (a live
# upload keeps it growing, or only creates it at the end): it is removed when we write its folder.
STALE_AFTER = timedelta(hours=1)


def temp_name() -> str:
    return f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    return name.startswith((TEMP_PREFIX, PROBE_PREFIX))


def read_only_error(what: str) -> ReadOnlyAccountError:
    return ReadOnlyAccountError(
        _("This account may only read; the server refused to change {what}.").format(what=what),
        _("Coordinator tools need an account that may write. Ask the coordinator."),
    )


class Writer:
    """The coordinator's writes to one congregation folder, over one :class:`DavSession`."""

    def __init__(self, session: DavSession, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self._sleep = sleep
        # Set once the server accepted our credentials (any answer but 401): a later 401 on a
        # write then means "read-only account" (Apache and nginx answer 401, not 403).
        self.authenticated = False
        self._dirs: set[Parts] = set()

    # --- requests ------------------------------------------------------------------------

    def send(
        self, method: str, parts: Parts, *, collection: bool = False,
        headers: Mapping[str, str] | None = None, content: bytes | None = None,
        retry_statuses: frozenset[int] | None = None,
    ) -> httpx.Response:
        """One request, retried with back-off on connection failures and on 423/429/502–504.

        Every method here is safe to repeat (PUT to a temporary name, MKCOL, DELETE, MOVE whose lost
        answer is checked afterwards), so unlike :meth:`DavSession.request` MOVE and MKCOL are
        retried too. The last response is returned whatever its status: the caller decides.
        """
        url = self.session.url(parts, collection)

        def attempt(a: retrying.Attempt) -> httpx.Response:
            self.session.stats.count(method)
            resp = self.session.http.request(method, url, headers=headers, content=content)
            self._saw(resp)
            a.check(resp)
            return resp

        return self._retry(method, attempt, f"{method} {url}", statuses=retry_statuses)

    def _retry(
        self, method: str, attempt: Callable[[retrying.Attempt], httpx.Response], describe: str, *,
        statuses: frozenset[int] | None = None, before_retry: Callable[[], None] = lambda: None,
    ) -> httpx.Response:
        return retrying.run(
            self.session.retry, method, attempt, describe=describe, sleep=self._sleep,
            transport_error=lambda exc: classify_transport_error(exc, self.session.base_url),
            safe_to_repeat=True, statuses=statuses, before_retry=before_retry,
        )

    def _saw(self, resp: httpx.Response) -> None:
        if resp.status_code != 401:
            self.authenticated = True

    def fail(self, resp: httpx.Response, what: str) -> M3Error:
        """The error for a response we cannot accept."""
        if resp.status_code == 401 and self.authenticated and resp.request.method not in READ_METHODS:
            return read_only_error(what)
        if resp.status_code == 423:
            return LockedError(
                _("{what} is locked by another client; try again later.").format(what=what),
                remedy_for_status(423),
            )
        return classify_status(resp, what)

    @staticmethod
    def what(parts: Parts) -> str:
        return "/".join(parts) or _("the congregation folder")

    # --- reads ---------------------------------------------------------------------------

    def ensure_authenticated(self) -> None:
        """Make one cheap read first, so that a 401 on a later write is known to mean read-only."""
        if not self.authenticated:
            self.exists((), collection=True, root=True)

    def exists(self, parts: Parts, *, collection: bool = False, root: bool = False) -> bool:
        resp = self.send("PROPFIND", parts, collection=collection,
                         headers={"Depth": "0", **PROPFIND_HEADERS}, content=PROPFIND_BODY)
        if resp.status_code == 207:
            return True
        if resp.status_code == 404 and not root:
            return False
        if resp.status_code == 404:
            raise FolderNotFoundError(
                _("The congregation folder {folder} does not exist on the server.").format(
                    folder=self.session.endpoint.folder_path or "/"),
                _("Check [connection] folder; m3daemon browse lists the server's folders."),
            )
        raise self.fail(resp, self.what(parts))

    def listed_etag(self, parts: Parts) -> str | None:
        """A file's ETag exactly as its folder's listing gives it; None when the server lists no
        tag, or no such file. For servers whose GET sends no ETag (lighttpd)."""
        entries = self.list_dir(parts[:-1]) or []
        return next((e.etag for e in entries if e.parts == parts and not e.is_dir), None)

    def list_dir(self, parts: Parts) -> list[RemoteEntry] | None:
        """Depth-1 listing of a folder below the congregation folder; ``None`` when it is missing."""
        try:
            entries = list_children(self.session, parts)
        except FolderNotFoundError:
            if not parts:
                raise
            self.authenticated = True
            return None
        self.authenticated = True
        return entries

    def get(self, parts: Parts) -> httpx.Response | None:
        """GET a small file; ``None`` when it does not exist."""
        resp = self.send("GET", parts)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.fail(resp, self.what(parts))
        return resp

    # --- writes --------------------------------------------------------------------------

    def ensure_collection(self, parts: Parts) -> None:
        """MKCOL each missing level, parent first (``Media`` before ``Media/<date>``)."""
        self.ensure_authenticated()
        for i in range(1, len(parts) + 1):
            sub = parts[:i]
            if sub in self._dirs:
                continue
            resp = self.send("MKCOL", sub, collection=True)
            status = resp.status_code
            # 409, 301, 500 …: M³ checks whether the folder is there anyway (reference §2).
            if status not in (200, 201, 204, 405) and (
                status in (401, 403, 423) or not self.exists(sub, collection=True)
            ):
                raise self.fail(resp, self.what(sub))
            self._dirs.add(sub)

    def put_small(self, parts: Parts, data: bytes, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """PUT a small body (a marker, forcedPrefs.json); the caller checks the status."""
        self.ensure_authenticated()
        return self.send("PUT", parts, headers=headers, content=data)

    def delete(self, parts: Parts, *, collection: bool = False) -> bool:
        """DELETE; ``False`` when it was already gone (404), which counts as success."""
        self.ensure_authenticated()
        resp = self.send("DELETE", parts, collection=collection)
        if resp.status_code in (200, 202, 204):
            return True
        if resp.status_code == 404:
            return False
        raise self.fail(resp, self.what(parts))

    def upload(
        self, source: Path, folder: Parts, name: str, *, on_bytes: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Stream ``source`` to ``folder/name`` through a temporary name. Returns the size sent."""
        self.ensure_collection(folder)
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise _unreadable(source, exc) from exc
        temp = (*folder, temp_name())
        try:
            self._put_file(source, temp, size, on_bytes)
            self._move(temp, (*folder, name))
        except BaseException:
            self.discard(temp)
            raise
        return size

    def _put_file(self, source: Path, parts: Parts, size: int, on_bytes: Callable[[int], None]) -> None:
        """PUT the file, read afresh for every attempt (a temporary name: safe to repeat)."""
        url = self.session.url(parts)
        sent = _Counter(on_bytes)

        def take_back() -> None:  # what a failed attempt counted is sent again (or not at all)
            on_bytes(-sent.total)
            sent.total = 0

        def attempt(a: retrying.Attempt) -> httpx.Response:
            try:
                with open(source, "rb") as f:
                    self.session.stats.count("PUT")
                    resp = self.session.http.request(
                        "PUT", url, headers={"Content-Length": str(size)}, content=_chunks(f, size, sent),
                    )
            except SourceChanged as exc:
                raise LocalFolderError(
                    _("{path} changed while it was being uploaded.").format(path=source),
                    _("Wait until the file is complete, then run the command again."),
                ) from exc
            except OSError as exc:
                raise _unreadable(source, exc) from exc
            except httpx.TransportError:
                take_back()
                raise
            self._saw(resp)
            if resp.status_code not in (200, 201, 204):
                a.check(resp)
            return resp

        resp = self._retry("PUT", attempt, f"PUT {url}", before_retry=take_back)
        if resp.status_code not in (200, 201, 204):
            raise self.fail(resp, self.what(parts[:-1]))

    def _move(self, source: Parts, target: Parts) -> None:
        # RFC 4918 wants an absolute URL, and Apache insists on it. A server behind a proxy may see
        # another scheme or port and refuse it (WsgiDAV: 502, others 400) while accepting the bare
        # path, so that is tried next, at once: a 502 here is no passing gateway trouble.
        statuses = self.session.retry.statuses
        forms = ((self.session.url(target), statuses - {502}), (self.session.url_path(target), statuses))
        for absolute, (destination, retry) in zip((True, False), forms, strict=True):
            resp = self.send("MOVE", source, headers={"Destination": destination, "Overwrite": "T"},
                             retry_statuses=retry)
            status = resp.status_code
            if status in (200, 201, 204):
                return
            if absolute and status in (400, 502):
                continue
            # A MOVE whose answer was lost and that was sent again finds its source gone
            # (404; rclone says 403): done, if the file is where it should be.
            if status in (403, 404) and not self.exists(source) and self.exists(target):
                return
            raise self.fail(resp, self.what(target))

    def discard(self, parts: Parts) -> None:
        """Best-effort removal of a temporary file; never raises (the stale sweep is the fallback)."""
        try:
            self.session.stats.count("DELETE")
            self.session.http.request("DELETE", self.session.url(parts))
        except Exception as exc:  # noqa: BLE001 - cleaning up after another failure
            log.debug("could not remove %s: %r", "/".join(parts), exc)

    def sweep_stale(self, folder: Parts, now: datetime | None = None) -> int:
        """Remove temporary files of killed uploads from ``folder``. Best effort: never raises."""
        now = now or datetime.now(UTC)
        removed = 0
        try:
            for e in self.list_dir(folder) or []:
                if e.is_dir or not is_temp_name(e.name) or e.modified is None:
                    continue
                modified = e.modified if e.modified.tzinfo else e.modified.replace(tzinfo=UTC)
                if now - modified > STALE_AFTER:
                    self.delete(e.parts)
                    removed += 1
        except M3Error as exc:
            log.debug("could not sweep %s: %s", "/".join(folder), exc)
        return removed

    def honours_if_match(self) -> bool:
        """Whether this server refuses a PUT whose ``If-Match`` does not match (412).

        rclone and nginx ignore ``If-Match`` on PUT, so a read-modify-write there cannot detect a
        concurrent writer. Asked on a hidden scratch file, never on ``forcedPrefs.json``.
        """
        probe = (f"{PROBE_PREFIX}{secrets.token_hex(8)}",)
        resp = self.put_small(probe, b"")
        if resp.status_code not in (200, 201, 204):
            raise self.fail(resp, self.what(()))
        try:
            resp = self.send("PUT", probe, headers={"If-Match": '"m3daemon-no-such-version"'}, content=b"")
            return resp.status_code == 412
        finally:
            self.discard(probe)


class _Counter:
    """Counts the bytes of one attempt, so a retry can take them back from the progress display."""

    def __init__(self, on_bytes: Callable[[int], None]) -> None:
        self.total = 0
        self._on_bytes = on_bytes

    def __call__(self, n: int) -> None:
        self.total += n
        self._on_bytes(n)


def _chunks(f: BinaryIO, size: int, on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``f`` in 1 MiB chunks: memory stays flat whatever the file size."""
    left = size
    while left > 0:
        data = f.read(min(CHUNK, left))
        if not data:
            raise SourceChanged
        left -= len(data)
        on_bytes(len(data))
        yield data
    if f.read(1):
        raise SourceChanged


def _unreadable(path: Path, exc: OSError) -> LocalFolderError:
    return LocalFolderError(
        _("{path} cannot be read: {reason}.").format(path=path, reason=exc.strerror or exc),
        _("Check the file name and its permissions."),
    )
