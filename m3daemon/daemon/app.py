"""``m3daemon run``: one process serves every congregation it is given.

Why one process for several congregations: one tray icon that shows all of them, one control
port, one scheduler and one file watcher, instead of two or three copies of each fighting over
the tray. Each congregation still has its own worker, schedule, state, errors and lock, so a
broken server for one never delays another.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from m3daemon.core.meetings import MeetingDays
from m3daemon.daemon import sdnotify
from m3daemon.daemon.control import (
    WAIT_MAX,
    ControlApp,
    ControlInfo,
    ControlServer,
    new_token,
    remove_control_file,
    write_control_file,
)
from m3daemon.daemon.runner import CongregationRunner, SyncFn
from m3daemon.daemon.schedule import Scheduler, WakeDetector, next_meeting, pre_meeting_times
from m3daemon.daemon.watcher import MediaWatcher
from m3daemon.engine.clock import TimeSource, clock_in
from m3daemon.engine.context import Context
from m3daemon.engine.readiness import missing_notice
from m3daemon.engine.status import CongregationStatus, SyncState
from m3daemon.engine.sync import ListingCache, repair, update
from m3daemon.errors import LockHeld, UsageError
from m3daemon.i18n import _, ngettext
from m3daemon.local.locks import FileLock
from m3daemon.settings.config import Config

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 20.0


class Daemon:
    """Implements :class:`m3daemon.engine.status.DaemonControl` for the tray and the control API."""

    def __init__(
        self,
        configs: list[Config],
        *,
        no_tray: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        sync_fn: SyncFn | None = None,
        watch: bool = True,
        time_source: TimeSource | None = None,
    ) -> None:
        """``time_source``: where every congregation's clock reads the time (tests fix the instant)."""
        if not configs:
            raise UsageError(_("No congregation is configured."), _("Run `m3daemon setup` first."))
        self.configs = configs
        self.no_tray = no_tray
        self.host, self.port = host, port
        self.watch = watch
        self.stop_event = threading.Event()
        self._time_source = time_source
        # One context, and so one clock, per congregation: each has its own "today" and meeting times.
        self.contexts: dict[Path, Context] = {c.path: Context.of(c, source=time_source) for c in configs}
        self._locks: list[FileLock] = []
        self._caches: dict[Path, ListingCache] = {c.path: ListingCache() for c in configs}
        self._recorded_days: dict[Path, MeetingDays] = {}  # until a listing is cached
        self._prev: dict[Path, CongregationStatus] = {}
        self._missing_noted: set[str] = set()  # meetings whose "media missing" was said (once each)
        self.runners: dict[Path, CongregationRunner] = {}
        for cfg in configs:
            cache = self._caches[cfg.path]
            self.runners[cfg.path] = CongregationRunner(
                cfg,
                sync_fn=sync_fn or _bind(update, cache),
                repair_fn=None if sync_fn else _bind(repair, cache, positional=True),
                on_change=self._changed,
                clock=self.contexts[cfg.path].clock,
            )
        self.scheduler: Scheduler | None = None
        self.watcher: MediaWatcher | None = None
        self.control: ControlServer | None = None
        self.tray: Any = None
        self.dashboard: Any = None
        self._token = new_token()
        self._wake = WakeDetector(lambda slept: self._wake_up())

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._lock_all()
        app = ControlApp(self._token)
        self._routes(app)
        self.dashboard = self._make_dashboard()
        app.fallback = self.dashboard
        self.control = ControlServer(app, self.host, self.port)
        if self.dashboard is not None:
            self.dashboard.bind(self.host, self.control.port)
        self.control.start()
        # The scheduler's own zone only shapes its poll intervals; every meeting time it is given is
        # an aware time in its congregation's zone.
        self.scheduler = Scheduler(clock_in(None, self._time_source).tz)
        for path, runner in self.runners.items():
            minutes = runner.cfg.schedule.poll_minutes
            self.scheduler.every(f"poll:{path}", minutes * 60, _requester(runner, "poll"))
            self._plan_meetings(runner)
        self.scheduler.every("heartbeat", HEARTBEAT_SECONDS, self._heartbeat)
        self.scheduler.start()
        for runner in self.runners.values():
            runner.start()
            runner.request_sync("start")
        if self.watch:
            self.watcher = MediaWatcher(self._local_change)
            self.watcher.start(self._watched())
        # Written last: a client that finds the file finds a daemon that is fully up.
        info = ControlInfo(self.control.port, self._token, os.getpid(), self.host)
        for cfg in self.configs:
            write_control_file(cfg.state_dir, info)
        sdnotify.notify("READY=1\nSTATUS=" + ngettext("Watching {n} congregation", "Watching {n} congregations",
                                                         len(self.runners)).format(n=len(self.runners)))
        log.info("m3daemon is running for %s (control port %d)",
                 ", ".join(r.name for r in self.runners.values()), self.control.port)

    def wait(self) -> None:
        """Block until quit: with a tray its loop owns this (the main) thread, else it just waits."""
        if not self._run_tray():
            while not self.stop_event.wait(1.0):
                pass

    def shutdown(self) -> None:
        sdnotify.notify("STOPPING=1")
        log.info("m3daemon is stopping")
        if self.watcher is not None:
            self.watcher.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        for runner in self.runners.values():
            runner.stop()
        tray = self.tray
        if tray is not None:
            tray.stop()
        if self.control is not None:
            self.control.stop()
        for cfg in self.configs:
            remove_control_file(cfg.state_dir, os.getpid())
        for lock in self._locks:
            lock.release()

    def _lock_all(self) -> None:
        for cfg in self.configs:
            lock = FileLock(cfg.state_dir / "daemon.lock")
            try:
                lock.acquire()
            except LockHeld as held:
                for taken in self._locks:
                    taken.release()
                raise UsageError(
                    _("m3daemon is already running for {name} ({holder}).").format(
                        name=cfg.name, holder=held.holder or _("another process")),
                    _("Use `m3daemon status`, or `m3daemon quit` to stop it first."),
                ) from None
            self._locks.append(lock)

    def _make_dashboard(self) -> Any:
        """The dashboard, mounted on the control port for every path outside ``/api/``; loopback only."""
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("no dashboard: the control port listens on %s, beyond this computer", self.host)
            return None
        try:
            from m3daemon.dashboard import Dashboard
        except ImportError as exc:
            log.warning("no dashboard: %s", exc)
            return None
        return Dashboard(self)

    def _run_tray(self) -> bool:
        """Run the tray's loop on this thread until quit; False when there is no tray."""
        if self.no_tray:
            log.info("running without a tray icon (--no-tray)")
            return False
        try:
            from m3daemon.tray import run_tray
        except ImportError:
            log.info("running without a tray icon: the tray module is not available")
            return False

        def ready(tray: Any) -> None:
            self.tray = tray

        try:
            return run_tray(self, self.stop_event, on_ready=ready)
        finally:
            self.tray = None

    # --- DaemonControl -----------------------------------------------------------------------

    def statuses(self) -> list[CongregationStatus]:
        return [self._status_of(runner) for runner in self.runners.values()]

    def _status_of(self, runner: CongregationRunner) -> CongregationStatus:
        """The runner's status with the schedule's next sync and the next meeting."""
        path = runner.cfg.path
        nxt = self.scheduler.next_run(f"poll:{path}") if self.scheduler else None
        pre = self.scheduler.next_run(f"pre:{path}:") if self.scheduler else None
        soonest = min((t for t in (nxt, pre) if t is not None), default=None)
        meeting = self._next_meeting(runner)
        return replace(
            runner.status(),
            next_sync=soonest.isoformat() if soonest else None,
            next_meeting=meeting[1] if meeting else None,
            next_meeting_kind=meeting[0] if meeting else None,
        )

    def update_now(self, name: str | None = None, *, during_meeting: bool = False,
                   allow_deletions: bool = False) -> None:
        """A person's "Update now"; ``during_meeting``: they confirmed that changes held for a
        running meeting are applied at once; ``allow_deletions``: that the files the mass-deletion
        guard kept are removed (the coordinator really removed them)."""
        for runner in self._select(name):
            runner.request_sync("manual", force=True, during_meeting=during_meeting,
                                allow_deletions=allow_deletions)

    def pause(self, name: str | None = None) -> None:
        for runner in self._select(name):
            runner.pause()

    def resume(self, name: str | None = None) -> None:
        for runner in self._select(name):
            runner.resume()

    def quit(self) -> None:
        self.stop_event.set()

    def dashboard_url(self) -> str | None:
        """Where the dashboard answers (no key in it): the tray enables "Open dashboard" with it."""
        url: str | None = self.dashboard.base_url if self.dashboard is not None else None
        return url

    def dashboard_launch(self, cid: int | None = None, page: str | None = None) -> str | None:
        """A fresh launch page's ``file://`` address (see :mod:`m3daemon.dashboard.launch`); ``page``
        opens that page (``connection`` for "Set up…" and "Fix password…")."""
        page = self.dashboard.launch(cid, page) if self.dashboard is not None else None
        return page.as_uri() if page is not None else None

    # --- for the dashboard -------------------------------------------------------------------

    def congregation_configs(self) -> list[Config]:
        return [r.cfg for r in self.runners.values()]

    def replace_config(self, cfg: Config) -> None:
        """Use a changed configuration (connection, media folder, local settings) from now on."""
        runner = self.runners[cfg.path]
        old, runner.cfg = runner.cfg, cfg
        runner.name = cfg.display_name  # "Not set up yet" becomes the congregation's name
        self.contexts[cfg.path] = Context.of(cfg, source=self._time_source)
        runner.clock = self.contexts[cfg.path].clock
        self.configs = [cfg if c.path == cfg.path else c for c in self.configs]
        self._caches[cfg.path].cong = None
        self._recorded_days.pop(cfg.path, None)
        moved = old.local.media_dir != cfg.local.media_dir or old.connection is None
        if moved and self.watcher is not None:
            self.watcher.stop()
            self.watcher = MediaWatcher(self._local_change)
            self.watcher.start(self._watched())
        if self.scheduler is not None:
            self._plan_meetings(runner)
        log.info("%s: configuration changed from the dashboard", runner.name)
        runner.request_sync("settings", force=True)

    def _watched(self) -> list[Path]:
        """The media folders of configured congregations (an unconfigured one writes nothing)."""
        return [r.cfg.local.media_dir for r in self.runners.values() if r.cfg.connection is not None]

    def _select(self, name: str | None) -> list[CongregationRunner]:
        if name is None:
            return list(self.runners.values())
        return [r for p, r in self.runners.items() if name in (r.name, str(p))]

    # --- events ------------------------------------------------------------------------------

    def _changed(self, runner: CongregationRunner) -> None:
        st = runner.status()
        prev = self._prev.get(runner.cfg.path)
        self._prev[runner.cfg.path] = st
        finished = st.state is not SyncState.SYNCING and prev is not None and prev.state is SyncState.SYNCING
        if finished and self.scheduler is not None:
            self._plan_meetings(runner)
        tray = self.tray  # the tray's loop may end meanwhile
        if tray is not None:
            tray.refresh()
            note = self._missing_media_note(runner, st) if finished or st.state is SyncState.OFFLINE else None
            note = note or _notification(prev, st)
            if note is not None:
                tray.notify(*note)
        if st.state is not SyncState.SYNCING:
            sdnotify.notify("STATUS=" + f"{runner.name}: {st.state.value}")

    def _missing_media_note(self, runner: CongregationRunner, st: CongregationStatus) -> tuple[str, str] | None:
        """Once per meeting: when it starts within the lead time (or runs) and files are missing."""
        now = runner.clock.now()
        lead = timedelta(minutes=runner.cfg.schedule.before_meeting_minutes)
        for meeting in runner.readiness():
            start = datetime.fromisoformat(meeting.start)
            key = f"{runner.cfg.path}|{meeting.start}"
            if meeting.complete or key in self._missing_noted or start - now > lead:
                continue
            self._missing_noted.add(key)
            log.warning("%s: %s", runner.name, meeting.line())
            return missing_notice(runner.name, meeting, st.last_error)
        return None

    def _local_change(self, folder: Path) -> None:
        for runner in self.runners.values():
            if runner.cfg.local.media_dir == folder:
                runner.request_sync("watcher", repair_only=True)

    def _heartbeat(self) -> None:
        self._wake.tick()
        if sdnotify.watchdog_interval() is not None:
            sdnotify.notify("WATCHDOG=1")

    def _wake_up(self) -> None:
        for runner in self.runners.values():
            runner.request_sync("wake")

    # --- meetings ----------------------------------------------------------------------------

    def _meeting_days(self, runner: CongregationRunner) -> MeetingDays:
        cache = self._caches[runner.cfg.path]
        if cache.cong is not None:
            return MeetingDays.from_prefs(cache.cong.effective)
        known = self._recorded_days.get(runner.cfg.path)
        if known is not None:
            return known
        effective = self.contexts[runner.cfg.path].planned_effective()
        # Remembered: every status request (the dashboard polls) would otherwise open the record.
        days = self._recorded_days[runner.cfg.path] = MeetingDays.from_prefs(effective)
        return days

    def pre_meeting_syncs(self, runner: CongregationRunner) -> list[datetime]:
        """When this congregation syncs before its coming meetings: in its own zone, by its own clock."""
        clock = self.contexts[runner.cfg.path].clock
        lead = timedelta(minutes=runner.cfg.schedule.before_meeting_minutes)
        return [t for t, _m in pre_meeting_times(self._meeting_days(runner), clock.now(), lead, clock.tz)]

    def _plan_meetings(self, runner: CongregationRunner) -> None:
        assert self.scheduler is not None
        self.scheduler.at_times(f"pre:{runner.cfg.path}:", self.pre_meeting_syncs(runner),
                                _requester(runner, "pre-meeting"))

    def _next_meeting(self, runner: CongregationRunner) -> tuple[str, str] | None:
        clock = self.contexts[runner.cfg.path].clock
        m = next_meeting(self._meeting_days(runner), clock.now(), clock.tz)
        return (m.kind, m.start.isoformat()) if m else None

    # --- control API -------------------------------------------------------------------------

    def _routes(self, app: ControlApp) -> None:
        def status(_body: dict[str, Any]) -> tuple[int, Any]:
            return 200, {"pid": os.getpid(), "watcher": self.watcher.mode if self.watcher else "off",
                         "congregations": [s.to_json() for s in self.statuses()]}

        def update_(body: dict[str, Any]) -> tuple[int, Any]:
            runners = self._select(body.get("config"))
            during = bool(body.get("during_meeting"))
            return 202, {"seq": {str(r.cfg.path): r.request_sync("manual", force=True, during_meeting=during)
                                 for r in runners}}

        def wait(body: dict[str, Any]) -> tuple[int, Any]:
            # The CLI waits here for its sync instead of asking for the status every fraction of a
            # second: it hears of the end at once. Bounded, so a long sync is a few calls.
            runners = self._select(body.get("config"))
            if len(runners) != 1:
                return 404, {"error": "no such congregation"}
            try:
                seq = int(body.get("seq", 0))
                timeout = min(max(float(body.get("timeout", WAIT_MAX)), 0.0), WAIT_MAX)
            except (TypeError, ValueError):
                return 400, {"error": "seq and timeout must be numbers"}
            done = runners[0].wait_for(seq, timeout)
            return 200, {"done": done, "congregation": self._status_of(runners[0]).to_json()}

        def simple(action: Callable[[str | None], None]) -> Callable[[dict[str, Any]], tuple[int, Any]]:
            def handler(body: dict[str, Any]) -> tuple[int, Any]:
                action(body.get("config"))
                return 200, {"ok": True}
            return handler

        app.route("GET", "/api/ping", lambda b: (200, {"pid": os.getpid()}))
        app.route("GET", "/api/status", status)
        app.route("POST", "/api/update", update_)
        app.route("POST", "/api/wait", wait)
        app.route("POST", "/api/pause", simple(self.pause))
        app.route("POST", "/api/resume", simple(self.resume))
        def quit_(_body: dict[str, Any]) -> tuple[int, Any]:
            self.quit()
            return 200, {"ok": True}

        app.route("POST", "/api/quit", quit_)

        def dashboard(body: dict[str, Any]) -> tuple[int, Any]:
            if self.dashboard is None:
                return 404, {"error": "no dashboard"}
            cid = next((i for i, p in enumerate(self.runners) if str(p) == body.get("config")), None)
            if body.get("page"):
                return 200, {"page": self.dashboard_launch(cid), "url": None}
            return 200, {"url": self.dashboard.login_url(cid)}

        app.route("POST", "/api/dashboard", dashboard)


def _requester(runner: CongregationRunner, reason: str) -> Callable[[], None]:
    def request() -> None:
        runner.request_sync(reason)
    return request


def _bind(func: Callable[..., Any], cache: ListingCache, positional: bool = False) -> Callable[..., Any]:
    """``update``/``repair`` with this congregation's listing cache."""
    if positional:
        return lambda cfg, **kw: func(cfg, cache, **kw)
    return lambda cfg, **kw: func(cfg, cache=cache, **kw)


def _notification(prev: CongregationStatus | None, new: CongregationStatus) -> tuple[str, str] | None:
    try:
        from m3daemon.tray.menu import notification_for
    except ImportError:
        return None
    result: tuple[str, str] | None = notification_for(prev, new)
    return result
