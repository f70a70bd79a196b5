"""One "Update media folders": list, read the settings, plan, carry out, record.

This is the only module that ties the pure parts (model, planner) to I/O (remote, executor,
record). The CLI, the daemon and the dashboard all call :func:`update`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m3daemon.core import prefs as m3prefs
from m3daemon.core.entries import RemoteEntry, normalize_etag
from m3daemon.core.layout import Layout
from m3daemon.core.meetings import MeetingDays, meeting_dates
from m3daemon.core.meetingtime import hold_for_meetings, running_meetings
from m3daemon.core.model import FORCED_PREFS, CongregationFolder, RemoteFile, build_folder
from m3daemon.core.planner import Conversions, Copy, Delete, Fetch, Plan, Trash, hold_mass_deletion, plan_sync
from m3daemon.engine import freshness, history, listing_method
from m3daemon.engine.context import (
    clock_for,
    endpoint_for,
    layout_for,
    local_prefs,
    open_session,
    record_path,
)
from m3daemon.engine.conversions import Prepared, wanted_convertibles
from m3daemon.engine.conversions import prepare as prepare_conversions
from m3daemon.engine.readiness import META_KEY as READINESS_META
from m3daemon.engine.readiness import wanted_by_date
from m3daemon.engine.results import Outcome, Progress
from m3daemon.errors import AnotherSyncRunning, ErrorInfo, LockHeld, M3Error, MassDeletionRefused
from m3daemon.i18n import _, ngettext
from m3daemon.local.locks import FileLock
from m3daemon.local.longpaths import for_os
from m3daemon.local.record import Record
from m3daemon.local.scan import list_subdirs, scan_local
from m3daemon.remote.bounded import MAX_SETTINGS_BYTES, read_small_file
from m3daemon.remote.http import DavSession
from m3daemon.remote.listing import AnswerMemo, Listing, list_tree, root_tag
from m3daemon.remote.retry import RetryPolicy
from m3daemon.remote.transfer import Limiter, limiter_for
from m3daemon.settings.config import Config
from m3daemon.settings.credentials import require_password
from m3daemon.settings.registry import check_media_dir_unique

if TYPE_CHECKING:
    from m3daemon.remote.curl_listing import PollLister

log = logging.getLogger(__name__)

KEPT_MEMO = "listing_memo"  # the record's meta key of AnswerMemo.kept() (see _read_with_memo)

__all__ = ["Congregation", "ListingCache", "SyncReport", "make_plan", "read_congregation", "repair", "update"]


@dataclass
class SyncReport:
    """What an update did, in the field names of SPEC.md's ``update --json``."""

    downloaded: int = 0
    copied: int = 0
    removed: int = 0
    moved: int = 0  # files moved to a new name here (copied there, the old name removed); in neither above
    unchanged: int = 0
    hidden: int = 0
    failed: int = 0
    conflicts: int = 0
    bytes: int = 0
    held_deletions: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # ErrorInfo.to_dict() of each failure
    warnings: list[str] = field(default_factory=list)
    requests: int = 0
    listing: str = ""
    seconds: float = 0.0
    dry_run: bool = False
    planned: list[dict[str, str]] = field(default_factory=list)
    window: list[str] = field(default_factory=list)
    meeting_days_known: bool = True
    media_dir: str = ""
    # Files another program holds open (Windows): the new version (or the removal) waits for the
    # next sync, which needs no download for it. ErrorInfo.to_dict() of each, like ``errors``.
    waiting: list[dict[str, Any]] = field(default_factory=list)
    # Per date (ISO), the media files of that date that are not in place (failed or did not fit):
    # what a meeting's readiness names ("11 of 12 files ready: 03 Song.mp4 is missing").
    missing: dict[str, list[str]] = field(default_factory=dict)
    # A meeting runs in these date folders: changes there wait for its end (core/meetingtime.py).
    meetings_running: list[dict[str, str]] = field(default_factory=list)  # kind, date, start, end
    held_for_meeting: list[dict[str, str]] = field(default_factory=list)  # path, change, until

    @property
    def ok(self) -> bool:
        return not self.failed and not self.held_deletions and not self.waiting

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def error_infos(self) -> list[ErrorInfo]:
        """The failures as values again (the list holds their JSON form, as ``update --json`` prints it)."""
        return [ErrorInfo.from_dict(e) for e in self.errors]


@dataclass
class Congregation:
    """Everything read from the server for one sync."""

    listing: Listing
    folder: CongregationFolder
    forced: m3prefs.ForcedPrefs
    effective: dict[str, Any]


@dataclass
class NoopMemo:
    """The inputs of the last plan that had nothing to do. The planner is pure: the same folder
    (the very object an unchanged listing gives back), record, local files, day and settings give
    the same empty plan, so the daemon's poll compares them (2 ms for 2,000 files) instead of
    planning again (25 ms). Only a plan with nothing to do is kept, and a copy is handed out."""

    folder: CongregationFolder | None = None
    inputs: tuple[Any, ...] = ()
    plan: Plan | None = None

    def recall(self, folder: CongregationFolder, inputs: tuple[Any, ...]) -> Plan | None:
        if self.plan is None or folder is not self.folder or inputs != self.inputs:
            return None
        return _copy_plan(self.plan)

    def remember(self, folder: CongregationFolder, inputs: tuple[Any, ...], plan: Plan) -> None:
        if plan.actions:
            self.folder, self.inputs, self.plan = None, (), None
            return
        self.folder, self.inputs, self.plan = folder, inputs, _copy_plan(plan)


def _copy_plan(plan: Plan) -> Plan:
    """A plan whose lists are its own (the mass-deletion guard changes the plan it is given)."""
    return replace(plan, actions=list(plan.actions), keep=list(plan.keep), vanished=list(plan.vanished),
                   unconverted=set(plan.unconverted), unconverted_targets=list(plan.unconverted_targets),
                   unshowable=list(plan.unshowable))


@dataclass
class ListingCache:
    """The last congregation read, kept by the daemon between syncs, and its HTTPS session (so a
    poll reuses the open connections: no TLS handshakes)."""

    cong: Congregation | None = None
    session: DavSession | None = None
    # the last answer of each folder's PROPFIND on that session (remote/listing.py), and the last
    # plan that had nothing to do (make_plan): an unchanged poll parses and plans nothing again
    answers: AnswerMemo = field(default_factory=AnswerMemo)
    noop: NoopMemo = field(default_factory=NoopMemo)

    def session_for(self, cfg: Config, retry: RetryPolicy | None) -> tuple[DavSession, bool]:
        """The kept session when it is for the same server, account and password; else a new one
        (kept when no special retry policy is asked for). Returns it and whether the caller closes it."""
        if retry is not None:
            return open_session(cfg, retry=retry), True
        assert cfg.connection is not None
        password = require_password(cfg.connection)
        kept = self.session
        if kept is not None and kept.endpoint == endpoint_for(cfg) and kept.password == password:
            return kept, False
        if kept is not None:
            kept.close()
        self.answers.close()
        session = self.session = open_session(cfg, password=password)
        self.answers = answer_memo(session)  # another server or account: nothing of the old one applies
        return session, False


def answer_memo(session: DavSession, *, one_sync: bool = False) -> AnswerMemo:
    """A memo whose walks ask on libcurl connections to ``session``'s server, made at the first
    walk: the daemon loads pycurl only for a server that is walked, not for one that lists
    everything at once. ``one_sync`` (a CLI command): every listing request goes over libcurl
    first, so that a sync with nothing to download needs no httpx (remote/http.py)."""

    def quick() -> PollLister | None:
        from m3daemon.remote.curl_listing import PollLister

        return PollLister.for_session(session)

    return AnswerMemo(quick=quick, infinity_quick=one_sync)


def read_congregation(
    session: DavSession, cfg: Config, record: Record, today: date | None = None,
    last: Congregation | None = None, answers: AnswerMemo | None = None,
) -> Congregation:
    """List the folder and read ``forcedPrefs.json`` (only when it changed since last time).

    With ``today``, a Depth-1 walk opens only the date folders of the sync window (a day of
    margin at each end, for a listing kept over midnight by the daemon's repair).
    """
    window = _walk_window(cfg, today) if today is not None else None
    tried = listing_method.try_infinity(record)
    listing = list_tree(session, prefer_infinity=tried, window=window, memo=answers)
    listing_method.remember(record, listing, window, tried)
    same = last is not None and listing.entries == last.listing.entries
    if window is not None:
        before = freshness.TagState.load(record)
        # (a command's no-op: every answer is the one the record kept, with its entries' digest)
        replayed = answers is not None and answers.entries_digest is not None \
            and answers.entries_digest == before.digest
        after = freshness.after_full_listing(before, listing.root_tag, listing.entries,
                                             _window_key(listing.method, window), unchanged=same or replayed)
        if answers is not None:
            answers.note_digest(after.digest)
        if after != before:
            after.save(record)
    for href, why in listing.skipped:
        log.warning("skipped %r in the listing: %s", href, why)
    forced = _forced_prefs(session, listing.entries, record)
    local = local_prefs(cfg)
    effective = m3prefs.effective_prefs(local, forced.values)
    if same and last is not None and effective == last.effective:
        # The same listing read with the same settings: the same folder (the daemon's poll).
        return Congregation(listing, last.folder, forced, effective)
    folder = build_folder(
        listing.entries,
        str(effective.get("app.outputFolderDateFormat") or "YYYY-MM-DD"),
        effective.get("app.congregationName") or None,
    )
    return Congregation(listing, folder, forced, effective)


def _walk_window(cfg: Config, today: date) -> tuple[date, date]:
    return today - timedelta(days=1), today + timedelta(days=cfg.local.days_ahead + 1)


def _window_key(method: str, window: tuple[date, date]) -> str:
    """What a listing covered: everything (Depth infinity) or the walk's window."""
    return "all" if method == "infinity" else f"{window[0].isoformat()}/{window[1].isoformat()}"


def unchanged_since(
    session: DavSession, cfg: Config, record: Record, last: Congregation, today: date
) -> Congregation | None:
    """``last`` again, when the server's folder tag is trusted (engine/freshness.py) and still the
    same: one ``Depth: 0`` request instead of a listing. None: list again."""
    state = freshness.TagState.load(record)
    key = "all" if state.window == "all" else _window_key("walk", _walk_window(cfg, today))
    if not freshness.may_skip_listing(state, key):
        return None
    if m3prefs.effective_prefs(local_prefs(cfg), last.forced.values) != last.effective:
        return None  # the local settings changed: the folder is read again with them
    tag = root_tag(session)
    if tag != state.tag:
        log.debug("the congregation folder's tag changed; listing it again")
        return None
    state.since_full += 1
    state.save(record)
    listing = Listing(last.listing.entries, "unchanged", 1, [], tag)
    return Congregation(listing, last.folder, last.forced, last.effective)


def _forced_prefs(session: DavSession, entries: list[RemoteEntry], record: Record) -> m3prefs.ForcedPrefs:
    """Read ``forcedPrefs.json``, fetching it only when its version changed.

    Only text that parses is cached. When the file cannot be fetched or read, the last good
    settings stay in force (with a warning): planning with no settings at all could move the
    meeting days and so remove a meeting's recurring media.
    """
    entry = next((e for e in entries if e.parts == (FORCED_PREFS,) and not e.is_dir), None)
    cached = record.get_meta("forced_prefs")
    good = cached if isinstance(cached, dict) and isinstance(cached.get("text"), str) else None
    if entry is None:
        if cached is not None:
            record.set_meta(forced_prefs=None)
        return m3prefs.ForcedPrefs({}, [])
    version = normalize_etag(entry.etag) or f"{entry.size}:{entry.modified}"
    if good is not None and good.get("version") == version:
        return m3prefs.parse_forced_prefs(good["text"])
    try:
        text = read_small_file(session, (FORCED_PREFS,), MAX_SETTINGS_BYTES).decode("utf-8-sig", "replace")
        parsed = m3prefs.parse_forced_prefs(text)
    except (ValueError, M3Error) as exc:
        if isinstance(exc, M3Error) and good is None:
            raise
        reason = exc.message if isinstance(exc, M3Error) else str(exc)
        if good is None:
            log.warning("forcedPrefs.json cannot be read (%s); no congregation settings apply", reason)
            return m3prefs.ForcedPrefs({}, [(FORCED_PREFS, reason)])
        log.warning("forcedPrefs.json cannot be read (%s); the settings fetched %s stay in force",
                    reason, good.get("fetched_at"))
        last = m3prefs.parse_forced_prefs(good["text"])
        return m3prefs.ForcedPrefs(last.values, [*last.ignored, (FORCED_PREFS, reason)])
    record.set_meta(forced_prefs={
        "version": version, "text": text, "fetched_at": datetime.now(UTC).isoformat(),
    })
    return parsed


def make_plan(
    cfg: Config, cong: Congregation, record_rows: Mapping[str, Any], today: date, *, guard: bool = True,
    convert: Callable[[list[RemoteFile]], Conversions] | None = None, noop: NoopMemo | None = None,
) -> tuple[Plan, list[str], Layout, MeetingDays]:
    """The plan for ``today``. ``convert`` (the ``watch`` layout) gives the images of the PDF, SVG
    and HEIC files the window wants (engine/conversions.py). ``noop``: see :class:`NoopMemo`."""
    layout = layout_for(cfg, cong.effective, cong.folder)
    days = MeetingDays.from_prefs(cong.effective)
    end = today + timedelta(days=cfg.local.days_ahead)
    meetings = meeting_dates(days, today, end)
    media_dir = for_os(cfg.local.media_dir)  # the long form on Windows (local/longpaths.py)
    dirs = {layout.date_dir(today + timedelta(days=i)) for i in range(cfg.local.days_ahead + 1)}
    rec_dir = layout.recurring_dir()
    if rec_dir:
        dirs.add(rec_dir)
    for name in list_subdirs(media_dir / layout.root if layout.root else media_dir):
        rel = f"{layout.root}/{name}" if layout.root else name
        d = layout.parse_date_dir(rel)
        if d is not None and d < today:
            dirs.add(rel)
    local = scan_local(media_dir, record_rows.keys(), dirs)
    conversions = None
    if convert is not None and layout.kind == "watch":
        window = [today + timedelta(days=i) for i in range(cfg.local.days_ahead + 1)]
        conversions = convert(wanted_convertibles(cong.folder, window, set(meetings)))
    inputs = (dict(record_rows), local, today, cfg.local.days_ahead, meetings, layout, conversions) if noop is not None else ()
    plan = noop.recall(cong.folder, inputs) if noop is not None else None
    if plan is None:
        plan = plan_sync(
            cong.folder, record_rows, local, today=today, days_ahead=cfg.local.days_ahead,
            meeting_dates=meetings, layout=layout, conversions=conversions,
        )
        if noop is not None:
            noop.remember(cong.folder, inputs, plan)
    held = hold_mass_deletion(plan, cong.folder, record_rows) if guard else []
    return plan, held, layout, days


def update(
    cfg: Config,
    *,
    dry_run: bool = False,
    today: date | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    allow_deletions: bool = False,
    lock_wait: float = 600.0,
    retry: RetryPolicy | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    cache: ListingCache | None = None,
    from_cache: bool = False,
    bandwidth_limit_bps: int | None = None,
    now: datetime | None = None,
    during_meeting: bool = False,
) -> SyncReport:
    """Bring the media folder to what the congregation folder says. Raises M3Error on failures
    that stop the whole sync; per-file failures are counted in the report. ``today`` defaults to
    the congregation's (its clock, :func:`m3daemon.engine.context.clock_for`).

    With ``cache``, the listing read is remembered; with ``from_cache`` too, it is used instead
    of listing again (the daemon's repair of a file a person deleted: no network round trip
    unless a file must be downloaded).

    ``bandwidth_limit_bps`` caps all downloads together (bytes per second), for example during a
    meeting; without it, ``[connection] bandwidth_limit_kbps`` applies.

    While a meeting runs, files in its date folder are neither deleted nor replaced (new ones are
    added) and downloads keep to ``[schedule] meeting_bandwidth_limit_kbps``; ``during_meeting`` (a person
    confirmed "Update now") applies the held changes at once. ``now`` defaults to the clock's.
    """
    started = time.monotonic()
    clock = clock_for(cfg)
    now = now or clock.now()
    today = today or clock.today()  # the congregation's today, in its own time zone
    endpoint_for(cfg)
    check_media_dir_unique(cfg)
    lock = FileLock(cfg.state_dir / "sync.lock")
    _acquire(lock, lock_wait)
    try:
        record = Record(record_path(cfg), repair=True)
        try:
            if cache is not None:
                session, owned = cache.session_for(cfg, retry)
            else:
                session, owned = open_session(cfg, retry=retry), True
            requests_before, bytes_before = session.stats.requests, session.stats.bytes_in
            try:
                session.cancel = cancel
                cong = cache.cong if from_cache and cache is not None else None
                if cong is None and cache is not None and cache.cong is not None:
                    cong = unchanged_since(session, cfg, record, cache.cong, today)
                if cong is None:
                    cong = _read_with_memo(session, cfg, record, today, cache)
                report = _update_locked(
                    cfg, session, record, cong, dry_run=dry_run, today=today, progress=progress,
                    cancel=cancel, allow_deletions=allow_deletions, on_plan=on_plan,
                    limiter=limiter_for(bandwidth_limit_bps or _configured_limit(cfg)),
                    now=now.astimezone(clock.tz), during_meeting=during_meeting,
                    noop=cache.noop if cache is not None else None,
                )
                report.requests = session.stats.requests - requests_before
                report.bytes = session.stats.bytes_in - bytes_before
            finally:
                session.cancel = None
                if owned:
                    session.close()
        finally:
            record.close()
    finally:
        lock.release()
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _read_with_memo(
    session: DavSession, cfg: Config, record: Record, today: date, cache: ListingCache | None
) -> Congregation:
    """Read the congregation with the memo of answers that the last sync kept in the record
    (``listing_memo``): a folder whose answer is byte for byte the last one is not parsed again,
    and the walk asks for all of its folders at once. A command reads it at every sync; the
    daemon at its first, and then keeps its own in memory (written back when it changes)."""
    answers = cache.answers if cache is not None else answer_memo(session, one_sync=True)
    if cache is None or cache.cong is None:
        answers.recall_kept(record.get_meta(KEPT_MEMO), session)
    try:
        cong = read_congregation(session, cfg, record, today, last=cache.cong if cache is not None else None,
                                 answers=answers)
    finally:
        if cache is None:
            answers.close()
    if answers.changed:
        try:
            record.set_meta(**{KEPT_MEMO: answers.kept(session)})
            answers.mark_kept()
        except (OSError, sqlite3.Error) as exc:  # (a full disk: the sync goes on, and says so if it must)
            log.info("the listing memo was not kept (%s); the next sync parses its answers again", exc)
    if cache is not None:
        cache.cong = cong
    return cong


def _configured_limit(cfg: Config) -> int:
    return cfg.connection.bandwidth_limit_bps if cfg.connection is not None else 0


def _acquire(lock: FileLock, wait: float) -> None:
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            lock.acquire()
            return
        except LockHeld as held:
            if time.monotonic() >= deadline:
                raise AnotherSyncRunning(
                    _("Another update of this congregation is still running ({holder}).").format(
                        holder=held.holder or "?"
                    ),
                    _("Wait for it to finish, then try again."),
                ) from None
            if not announced:
                # A warning, so that a person who started a second update sees why nothing happens.
                log.warning("another update of this congregation is running (%s); waiting for it to finish",
                            held.holder or "?")
                announced = True
            time.sleep(0.2)


def repair(cfg: Config, cache: ListingCache, **kwargs: Any) -> SyncReport | None:
    """Restore what a person deleted or changed, from the remembered listing; None when there is
    no listing to work from yet (the caller then runs a full sync)."""
    if cache.cong is None:
        return None
    return update(cfg, cache=cache, from_cache=True, **kwargs)


def _update_locked(
    cfg: Config, session: DavSession, record: Record, cong: Congregation, *, dry_run: bool, today: date,
    progress: Progress | None, cancel: threading.Event | None, allow_deletions: bool,
    on_plan: Callable[[Plan], None] | None, now: datetime, limiter: Limiter | None = None,
    during_meeting: bool = False, noop: NoopMemo | None = None,
) -> SyncReport:
    on_os = for_os(cfg.local.media_dir)  # the long form on Windows (local/longpaths.py)
    rows = record.load(on_disk=lambda rel: _size_and_mtime(on_os / rel))
    media_dir = str(cfg.local.media_dir)
    if rows and record.get_meta("media_dir") not in (None, media_dir):
        # The record describes another folder: files there are left as they are.
        log.info("the media folder changed to %s; starting a new record", media_dir)
        rows = {}
    prepared = Prepared()

    def convert(files: list[RemoteFile]) -> Conversions:
        nonlocal prepared
        prepared = prepare_conversions(session, on_os, files, dry_run=dry_run, cancel=cancel, limiter=limiter)
        return prepared.conversions

    plan, held, layout, days = make_plan(cfg, cong, rows, today, guard=not allow_deletions, convert=convert,
                                         noop=noop)
    running = running_meetings(days, now, now.tzinfo or UTC, timedelta(minutes=cfg.schedule.meeting_minutes))
    meeting_held = [] if during_meeting else hold_for_meetings(
        plan, rows, [(layout.date_dir(w.day), w) for w in running])
    report = SyncReport(
        hidden=plan.hidden, listing=cong.listing.method, dry_run=dry_run,
        window=[plan.window[0].isoformat(), plan.window[1].isoformat()],
        meeting_days_known=days.known, media_dir=str(cfg.local.media_dir),
        meetings_running=[{"kind": w.kind, "date": w.day.isoformat(), "start": w.start.isoformat(),
                           "end": w.end.isoformat()} for w in running],
        held_for_meeting=[{"path": h.path, "change": h.change, "until": h.until.isoformat()} for h in meeting_held],
    )
    for path in sorted(set(plan.unshowable)):
        report.warnings.append(_("M³ 25+ does not show {path}: only images, videos, audio and JW playlists "
                                 "appear in a meeting, and this file is none of them.").format(path=path))
    if dry_run:
        report.warnings.extend(_("{path} would be downloaded and converted into images for M³.").format(path=p)
                               for p in sorted(plan.unconverted))
    if meeting_held:
        report.warnings.append(ngettext(
            "A meeting is running: {n} change in its folder waits until it ends at {until}.",
            "A meeting is running: {n} changes in its folder wait until it ends at {until}.",
            len(meeting_held)).format(n=len(meeting_held), until=meeting_held[0].until.strftime("%H:%M")))
    report.warnings.extend(cong.folder.warnings)
    report.warnings.extend(
        _("Congregation setting {key} ignored: {reason}").format(key=k, reason=r) for k, r in cong.forced.ignored
    )
    if not days.known:
        report.warnings.append(
            _("Meeting days are not set, so recurring media go only into dates that have their own media.")
        )
    if held:
        report.held_deletions = held
        report.errors.append(_error_dict(MassDeletionRefused(
            ngettext("{n} synced file is missing from the server listing; it was kept.",
                     "{n} synced files are missing from the server listing; they were kept.",
                     len(held)).format(n=len(held)),
            _("If the coordinator really removed them, run `m3daemon update --allow-deletions`."),
        )))
    for w in report.warnings:
        log.warning("%s", w)
    if on_plan is not None:
        on_plan(plan)
    if dry_run:
        report.planned = [_describe(a) for a in plan.actions]
        report.unchanged = len(plan.keep)
        report.downloaded = sum(isinstance(a, Fetch) for a in plan.actions)
        report.moved = sum(isinstance(a, Delete) and a.reason == "moved" for a in plan.actions)
        report.copied = sum(isinstance(a, Copy) for a in plan.actions) - report.moved
        report.removed = sum(isinstance(a, Delete) for a in plan.actions) - report.moved
        report.conflicts = sum(isinstance(a, Trash) for a in plan.actions)
        return report
    outcome = Outcome(unchanged=len(plan.keep), rows=list(plan.keep))
    if plan.actions:
        cfg.local.media_dir.mkdir(parents=True, exist_ok=True)
        meeting_bps = cfg.schedule.meeting_bandwidth_limit_kbps * 1000 // 8
        if running and meeting_bps and (limiter is None or limiter.rate > meeting_bps):
            limiter = Limiter(meeting_bps)  # a hybrid meeting's video call keeps its bandwidth
        from m3daemon.engine.executor import Executor  # (a no-op needs none of it: 2 ms of a command's start)

        executor = Executor(session, on_os, record, progress=progress, cancel=cancel, limiter=limiter)
        outcome = executor.run(plan)
        # A file whose action failed is still what the record says (the old version, a file not
        # yet removed): keep its row, or the next sync would take the sync's own file for a
        # person's and send it to the trash, or never remove it.
        kept = {r.path for r in outcome.rows}
        not_done = [p for p, _err in outcome.failed] + [p for p, _err in outcome.waiting] + outcome.skipped
        outcome.rows.extend(rows[p] for p in dict.fromkeys(not_done) if p in rows and p not in kept)
    record.commit(outcome.rows, meta={
        "media_dir": media_dir,
        "last_sync": datetime.now(UTC).isoformat(),
        "last_result": "ok" if not outcome.failed and not outcome.waiting and not held else "partial",
        "failing": outcome.failing,
        "effective_prefs": cong.effective,
        "locked_keys": sorted(m3prefs.locked_keys(cong.forced.values)),
        READINESS_META: wanted_by_date(plan, layout, meeting_dates(days, plan.window[0], plan.window[1])),
    })
    entry = history.entry_for(plan, outcome, datetime.now(UTC))
    if entry is not None:
        record.add_history(entry)
    report.downloaded = outcome.downloaded + prepared.converted  # converted files were downloaded too
    report.copied = max(0, outcome.copied - outcome.moved)  # a moved file's copy is its move
    report.removed = outcome.removed
    report.moved = outcome.moved
    report.unchanged = outcome.unchanged
    report.conflicts = outcome.conflicts
    report.failed = len(outcome.failed) + len(prepared.failed)
    report.errors.extend(_error_dict(e, path) for path, e in outcome.failed)
    report.errors.extend(_error_dict(e, path) for path, e in prepared.failed)
    report.waiting = [_error_dict(e, path) for path, e in outcome.waiting]
    report.missing = outcome.missing
    return report


def _size_and_mtime(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _describe(action: Any) -> dict[str, str]:
    kind = type(action).__name__.lower()
    out = {"action": kind}
    for key in ("target", "path", "source", "reason"):
        if hasattr(action, key):
            out[key] = str(getattr(action, key))
    if hasattr(action, "remote"):
        out["remote"] = "/".join(action.remote.parts)
    return out


def _error_dict(err: M3Error, path: str = "") -> dict[str, Any]:
    return err.info(path).to_dict()
