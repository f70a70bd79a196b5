"""Experiment-only patches of m3daemon, applied inside one benchmark process (never shipped).

``drain(True)`` makes ``m3daemon.engine.sync.open_session`` build its DavSession on
:class:`draining.DrainingTransport` -- the change proposed for m3daemon/remote/http.py
(``DavSession.__init__``: pass ``transport=DrainingTransport(ssl_context=..., max_connections=...)``
to ``httpx.Client``). Everything else in m3daemon runs unchanged.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datetime import UTC

from draining import DrainingTransport


def _draining_session_class() -> Any:
    from m3daemon.remote.http import DavSession, tls_context

    class DrainingDavSession(DavSession):
        def __init__(self, endpoint: Any, password: str, **kwargs: Any) -> None:
            kwargs.setdefault("transport", DrainingTransport(
                ssl_context=tls_context(endpoint.ca_file), max_connections=kwargs.get("max_connections", 6),
            ))
            super().__init__(endpoint, password, **kwargs)

    return DrainingDavSession


@contextlib.contextmanager
def drain(on: bool = True) -> Iterator[None]:
    if not on:
        yield
        return
    from m3daemon.engine import sync

    saved = sync.DavSession
    sync.DavSession = _draining_session_class()
    try:
        yield
    finally:
        sync.DavSession = saved


# --- the download path on pycurl (experiment (b)) ----------------------------------------------


def _pycurl_download_function(direct: bool = False, lean: bool = False) -> Any:
    """A stand-in for ``m3daemon.remote.transfer.download`` with the same contract (resume with
    Range + If-Range from the sidecar, status and Content-Range checks, ETag check, size check,
    progress and cancel per chunk, fsync) but the HTTP exchange done by libcurl through pycurl,
    one reused easy handle (keep-alive connection) per worker thread.

    ``direct``: a fresh download (no resume) goes straight into the open file (WRITEDATA, so
    libcurl calls the C ``write`` method, no Python frame per chunk) with a 256 KiB receive
    buffer; status, ETag and size are checked when it is done (a wrong status discards the file).
    ``lean``: no sidecar file and no unlink before a fresh download; the sidecar (what a resume
    needs) is written only when the transfer is interrupted."""
    import os
    import threading

    import pycurl

    from m3daemon.core.entries import normalize_etag
    from m3daemon.remote import transfer as t
    from m3daemon.remote.http import classify_status  # noqa: F401  (same module the real one uses)

    local = threading.local()

    def handle(session: Any) -> Any:
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = pycurl.Curl()
            if session.endpoint.ca_file:
                c.setopt(pycurl.CAINFO, str(session.endpoint.ca_file))
            c.setopt(pycurl.USERPWD, f"{session.endpoint.username}:{os.environ['M3DAEMON_PASSWORD']}")
            c.setopt(pycurl.NOSIGNAL, 1)
            c.setopt(pycurl.CONNECTTIMEOUT, 15)
            c.setopt(pycurl.LOW_SPEED_LIMIT, 1)
            c.setopt(pycurl.LOW_SPEED_TIME, int(session.endpoint.timeout))
        return c

    def download(session: Any, parts: tuple[str, ...], part_file: Any, *, size: int, etag: str | None,
                 modified: Any = None, on_bytes: Any = lambda n: None, cancel: Any = None) -> Any:
        from email.utils import format_datetime

        meta_file = part_file.with_suffix(".json")
        validator = f'"{etag}"' if etag else (
            format_datetime(modified.astimezone(UTC), usegmt=True) if modified else None)
        offset = t._resumable_offset(part_file, meta_file, validator, size)
        headers = ["Accept-Encoding: identity"]
        if offset and validator:
            headers += [f"Range: bytes={offset}-", f"If-Range: {validator}"]
        elif not lean:
            t._discard(part_file)
        if not lean or offset:
            t._write_meta(meta_file, validator, size)
        what = "/".join(parts)
        c = handle(session)
        resp_headers: dict[str, str] = {}
        state: dict[str, Any] = {"f": None, "pos": 0, "start": 0, "received": 0, "error": None, "status": 0}

        def on_header(line: bytes) -> None:
            text = line.decode("iso-8859-1").strip()
            if text.startswith("HTTP/"):
                resp_headers.clear()
                bits = text.split()
                state["status"] = int(bits[1]) if len(bits) > 1 and bits[1].isdigit() else 0
            elif ":" in text:
                k, v = text.split(":", 1)
                resp_headers[k.strip().lower()] = v.strip()

        def on_body(chunk: bytes) -> int | None:
            if state["f"] is None:
                status = state["status"]
                if status == 206 and offset:
                    if not resp_headers.get("content-range", "").startswith(f"bytes {offset}-"):
                        state["error"] = t.TransferError(f"unexpected range for {what}", "")
                        return 0
                    start = offset
                elif status == 200:
                    start = 0
                else:
                    state["error"] = t.TransferError(f"{what}: status {status}", "")
                    return 0
                got = normalize_etag(resp_headers.get("etag"))
                if etag and got and got != etag:
                    state["error"] = t._changed(what)
                    return 0
                f = open(part_file, "r+b" if start else "wb")  # noqa: SIM115
                f.seek(start)
                f.truncate()
                state.update(f=f, pos=start, start=start)
            if cancel is not None and cancel.is_set():
                state["error"] = t.Cancelled()
                return 0
            state["f"].write(chunk)
            n = len(chunk)
            state["pos"] += n
            state["received"] += n
            session.stats.add_bytes(n)
            on_bytes(n)
            if state["pos"] > size:
                state["error"] = t._size_mismatch(what, size, state["pos"])
                return 0
            return None

        c.setopt(pycurl.URL, session.url(parts))
        c.setopt(pycurl.HTTPHEADER, headers)
        c.setopt(pycurl.HEADERFUNCTION, on_header)
        c.setopt(pycurl.MAXFILESIZE, size)
        session.stats.count("GET")
        if direct and not offset:
            return _direct(c, session, part_file, meta_file, validator, size, etag, what, state, resp_headers,
                           on_bytes, lean)
        c.setopt(pycurl.WRITEFUNCTION, on_body)
        try:
            try:
                c.perform()
            except pycurl.error as exc:
                if state["error"] is not None:
                    raise state["error"] from None
                if lean:
                    t._write_meta(meta_file, validator, size)
                raise t.InterruptedTransfer(f"The download of {what} was interrupted: {exc}", "") from exc
            f = state["f"]
            if f is None:
                raise t.TransferError(f"{what}: status {c.getinfo(pycurl.RESPONSE_CODE)}", "")
            if state["pos"] != size:
                raise t._size_mismatch(what, size, state["pos"])
            f.flush()
            os.fsync(f.fileno())
        finally:
            if state["f"] is not None:
                state["f"].close()
        t._discard(meta_file)
        return t.Downloaded(part_file, size, normalize_etag(resp_headers.get("etag")) or etag,
                            state["received"], state["start"])

    def _direct(c: Any, session: Any, part_file: Any, meta_file: Any, validator: Any, size: int,
                etag: str | None, what: str, state: dict[str, Any], resp_headers: dict[str, str],
                on_bytes: Any, lean: bool) -> Any:
        f = open(part_file, "wb")  # noqa: SIM115
        try:
            c.setopt(pycurl.WRITEDATA, f)
            c.setopt(pycurl.BUFFERSIZE, 256 * 1024)
            try:
                c.perform()
            except pycurl.error as exc:
                if lean:
                    t._write_meta(meta_file, validator, size)
                raise t.InterruptedTransfer(f"The download of {what} was interrupted: {exc}", "") from exc
            status = state["status"]
            got = normalize_etag(resp_headers.get("etag"))
            if status != 200:
                raise t.TransferError(f"{what}: status {status}", "")
            if etag and got and got != etag:
                raise t._changed(what)
            pos = f.tell()
            session.stats.add_bytes(pos)
            on_bytes(pos)
            if pos != size:
                raise t._size_mismatch(what, size, pos)
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        if not lean:
            t._discard(meta_file)
        return t.Downloaded(part_file, size, got or etag, size, 0)

    return download


@contextlib.contextmanager
def pycurl_downloads(on: bool = True, *, direct: bool = False, lean: bool = False) -> Iterator[None]:
    if not on:
        yield
        return
    from m3daemon.engine import executor

    saved = executor.download
    executor.download = _pycurl_download_function(direct=direct, lean=lean)
    try:
        yield
    finally:
        executor.download = saved


# --- local per-file costs ---------------------------------------------------------------------


@contextlib.contextmanager
def record_wal(on: bool = True) -> Iterator[None]:
    """The record's SQLite in WAL mode with synchronous=NORMAL (proposed for m3daemon/record.py
    ``Record.__init__``): each ``note_pending`` autocommit then appends to the WAL without an
    fsync, instead of creating, syncing and deleting a rollback journal."""
    if not on:
        yield
        return
    from m3daemon.local.record import Record

    saved = Record.__init__

    def init(self: Any, db_path: Any) -> None:
        saved(self, db_path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")

    Record.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        Record.__init__ = saved  # type: ignore[method-assign]


@contextlib.contextmanager
def workers(n: int | None) -> Iterator[None]:
    """The executor's download workers (m3daemon/executor.py ``Executor(workers=3)``)."""
    if n is None:
        yield
        return
    import functools

    from m3daemon.engine import sync

    saved = sync.Executor
    sync.Executor = functools.partial(saved, workers=n)  # type: ignore[misc]
    try:
        yield
    finally:
        sync.Executor = saved


@contextlib.contextmanager
def raw_chunks(on: bool = True) -> Iterator[None]:
    """``resp.iter_raw()`` instead of ``iter_raw(1 MiB)`` in m3daemon/remote/transfer.py
    ``download`` (CHUNK = None): with the draining transport the pieces are <= 1 MiB already, and
    httpx's re-chunking to exactly 1 MiB costs three more copies of every byte."""
    if not on:
        yield
        return
    from m3daemon.remote import transfer

    saved = transfer.CHUNK
    transfer.CHUNK = None  # type: ignore[assignment]
    try:
        yield
    finally:
        transfer.CHUNK = saved


# --- all downloads in one thread on pycurl.CurlMulti (what curl --parallel does) ----------------


def _multi_pool_class(parallel: int) -> Any:
    """A stand-in for the ThreadPoolExecutor in m3daemon/executor.py ``Executor.run``.

    ``submit(self._fetch, action)`` does not start a thread: it queues the action. ``result()``
    of its future drives one ``pycurl.CurlMulti`` (``parallel`` transfers at a time, each body
    written by libcurl straight into its staging file, status/ETag/size checked when done, fsync)
    until that action's file has arrived, then calls the executor's own ``_place`` -- the same
    tail as ``Executor._fetch``. So downloads overlap with each other and with the placing of
    finished files, and no two Python threads compete for the GIL. Experiment only: no resume,
    no retry (the benchmark has no faults)."""
    import collections
    import os
    from concurrent.futures import Future

    import pycurl

    from m3daemon.core.entries import normalize_etag
    from m3daemon.engine.executor import _staging_name
    from m3daemon.remote import transfer as t

    class Job(Future):  # type: ignore[type-arg]
        def __init__(self, engine: Any, ex: Any, action: Any) -> None:
            super().__init__()
            self.engine, self.ex, self.action = engine, ex, action
            self.part = ex.staging / (_staging_name(action.remote.parts) + ".part")
            self.status = 0
            self.etag: str | None = None
            self.error: BaseException | None = None
            self.finished = False
            self.placed = False

        def result(self, timeout: float | None = None) -> Any:
            if not self.placed:
                self.placed = True
                self.engine.drive_until(self)
                if self.error is not None:
                    self.set_exception(self.error)
                else:
                    a = self.action
                    try:
                        self.set_result(self.ex._place(self.part, a.target, a.existing, a.remote.version,
                                                       "/".join(a.remote.parts), a.remote.modified))
                    except BaseException as exc:  # noqa: BLE001
                        self.set_exception(exc)
            return super().result(timeout)

    class Engine:
        def __init__(self) -> None:
            self.multi = pycurl.CurlMulti()
            self.free: list[Any] = []
            self.queue: collections.deque[Job] = collections.deque()
            self.active: dict[int, tuple[Any, Job, Any]] = {}

        def handle(self, session: Any) -> Any:
            if self.free:
                return self.free.pop()
            c = pycurl.Curl()
            if session.endpoint.ca_file:
                c.setopt(pycurl.CAINFO, str(session.endpoint.ca_file))
            c.setopt(pycurl.USERPWD, f"{session.endpoint.username}:{os.environ['M3DAEMON_PASSWORD']}")
            c.setopt(pycurl.NOSIGNAL, 1)
            c.setopt(pycurl.BUFFERSIZE, 256 * 1024)
            c.setopt(pycurl.HTTPHEADER, ["Accept-Encoding: identity"])
            return c

        def start(self, job: Job) -> None:
            session = job.ex.session
            c = self.handle(session)
            f = open(job.part, "wb")  # noqa: SIM115

            def on_header(line: bytes) -> None:
                text = line.decode("iso-8859-1").strip()
                if text.startswith("HTTP/"):
                    bits = text.split()
                    job.status = int(bits[1]) if len(bits) > 1 and bits[1].isdigit() else 0
                elif text[:5].lower() == "etag:":
                    job.etag = normalize_etag(text[5:].strip())

            c.setopt(pycurl.URL, session.url(job.action.remote.parts))
            c.setopt(pycurl.WRITEDATA, f)
            c.setopt(pycurl.HEADERFUNCTION, on_header)
            c.setopt(pycurl.MAXFILESIZE, job.action.remote.size)
            session.stats.count("GET")
            self.multi.add_handle(c)
            self.active[id(c)] = (c, job, f)

        def finish(self, c: Any, errmsg: str | None) -> None:
            _c, job, f = self.active.pop(id(c))
            self.multi.remove_handle(c)
            self.free.append(c)
            a = job.action
            what = "/".join(a.remote.parts)
            try:
                size = f.tell()
                if errmsg is not None:
                    raise t.InterruptedTransfer(f"The download of {what} was interrupted: {errmsg}", "")
                if job.status != 200:
                    raise t.TransferError(f"{what}: status {job.status}", "")
                if a.remote.etag and job.etag and job.etag != a.remote.etag:
                    raise t._changed(what)
                if size != a.remote.size:
                    raise t._size_mismatch(what, a.remote.size, size)
                f.flush()
                os.fsync(f.fileno())
                job.ex.session.stats.add_bytes(size)
                job.ex.progress.add_bytes(size)
            except BaseException as exc:  # noqa: BLE001
                job.error = exc
            finally:
                f.close()
                job.finished = True

        def drive_until(self, job: Job) -> None:
            m = self.multi
            while not job.finished:
                while self.queue and len(self.active) < parallel:
                    self.start(self.queue.popleft())
                while True:
                    ret, _running = m.perform()
                    if ret != pycurl.E_CALL_MULTI_PERFORM:
                        break
                while True:
                    queued, ok, failed = m.info_read()
                    for c in ok:
                        self.finish(c, None)
                    for c, _errno, msg in failed:
                        self.finish(c, msg)
                    if not queued:
                        break
                if job.finished:
                    break
                if self.active:
                    wait_ms = m.timeout()
                    if wait_ms != 0:
                        m.select(1.0 if wait_ms < 0 else min(wait_ms, 1000) / 1000)

        def close(self) -> None:
            for c in self.free:
                c.close()
            self.multi.close()

    class MultiPool:
        def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "") -> None:
            self.engine = Engine()
            self.jobs: list[Job] = []

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            for job in self.jobs:
                if not job.placed:
                    try:
                        job.result()
                    except BaseException:  # noqa: BLE001, S110
                        pass
            self.engine.close()

        def submit(self, fn: Any, action: Any) -> Job:
            job = Job(self.engine, fn.__self__, action)
            self.engine.queue.append(job)
            self.jobs.append(job)
            return job

    return MultiPool


@contextlib.contextmanager
def multi_downloads(on: bool = True, parallel: int = 3) -> Iterator[None]:
    if not on:
        yield
        return
    from m3daemon.engine import executor

    saved = executor.ThreadPoolExecutor
    executor.ThreadPoolExecutor = _multi_pool_class(parallel)  # type: ignore[misc]
    try:
        yield
    finally:
        executor.ThreadPoolExecutor = saved


@contextlib.contextmanager
def walk_window_only(on: bool = True, days_ahead: int = 14) -> Iterator[None]:
    """The Depth-1 walk lists only the date folders inside the sync window (and Recurring), not
    every past and far-future date folder (m3daemon/remote/listing.py ``_worth_walking``; the real
    change would pass the window into ``list_tree``)."""
    if not on:
        yield
        return
    from datetime import date, timedelta

    from m3daemon.core.dates import parse_folder_date
    from m3daemon.remote import listing

    saved = listing._worth_walking
    today = date.today()
    end = today + timedelta(days=days_ahead)

    def worth(parts: tuple[str, ...]) -> bool:
        if parts[0] not in ("Media", "Hidden"):
            return False
        if len(parts) == 1 or parts[1] == "Recurring":
            return True
        parsed = parse_folder_date(parts[1])
        return parsed is not None and today <= parsed[0] <= end

    listing._worth_walking = worth
    try:
        yield
    finally:
        listing._worth_walking = saved
