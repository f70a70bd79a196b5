"""Carry out a plan on the media folder, atomically, file by file.

Every file reaches its real name by one ``os.replace`` from the staging folder
``<media>/.m3daemon/staging`` (same filesystem, no date in its name, so M³'s watcher never sees a
half-written file). Deletions and moves to the trash are ``engine/removals.py``.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from m3daemon.core.layout import STAGING_DIR
from m3daemon.core.m3 import replace_pause as m3_replace_pause
from m3daemon.core.planner import Copy, Delete, Existing, Fetch, LocalFile, Placed, Plan, RemoveDir, Trash
from m3daemon.engine.removals import delete_one, remove_empty_dirs, trash_one
from m3daemon.engine.results import Outcome, Progress
from m3daemon.engine.staging import (
    hide_on_windows,
    in_use,
    keep_waiting,
    on_time_grid,
    ready_name,
    ready_paths,
    send_to_trash,
    staging_name,
    stat_or_none,
    unlink_quiet,
    volume_of,
    waiting_file,
    waiting_targets,
)
from m3daemon.engine.swaps import Swap, Swaps
from m3daemon.errors import (
    Cancelled,
    CredentialsError,
    DiskFullError,
    FileInUse,
    InterruptedTransfer,
    LocalFolderError,
    M3Error,
    NotEnoughSpace,
    UnservableFile,
)
from m3daemon.i18n import _
from m3daemon.local.longpaths import VolumeTraits
from m3daemon.local.record import Record
from m3daemon.local.safefs import (
    check_no_link,
    is_link,
    linked_folder_error,
    open_new,
)
from m3daemon.local.space import SpaceBudget
from m3daemon.remote.http import DavSession
from m3daemon.remote.transfer import Limiter, download, local_error, resume_sidecar_name, unservable

log = logging.getLogger(__name__)

# Free space: the reserve and the order files claim it in are m3daemon/local/space.py.
# Files that arrived on libcurl are flushed and placed by the worker pool, where flushes run in
# parallel (a disk's fsync takes milliseconds); once the first FSYNC_SAMPLE flushes took under
# CHEAP_FSYNC on average (tmpfs, a fast SSD), the transfer thread places them itself.
FSYNC_SAMPLE = 8
CHEAP_FSYNC = 0.0005
# A download whose connection broke is resumed this many times within one sync.
RESUME_ATTEMPTS = 3


class _Queued(NamedTuple):
    """What a queued replacement needs once it is swapped in, or looked at again."""

    target_rel: str
    row: Placed
    version: str
    source: str
    existing: Existing
    here: LocalFile | None
    modified: datetime | None


class Executor:
    def __init__(
        self,
        session: DavSession | None,
        media_dir: Path,
        record: Record,
        *,
        workers: int = 3,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        trash: Callable[[Path], None] | None = None,
        replace_pause: float | None = None,
        limiter: Limiter | None = None,
        fast: bool = True,
    ) -> None:
        self.session = session
        self.media_dir = media_dir
        self.staging = media_dir / STAGING_DIR / "staging"
        #: What the media folder's volume does (case folding, name rules, time resolution), once staged.
        self.volume: VolumeTraits | None = None
        self.record = record
        self.workers = workers
        self.progress = progress or Progress()
        self.cancel = cancel or threading.Event()
        self._trash = trash or send_to_trash
        self.limiter = limiter
        self.fast = fast  # fresh downloads on libcurl when it is available (remote/curl_download.py)
        self._count_lock = threading.Lock()
        self._fsyncs = (0, 0.0)  # how many flushes the fast path made, and their seconds
        self._sources: dict[str, str] = {}
        failing = record.get_meta("failing")
        self.failing_before: dict[str, int] = failing if isinstance(failing, dict) else {}
        self.replaced = 0  # a person's (or edited) files moved to the trash to make room
        self.trashed: list[tuple[str, str]] = []  # (path, reason) of those, for the sync's history
        # how long a replaced file stays away so that M³'s watcher sees unlink, then add
        self.replace_pause = replace_pause if replace_pause is not None else m3_replace_pause(
            str(media_dir), sys.platform)
        self._swaps: Swaps | None = None  # the replacements of the phase under way (see _swapping)

    # --- the whole plan ----------------------------------------------------------------

    def run(self, plan: Plan) -> Outcome:
        out = Outcome(unchanged=len(plan.keep), rows=list(plan.keep))
        fetches = [a for a in plan.actions if isinstance(a, Fetch)]
        copies = [a for a in plan.actions if isinstance(a, Copy)]
        self.progress.total_files = len(fetches) + len(copies)
        self.progress.total_bytes = sum(a.remote.size for a in fetches)
        failed_targets: set[str] = set()
        placing = {a.target for a in fetches} | {a.target for a in copies}
        self._sources = {a.target: "/".join(a.remote.parts) for a in fetches}
        days = {a.target: a.day for a in fetches} | {a.target: a.day for a in copies}
        if fetches or copies:
            budget = self._prepare_staging()
            fetches, copies = self._what_fits(budget, fetches, copies, out, failed_targets)
        if fetches:
            with (self._swapping(out, failed_targets, "downloaded"),
                  ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="download") as pool):
                for action, fut in self._start_fetches(fetches, pool):
                    self._collect(action.target, fut, out, failed_targets, "downloaded")
        # (a copy may read a file that a download just replaced: those are all in place now)
        with self._swapping(out, failed_targets, "copied"):
            for copy in copies:
                if self.cancel.is_set():
                    raise Cancelled
                if copy.source in failed_targets:
                    failed_targets.add(copy.target)
                    out.skipped.append(copy.target)
                    continue  # its source failed; already reported once
                done: Future[Placed | None] = Future()
                try:
                    done.set_result(self._copy(copy))
                except Exception as exc:  # noqa: BLE001 - collected per file below
                    done.set_exception(exc)
                self._collect(copy.target, done, out, failed_targets, "copied")

        # a file a copy failed to take from stays where it is: the next sync copies it again
        still_needed = {a.source for a in plan.actions if isinstance(a, Copy) and a.target in failed_targets}
        for other in plan.actions:
            if isinstance(other, Trash):
                trash_one(self.media_dir, other, out, self._trash)
            elif isinstance(other, Delete) and other.path not in still_needed:
                delete_one(self.media_dir, other, out)
        remove_empty_dirs(self.media_dir, [a for a in plan.actions if isinstance(a, RemoveDir)])
        self._clean_staging(placing)
        out.conflicts += self.replaced
        out.trashed.extend(self.trashed)
        for target in [p for p, _err in out.failed] + out.skipped:
            day = days.get(target)
            if day is not None:
                out.missing.setdefault(day.isoformat(), []).append(target)
        return out

    def _collect(
        self, target: str, fut: Future[Placed | None], out: Outcome, failed: set[str], counter: str
    ) -> None:
        try:
            row = fut.result()
        except Cancelled:
            raise
        except FileInUse as exc:
            log.warning("%s: %s", target, exc.message)
            out.waiting.append((target, exc))
            failed.add(target)
            return
        except (DiskFullError, CredentialsError):
            # A full disk or refused credentials fail every other file too: stop the sync (exit 1
            # or 3) instead of reporting each file. What was placed is in the record's pending rows.
            raise
        except M3Error as exc:
            exc = self._name_repeated_failure(target, exc, out)
            out.failed.append((target, exc))
            failed.add(target)
            return
        if row is None:
            return
        out.rows.append(row)
        if counter == "downloaded":
            out.downloaded += 1
        else:
            out.copied += 1

    @contextmanager
    def _swapping(self, out: Outcome, failed: set[str], counter: str) -> Iterator[None]:
        """A phase whose replacements of existing files are swapped in together at its end
        (engine/swaps.py). A phase that stops (cancelled, a full disk) still puts in what it
        queued: each is verified and has its pending row, which the next sync reads."""
        self._swaps = Swaps(self.staging, self.replace_pause)
        try:
            yield
        except BaseException:
            swaps, self._swaps = self._swaps, None
            try:
                swaps.finish()
            except OSError as exc:  # (the old file is back, or the staged one waits to be cleaned)
                log.warning("a replaced file was not put in place as the sync stopped: %s", exc)
            raise
        swaps, self._swaps = self._swaps, None
        for finished in swaps.finish():
            queued: _Queued = finished.swap.key
            if finished.error is None and not finished.changed:
                self.progress.file_done(queued.target_rel)
                continue
            out.rows.remove(queued.row)  # counted when it was queued: counted again below
            if counter == "downloaded":
                out.downloaded -= 1
            else:
                out.copied -= 1
            again: Future[Placed | None] = Future()
            try:
                if finished.error is not None:
                    raise self._not_placed(finished.error, finished.swap.staged, queued.target_rel,
                                           queued.version, queued.source) from finished.error
                # a person changed the file since: placed with the care a person's file gets
                again.set_result(self._place(finished.swap.staged, queued.target_rel, queued.existing,
                                             queued.here, queued.version, queued.source, queued.modified))
            except Exception as exc:  # noqa: BLE001 - collected per file
                again.set_exception(exc)
            self._collect(queued.target_rel, again, out, failed, counter)

    def _start_fetches(
        self, fetches: list[Fetch], pool: ThreadPoolExecutor
    ) -> list[tuple[Fetch, Future[Placed | None]]]:
        """Start every download; the futures come back in the order of ``fetches``.

        With libcurl, one CurlMulti in this thread fetches every new file (3 at a time) and the
        pool only fsyncs and places what arrived, so no two threads compete for the GIL; a file
        to resume, or one the fast path hands back (a failure, a broken body), goes through
        :meth:`_fetch` on httpx, which has the retries and the plain-words errors.
        """
        session = self.session
        assert session is not None
        multi = None
        if self.fast:
            from m3daemon.remote.curl_download import MultiDownloader

            multi = MultiDownloader.for_session(
                session, parallel=self.workers, on_bytes=self.progress.add_bytes, cancel=self.cancel,
                limiter=self.limiter, on_start=lambda job: self.progress.file_started(fetches[int(job.key)].target),
            )
        if multi is None:
            return [(a, pool.submit(self._fetch, a)) for a in fetches]
        from m3daemon.remote.curl_download import HandBack, Job

        futures: dict[int, Future[Placed | None]] = {}
        try:
            sidecars = {e.name for e in os.scandir(self.staging) if e.name.endswith(".json")}
        except OSError:
            sidecars = set()
        jobs: list[Job] = []
        for i, action in enumerate(fetches):
            part = self._part(action)
            if resume_sidecar_name(part.name) in sidecars or ready_name(action.target) + ".json" in sidecars:
                # a download to resume, or one that waited for its target: httpx's path does those
                futures[i] = pool.submit(self._fetch, action)
            else:
                r = action.remote
                jobs.append(Job(r.parts, part, r.size, r.etag, r.modified, key=i, weak_etag=r.weak_etag))

        def done(job: Job, back: HandBack | None) -> None:
            i = job.key
            assert isinstance(i, int)
            self.progress.file_ended(fetches[i].target)
            if back is None:
                if job.synced:
                    arrivals.add(i, fetches[i], job.part_file)
                elif self._fsync_is_cheap():
                    # On tmpfs or a fast SSD the flush costs next to nothing: placing here spares
                    # the hand-over to another thread (and the GIL contention it brings). From now
                    # on libcurl's loop flushes each file as it closes it, and they are placed a
                    # few at a time (engine/arrivals.py).
                    multi.sync_arrived = True
                    placed: Future[Placed | None] = Future()
                    try:
                        placed.set_result(self._arrived(fetches[i], job.part_file))
                    except BaseException as exc:  # noqa: BLE001 - collected per file by _collect
                        placed.set_exception(exc)
                    futures[i] = placed
                else:
                    futures[i] = pool.submit(self._arrived, fetches[i], job.part_file)
            elif back.final is not None:
                unlink_quiet(job.part_file)
                failed: Future[Placed | None] = Future()
                failed.set_exception(back.final)
                futures[i] = failed
            else:
                # A broken body used the first of the resume attempts; a busy server is given its pause.
                pause = session.retry.delay(0, back.retry_after) if back.busy else 0.0
                futures[i] = pool.submit(self._fetch, fetches[i], 2 if back.interrupted else 1, pause)

        from m3daemon.engine.arrivals import Arrivals

        arrivals = Arrivals(self, self.record.note_pending_many, futures)
        multi.on_turn = arrivals.flush_if_due
        multi.run(jobs, done)
        arrivals.flush()
        return [(a, futures[i]) for i, a in enumerate(fetches)]

    def _name_repeated_failure(self, target: str, exc: M3Error, out: Outcome) -> M3Error:
        """A file the server lists but will not serve, sync after sync, is said to be that (and
        logged once, when it first is); other failures are logged every time."""
        status = 404 if isinstance(exc, UnservableFile) else getattr(exc, "server_status", None)
        if not isinstance(status, int) or status < 404:
            log.warning("%s: %s", target, exc.message)
            return exc
        out.failing[target] = status
        before = self.failing_before.get(target)
        if before == status and not isinstance(exc, UnservableFile):
            exc = unservable(self._sources.get(target, target), status)
        if before == status:
            log.debug("%s: %s (as at the last sync)", target, exc.message)
        else:
            log.warning("%s: %s", target, exc.message)
        return exc

    # --- one file --------------------------------------------------------------------------

    def _part(self, action: Fetch) -> Path:
        return self.staging / (staging_name(action.remote.parts) + ".part")  # (its sidecar: remote/transfer.py)

    def _fsync_is_cheap(self) -> bool:
        """Whether the flushes measured so far took under :data:`CHEAP_FSYNC` seconds on average."""
        with self._count_lock:
            n, total = self._fsyncs
        return n >= FSYNC_SAMPLE and total / n < CHEAP_FSYNC

    def _arrived(self, action: Fetch, part: Path) -> Placed | None:
        """A file the fast path fetched and checked: flush it to disk, then place it."""
        try:
            with open(part, "r+b") as f:
                t0 = time.perf_counter()
                os.fsync(f.fileno())
                took = time.perf_counter() - t0
            with self._count_lock:
                n, total = self._fsyncs
                self._fsyncs = (n + 1, total + took)
        except OSError as exc:
            unlink_quiet(part)
            raise local_error(exc, part) from exc
        # (no resume sidecar is left: the fast path removed a large file's when it checked it)
        return self._place_arrived(action, part)

    def _place_arrived(self, action: Fetch, staged: Path) -> Placed | None:
        return self._place(staged, action.target, action.existing, action.here, action.remote.version,
                           "/".join(action.remote.parts), action.remote.modified)

    def _fetch(self, action: Fetch, first_attempt: int = 1, pause: float = 0.0) -> Placed | None:
        self.progress.file_started(action.target)
        try:
            return self._fetch_one(action, first_attempt, pause)
        finally:
            self.progress.file_ended(action.target)

    def _fetch_one(self, action: Fetch, first_attempt: int = 1, pause: float = 0.0) -> Placed | None:
        if pause and self.cancel.wait(pause):
            raise Cancelled
        if self.cancel.is_set():
            raise Cancelled
        assert self.session is not None
        source = "/".join(action.remote.parts)
        ready = waiting_file(self.staging, action.target, action.remote.version, source, action.remote.size)
        if ready is not None:  # downloaded by an earlier sync; its target was in use then
            log.info("placing %s from the earlier download that waited", action.target)
            return self._place(ready, action.target, action.existing, action.here, action.remote.version,
                               source, action.remote.modified)
        part = self._part(action)
        for attempt in range(first_attempt, RESUME_ATTEMPTS + 1):
            try:
                download(
                    self.session, action.remote.parts, part, size=action.remote.size, etag=action.remote.etag,
                    modified=action.remote.modified, on_bytes=self.progress.add_bytes, cancel=self.cancel,
                    weak_etag=action.remote.weak_etag,
                    limiter=self.limiter,
                )
                break
            except InterruptedTransfer:
                if attempt == RESUME_ATTEMPTS:
                    raise
                log.info("resuming %s after an interrupted download", action.target)
        return self._place(part, action.target, action.existing, action.here, action.remote.version,
                           "/".join(action.remote.parts), action.remote.modified)

    def _copy(self, action: Copy) -> Placed | None:
        ready = waiting_file(self.staging, action.target, action.remote.version, "/".join(action.remote.parts),
                                   action.remote.size)
        if ready is not None:
            return self._place(ready, action.target, action.existing, action.here, action.remote.version,
                               "/".join(action.remote.parts), action.remote.modified)
        src = self.media_dir / action.source
        tmp = self.staging / (staging_name((action.target,)) + ".copy")
        try:
            with open(src, "rb") as fin, open_new(tmp) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
                fout.flush()
                os.fsync(fout.fileno())
        except OSError as exc:
            unlink_quiet(tmp)
            raise local_error(exc, self.media_dir / action.target) from exc
        if tmp.stat().st_size != action.remote.size:
            unlink_quiet(tmp)
            raise LocalFolderError(
                _("The local copy {source} changed while it was being copied.").format(source=action.source),
                _("The next sync tries again."),
            )
        return self._place(tmp, action.target, action.existing, action.here, action.remote.version,
                           "/".join(action.remote.parts), action.remote.modified)

    def _place(
        self, staged: Path, target_rel: str, existing: Existing, here: LocalFile | None, version: str,
        source: str, modified: datetime | None,
    ) -> Placed | None:
        """Rename a verified staged file into place, dealing with what is there first.

        The target is looked at again just before the rename: only a file that is still exactly
        the sync's own (the size and mtime the plan saw) is replaced blind. Anything else (a
        person's file, an edited one, or one edited while this file downloaded) is adopted when
        identical, else moved to the trash first.
        """
        target = self.media_dir / target_rel
        row = self._staged_row(staged, target_rel, version, source, modified)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            current = stat_or_none(target)
            still_ours = (
                existing is Existing.OURS and here is not None and current is not None
                and (current.st_size, current.st_mtime_ns) == (here.size, here.mtime_ns)
            )
            if current is not None and not still_ours:
                # A person's file with the wanted name: adopt it when identical, else trash it.
                if (stat.S_ISREG(current.st_mode) and current.st_size == row.size
                        and filecmp.cmp(staged, target, shallow=False)):
                    unlink_quiet(staged)
                    self.progress.file_done(target_rel)
                    adopted = Placed(target_rel, current.st_size, current.st_mtime_ns, version, source)
                    log.info("adopted %s: identical to the congregation's file", target_rel)
                    return adopted
                self._trash(target)
                with self._count_lock:
                    self.replaced += 1
                    self.trashed.append((target_rel, "replaced"))
                log.info("moved %s to the trash: the congregation's file replaces it", target_rel)
            self.record.note_pending(row)
            if current is None:
                os.replace(staged, target)
            else:
                if self._swaps is not None:  # in with the others at the phase's end (engine/swaps.py)
                    seen = (current.st_size, current.st_mtime_ns) if still_ours else None
                    queued = _Queued(target_rel, row, version, source, existing, here, modified)
                    self._swaps.add(Swap(staged, target, still_ours, seen, queued))
                    return row
                one = Swaps(self.staging, self.replace_pause)
                one.add(Swap(staged, target, still_ours))
                (finished,) = one.finish()
                if finished.error is not None:
                    raise finished.error
        except OSError as exc:
            raise self._not_placed(exc, staged, target_rel, version, source) from exc
        self.progress.file_done(target_rel)
        return row

    def _staged_row(
        self, staged: Path, target_rel: str, version: str, source: str, modified: datetime | None
    ) -> Placed:
        """Give a verified staged file the server's date; its record row, once no folder on the
        way to its target is a link (else it is removed)."""
        when = on_time_grid(modified.timestamp() if modified is not None else time.time())
        os.utime(staged, ns=(when, when))
        st = os.stat(staged)
        try:
            check_no_link(self.media_dir, target_rel)
        except M3Error:
            unlink_quiet(staged)
            raise
        return Placed(target_rel, st.st_size, st.st_mtime_ns, version, source)

    def _not_placed(self, exc: OSError, staged: Path, target_rel: str, version: str, source: str) -> M3Error:
        """The error for a staged file that could not be put in place: one whose target is in use
        waits for the next sync; any other is removed."""
        if in_use(exc):
            keep_waiting(self.staging, staged, target_rel, version, source)
            return FileInUse(
                _("{path} is in use by another program; it will be replaced after the meeting.").format(
                    path=target_rel),
                _("Nothing to do: the new version is downloaded and waits; the next update puts it "
                  "in place without downloading it again."),
            )
        unlink_quiet(staged)
        return local_error(exc, self.media_dir / target_rel)

    # --- staging ---------------------------------------------------------------------------

    def _what_fits(
        self, budget: SpaceBudget, fetches: list[Fetch], copies: list[Copy], out: Outcome, failed: set[str]
    ) -> tuple[list[Fetch], list[Copy]]:
        """Claim space file by file, nearest meeting first and, within a date, small before large;
        a file that does not fit fails alone (its copies are skipped) and the rest goes on."""
        def key(a: Fetch | Copy) -> tuple[date, int, str]:
            # A classic layout's Recurring folder (no date) feeds every meeting: it comes first.
            return (a.day or date.min, a.remote.size, a.target)

        ordered: list[Fetch | Copy] = sorted([*fetches, *copies], key=key)
        fits: set[int] = set()
        for action in ordered:
            if isinstance(action, Copy) and action.source in failed:
                continue  # skipped with its source, below
            try:
                budget.claim("/".join(action.remote.parts) if isinstance(action, Fetch) else action.target,
                             action.remote.size)
            except NotEnoughSpace as err:
                log.warning("%s: %s", action.target, err.message)
                out.failed.append((action.target, err))
                failed.add(action.target)
                continue
            fits.add(id(action))
        return ([a for a in ordered if isinstance(a, Fetch) and id(a) in fits],
                [a for a in ordered if isinstance(a, Copy) and (id(a) in fits or a.source in failed)])

    def _prepare_staging(self) -> SpaceBudget:
        for folder in (self.staging.parent, self.staging):
            if is_link(folder):
                raise linked_folder_error(folder)
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            hide_on_windows(self.staging.parent)
        except OSError as exc:
            raise local_error(exc, self.staging / "x") from exc
        self.volume = volume_of(self.staging)
        return SpaceBudget.measure(self.staging)

    def waiting_targets(self) -> list[str]:
        """Targets whose new version waits in the staging folder (for status and the dashboard)."""
        return waiting_targets(self.staging)

    def _clean_staging(self, placing: set[str]) -> None:
        """Remove leftover copies, and waiting files no longer wanted; keep ``.part`` files of
        interrupted downloads for resuming."""
        try:
            if not self.staging.is_dir():
                return
            for pattern in ("*.copy", "*.replaced"):
                for p in self.staging.glob(pattern):
                    unlink_quiet(p)
            for target in set(waiting_targets(self.staging)) - placing:
                for p in ready_paths(self.staging, target):
                    unlink_quiet(p)
        except OSError:
            pass
