"""One congregation inside the daemon: a worker thread that runs syncs one at a time.

Every trigger (schedule, watcher, tray, CLI) only *requests* a sync. Requests made while a sync
runs are coalesced into exactly one more sync afterwards, so syncs never overlap and no request
is lost. A failure to reach the server makes the congregation *offline*, and the worker retries
with back-off until the server answers again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from m3daemon.engine.clock import Clock
from m3daemon.engine.context import clock_for, local_prefs, record_path
from m3daemon.engine.readiness import META_KEY as READINESS_META
from m3daemon.engine.readiness import MeetingReadiness, readiness
from m3daemon.engine.results import Progress
from m3daemon.engine.status import CongregationStatus, ProgressView, SyncState
from m3daemon.engine.sync import SyncReport
from m3daemon.errors import Cancelled, ConnectionProblem, ErrorInfo, M3Error, SyncError
from m3daemon.i18n import _
from m3daemon.local.paths import ensure_private_dir
from m3daemon.local.record import Record
from m3daemon.settings.config import Config

log = logging.getLogger(__name__)

OFFLINE_BACKOFF = tuple(
    float(x) for x in os.environ.get("M3DAEMON_OFFLINE_BACKOFF", "15,30,60,120,300").split(",") if x.strip()
)
PAUSE_FILE = "paused.json"

SyncFn = Callable[..., SyncReport]
RepairFn = Callable[..., SyncReport | None]


@dataclass
class Request:
    seq: int
    reason: str
    repair_only: bool
    during_meeting: bool = False  # a person confirmed: apply what a running meeting holds back
    allow_deletions: bool = False  # a person confirmed: remove what the mass-deletion guard kept


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CongregationRunner:
    """Runs the syncs of one configuration on its own worker thread."""

    def __init__(
        self,
        cfg: Config,
        *,
        sync_fn: SyncFn,
        repair_fn: RepairFn | None = None,
        on_change: Callable[[CongregationRunner], None] = lambda r: None,
        backoff: tuple[float, ...] = OFFLINE_BACKOFF,
        clock: Clock | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock or clock_for(cfg)  # the congregation's: each sync plans for its "today"
        self.name = cfg.display_name
        self._sync_fn = sync_fn
        self._repair_fn = repair_fn
        self._on_change = on_change
        self._backoff = backoff
        self._cond = threading.Condition()
        self._requested_seq = 0
        self._completed_seq = 0
        self._pending: Request | None = None
        self._retry_at: float | None = None
        self._offline_failures = 0
        self._stopping = False
        self.cancel = threading.Event()
        self.progress = Progress()
        self.state = SyncState.STARTING if cfg.connection is not None else SyncState.NOT_CONFIGURED
        self.last_sync: str | None = None
        self.last_attempt: str | None = None
        self.last_error: ErrorInfo | None = None
        self.last_result: dict[str, Any] | None = None
        self.next_sync: str | None = None
        self.next_meeting: tuple[str, str] | None = None
        self.meeting_days_known = True
        self.waiting: list[str] = []  # media files whose new version waits: the old one is in use
        self.held_for_meeting: list[dict[str, str]] = []  # changes a running meeting holds back
        self.meetings_running: list[dict[str, str]] = []
        self._after_meeting_at: float | None = None  # when the held changes are applied (monotonic)
        self._wanted: dict[str, list[str]] | None = None  # readiness: per date, the files it should hold
        self._effective: dict[str, Any] = {}
        self.missing: dict[str, list[str]] = {}  # date -> media files of that date not in place
        self._paused = self._load_paused()
        self._thread = threading.Thread(target=self._loop, name=f"sync-{self.name}", daemon=True)

    # --- control -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop at a safe point: the running sync is cancelled between two chunks."""
        with self._cond:
            self._stopping = True
            self.cancel.set()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def request_sync(self, reason: str, *, repair_only: bool = False, force: bool = False,
                     during_meeting: bool = False, allow_deletions: bool = False) -> int:
        """Ask for a sync; returns the sequence number a caller can wait for.

        Scheduled syncs are skipped while paused; a person's "Update now" (``force``) is not.
        """
        with self._cond:
            if self.cfg.connection is None:
                self.state = SyncState.NOT_CONFIGURED
                return self._completed_seq  # nothing to sync until the connection is set up
            if self._paused and not force:
                log.debug("%s: paused; %s sync skipped", self.name, reason)
                return self._completed_seq
            self._requested_seq += 1
            pending = self._pending
            if pending is None or (pending.repair_only and not repair_only):
                self._pending = Request(self._requested_seq, reason, repair_only, during_meeting, allow_deletions)
            else:
                self._pending = Request(self._requested_seq, pending.reason, pending.repair_only and repair_only,
                                        pending.during_meeting or during_meeting,
                                        pending.allow_deletions or allow_deletions)
            self._cond.notify_all()
            return self._requested_seq

    def wait_for(self, seq: int, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._completed_seq < seq and not self._stopping:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._completed_seq >= seq

    @property
    def completed_seq(self) -> int:
        return self._completed_seq

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)
        self.request_sync("resume")

    # --- status --------------------------------------------------------------------------

    def status(self) -> CongregationStatus:
        p = self.progress
        state = SyncState.PAUSED if self._paused and self.state is not SyncState.SYNCING else self.state
        return CongregationStatus(
            name=self.name, config=str(self.cfg.path), state=state, media_dir=str(self.cfg.local.media_dir),
            last_sync=self.last_sync, last_attempt=self.last_attempt, next_sync=self.next_sync,
            next_meeting=self.next_meeting[1] if self.next_meeting else None,
            next_meeting_kind=self.next_meeting[0] if self.next_meeting else None,
            meeting_days_known=self.meeting_days_known,
            progress=ProgressView(p.done_files, p.total_files, p.done_bytes, p.total_bytes, p.current)
            if self.state is SyncState.SYNCING else ProgressView(),
            last_error=self.last_error, last_result=self.last_result, completed_seq=self._completed_seq,
            waiting=list(self.waiting),
            held_for_meeting=list(self.held_for_meeting), meetings_running=list(self.meetings_running),
            readiness=[r.to_json() for r in self.readiness()], missing={d: list(f) for d, f in self.missing.items()},
        )

    # --- the worker ----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and self._pending is None and not self._retry_due():
                    self._cond.wait(self._wait_time())
                if self._stopping:
                    return
                if self._pending is None:  # an offline retry, or the end of a meeting with held changes
                    self._requested_seq += 1
                    after = self._after_meeting_at is not None and time.monotonic() >= self._after_meeting_at
                    self._pending = Request(self._requested_seq, "after-meeting" if after else "retry", False)
                    if after:
                        self._after_meeting_at = None
                request, self._pending = self._pending, None
                self._retry_at = None
            assert request is not None
            self._run(request)
            with self._cond:
                self._completed_seq = max(self._completed_seq, request.seq)
                self._cond.notify_all()

    def _retry_due(self) -> bool:
        due = [t for t in (self._retry_at, self._after_meeting_at) if t is not None]
        return bool(due) and time.monotonic() >= min(due)

    def _wait_time(self) -> float | None:
        due = [t for t in (self._retry_at, self._after_meeting_at) if t is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _run(self, request: Request) -> None:
        self.progress = Progress()
        repair = request.repair_only and self._repair_fn is not None
        previous = self.state
        if not repair:
            self._begin()

        def on_plan(plan: Any) -> None:
            # A repair that finds nothing to do stays silent: the watcher also sees our own writes.
            if repair and not plan.is_noop:
                log.info("%s: files changed in the media folder; restoring them", self.name)
                self._begin()

        try:
            report: SyncReport | None = None
            if repair and self._repair_fn is not None:
                now = self.clock.now()
                report = self._repair_fn(self.cfg, progress=self.progress, cancel=self.cancel, on_plan=on_plan,
                                         today=now.date(), now=now)
            if report is None:  # not a repair, or nothing cached to repair from: a full sync
                if repair:
                    self._begin()
                extra = {"during_meeting": True} if request.during_meeting else {}
                if request.allow_deletions:
                    extra["allow_deletions"] = True
                now = self.clock.now()
                report = self._sync_fn(self.cfg, progress=self.progress, cancel=self.cancel, today=now.date(),
                                       now=now, **extra)
        except Cancelled:
            log.info("%s: sync stopped", self.name)
            self.state = SyncState.UP_TO_DATE if self.last_sync else SyncState.STARTING
            return
        except ConnectionProblem as err:
            self._went_offline(err)
            return
        except M3Error as err:
            self._failed(err)
            return
        except Exception as exc:
            log.exception("%s: unexpected error during sync", self.name)
            self._failed(M3Error(_("Unexpected error: {what}").format(what=exc),
                                 _("m3daemon tries again at the next sync. Please report this with the log.")))
            return
        finally:
            if self.state is not previous or not repair:
                self._changed()
        if repair and self.state is not SyncState.SYNCING:
            return  # a silent no-op repair
        self._succeeded(report, request.reason)
        self._changed()

    def _begin(self) -> None:
        self.state = SyncState.SYNCING
        self.last_attempt = _now_iso()
        self._changed()

    def _succeeded(self, report: SyncReport, reason: str) -> None:
        if self._offline_failures:
            log.info("%s: the server answers again", self.name)
        self._offline_failures = 0
        self.meeting_days_known = report.meeting_days_known
        self.last_result = {**report.to_json(), "reason": reason}
        self.last_sync = _now_iso()
        self.waiting = [str(w.get("path", "")) for w in report.waiting]
        self.held_for_meeting = list(report.held_for_meeting)
        self.meetings_running = list(report.meetings_running)
        if report.held_for_meeting:  # the first sync after the meeting applies them
            until = max(datetime.fromisoformat(h["until"]) for h in report.held_for_meeting)
            wait = (until - self.clock.now()).total_seconds()
            with self._cond:
                self._after_meeting_at = time.monotonic() + max(0.0, wait) + 1.0
        else:
            self._after_meeting_at = None
        self._wanted = None  # read again from the record
        self.missing = {day: list(files) for day, files in report.missing.items()}
        infos = report.error_infos()
        if report.ok or (not report.held_deletions and all(i.kind == "UnservableFile" for i in infos)):
            # Files M³ holds open wait for the next sync, and a file the server will not serve is
            # the coordinator's to fix: neither keeps the tray red; `missing` names the files.
            self.state, self.last_error = SyncState.UP_TO_DATE, None
        else:
            self.last_error = infos[0] if infos else SyncError("").info()
            self.state = SyncState.ERROR
        log.info("%s: %s sync: %d downloaded, %d copied, %d removed, %d moved, %d failed", self.name, reason,
                 report.downloaded, report.copied, report.removed, report.moved, report.failed)

    def _went_offline(self, err: ConnectionProblem) -> None:
        if err.needs_person:  # an untrusted certificate: waiting does not help
            self._failed(err)
            return
        step = self._backoff[min(self._offline_failures, len(self._backoff) - 1)]
        if self._offline_failures == 0:
            log.warning("%s: offline: %s (retrying with back-off)", self.name, err.message)
        else:
            log.debug("%s: still offline: %s", self.name, err.message)
        self._offline_failures += 1
        self.state = SyncState.OFFLINE
        self.last_error = err.info()
        with self._cond:
            self._retry_at = time.monotonic() + step

    def _failed(self, err: M3Error) -> None:
        same = self.last_error is not None and self.last_error.message == err.message
        (log.debug if same else log.error)("%s: %s %s", self.name, err.message, err.remedy)
        self.state = SyncState.ERROR
        self.last_error = err.info()

    def _changed(self) -> None:
        try:
            self._on_change(self)
        except Exception:
            log.exception("status listener failed")

    # --- readiness --------------------------------------------------------------------------

    def readiness(self) -> list[MeetingReadiness]:
        """The coming meetings and how many of their files are in place (engine/readiness.py)."""
        if self._wanted is None:
            self._wanted, self._effective = {}, {}
            path = record_path(self.cfg)
            if path.exists():
                try:
                    record = Record(path, readonly=True)
                    try:
                        wanted = record.get_meta(READINESS_META)
                        effective = record.get_meta("effective_prefs")
                    finally:
                        record.close()
                except M3Error:
                    wanted, effective = None, None
                self._wanted = wanted if isinstance(wanted, dict) else {}
                self._effective = effective if isinstance(effective, dict) else {}
        effective = self._effective or local_prefs(self.cfg)
        return readiness(self.cfg.local.media_dir, effective, self._wanted, self.clock.now(),
                         length=timedelta(minutes=self.cfg.schedule.meeting_minutes))

    # --- pause, persisted ------------------------------------------------------------------

    def _load_paused(self) -> bool:
        try:
            return bool(json.loads((self.cfg.state_dir / PAUSE_FILE).read_text("utf-8")).get("paused"))
        except (OSError, ValueError, AttributeError):
            return False

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        write_paused(self.cfg.state_dir, paused)
        log.info("%s: %s", self.name, "paused" if paused else "resumed")
        self._changed()


def write_paused(state_dir: Path, paused: bool) -> None:
    """Pause survives restarts: it is a file in the congregation's state folder."""
    ensure_private_dir(state_dir)
    (state_dir / PAUSE_FILE).write_text(json.dumps({"paused": paused, "since": _now_iso()}), "utf-8")
