"""The tray without a display: menu model, worst state, tooltip, notification rules, icons, and the
pystray adapter on pystray's dummy backend (a FakeIcon subclass; ``run()`` is never called on the
dummy backend itself, whose setup thread would hang pytest at exit).

The real backend under Xvfb is tested in ``test_tray_xvfb.py``.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until

from m3daemon.engine.status import CongregationStatus, ErrorView, ProgressView, SyncState

if "pystray" not in sys.modules:  # choose the dummy backend: importing pystray needs no display then
    _previous = os.environ.get("PYSTRAY_BACKEND")
    os.environ["PYSTRAY_BACKEND"] = "dummy"
    try:
        import pystray
    finally:
        if _previous is None:
            del os.environ["PYSTRAY_BACKEND"]
        else:
            os.environ["PYSTRAY_BACKEND"] = _previous
else:
    import pystray

import pystray._base

import m3daemon.tray as tray_mod
from m3daemon.tray import Tray, open_path, run_tray
from m3daemon.tray.icons import ICON_SIZE, app_icon, icon_for, quantize_percent
from m3daemon.tray.menu import (
    SEPARATOR,
    Action,
    ActionKind,
    MenuItemSpec,
    build_menu,
    notification_for,
    short_time,
    sync_percent,
    tooltip,
    worst_state,
)

# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def amsterdam() -> Iterator[datetime]:
    """Local time is Europe/Amsterdam (UTC+2 in July); returns "now": Wed 17 July 2024, 20:00 local."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Amsterdam"
    time.tzset()
    try:
        yield datetime(2024, 7, 17, 18, 0, tzinfo=UTC)
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def status(name: str = "East", state: SyncState = SyncState.UP_TO_DATE, **kw: Any) -> CongregationStatus:
    kw.setdefault("media_dir", f"/media/{name}")
    return CongregationStatus(name=name, config=f"/etc/m3daemon/{name}.toml", state=state, **kw)


def labels(items: tuple[MenuItemSpec, ...]) -> list[str]:
    return ["---" if i.separator else i.label for i in items]


def find(items: tuple[MenuItemSpec, ...], label: str) -> MenuItemSpec:
    return next(i for i in items if i.label == label)


PASSWORD = ErrorView("AuthError", "The server refused the password.", "Run m3daemon setup again.", True)
DISK = ErrorView("DiskFullError", "The disk is full.", "Free some space.", True)
TIMEOUT = ErrorView("ConnectionProblem", "The server does not answer.", "Check the network.", False)


# --- worst state ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "worst"),
    [
        ([SyncState.UP_TO_DATE], SyncState.UP_TO_DATE),
        ([SyncState.UP_TO_DATE, SyncState.PAUSED], SyncState.PAUSED),
        ([SyncState.PAUSED, SyncState.SYNCING, SyncState.UP_TO_DATE], SyncState.SYNCING),
        ([SyncState.SYNCING, SyncState.OFFLINE], SyncState.OFFLINE),
        ([SyncState.OFFLINE, SyncState.ERROR, SyncState.SYNCING], SyncState.ERROR),
        ([SyncState.ERROR, SyncState.UP_TO_DATE], SyncState.ERROR),
    ],
)
def test_worst_state(states: list[SyncState], worst: SyncState) -> None:
    statuses = [status(f"c{i}", s) for i, s in enumerate(states)]
    assert worst_state(statuses) is worst
    assert worst_state(list(reversed(statuses))) is worst


def test_worst_state_of_nothing_is_not_configured() -> None:
    assert worst_state([]) is SyncState.NOT_CONFIGURED


# --- times ---------------------------------------------------------------------------------


def test_short_time_is_local_and_short(amsterdam: datetime) -> None:
    now = amsterdam
    assert short_time("2024-07-17T16:05:00+00:00", now) == "18:05"  # today, UTC → CEST
    assert short_time("2024-07-17T16:05:00Z", now) == "18:05"
    assert short_time("2024-07-18T17:00:00+00:00", now) == "Thu 19:00"  # within a week: weekday
    assert short_time("2024-07-15T08:30:00+00:00", now) == "Mon 10:30"
    assert short_time("2024-06-01T08:30:00+00:00", now) == "2024-06-01 10:30"
    assert short_time("2024-07-17T19:00:00", now) == "19:00"  # naive: already local
    assert short_time("2024-07-18", now) == "tomorrow"  # a date alone: no time shown
    assert short_time("2024-07-20", now) == "Sat"
    assert short_time(None, now) is None
    assert short_time("garbage", now) == "garbage"


# --- the menu model ------------------------------------------------------------------------


def test_single_congregation_menu(amsterdam: datetime) -> None:
    st = status(last_sync="2024-07-17T16:05:00+00:00", next_meeting="2024-07-18T17:00:00+00:00")
    items = build_menu([st], None, amsterdam)
    assert labels(items) == [
        "Update media folders now", "Open media folder", "Open dashboard", "Pause", "---",
        "East: Up to date", "Last sync 18:05 · next meeting Thu 19:00", "---", "Quit",
    ]
    update = items[0]
    assert update.default and update.enabled and update.action == Action(ActionKind.UPDATE_NOW)
    assert [i.label for i in items if i.default] == ["Update media folders now"]
    assert find(items, "Open media folder").action == Action(ActionKind.OPEN_FOLDER, "East", "/media/East")
    assert not find(items, "Open dashboard").enabled  # no dashboard yet
    assert find(items, "Pause").action == Action(ActionKind.PAUSE)
    info = find(items, "Last sync 18:05 · next meeting Thu 19:00")
    assert not info.enabled and info.action is None
    assert find(items, "Quit").action == Action(ActionKind.QUIT)


def test_menu_dashboard_enabled_with_url() -> None:
    item = find(build_menu([status()], "http://127.0.0.1:8765/"), "Open dashboard")
    assert item.enabled and item.action == Action(ActionKind.OPEN_DASHBOARD, target="http://127.0.0.1:8765/")


def test_menu_paused_offers_resume() -> None:
    items = build_menu([status(state=SyncState.PAUSED)], None)
    assert "Pause" not in labels(items)
    assert find(items, "Resume").action == Action(ActionKind.RESUME)
    assert "East: Paused" in labels(items)


def test_menu_never_synced_and_unknown_meeting_days() -> None:
    items = build_menu([status(state=SyncState.STARTING, meeting_days_known=False)], None)
    assert "Not synced yet · meeting days not known" in labels(items)


def test_menu_shows_the_error_line() -> None:
    items = build_menu([status(state=SyncState.ERROR, last_error=PASSWORD)], None)
    assert "East: Error" in labels(items)
    line = find(items, "The server refused the password.")
    assert not line.enabled


def test_menu_says_which_meeting_is_ready_and_what_a_running_meeting_holds(amsterdam: datetime) -> None:
    ready = [{"text": "Thursday 19:00 — 12 of 12 files ready"}, {"text": "Sunday 10:00 — 3 of 4 files ready"},
             {"text": "Thursday 19:00 — not listed yet"}]
    held = [{"path": "2026-12-03/Talk.mp4", "change": "replace", "until": "2026-12-03T21:00:00+01:00"},
            {"path": "2026-12-03/Old.jpg", "change": "delete", "until": "2026-12-03T21:00:00+01:00"}]
    items = build_menu([status(readiness=ready, held_for_meeting=held)], None, now=amsterdam)
    shown = labels(items)
    assert "Thursday 19:00 — 12 of 12 files ready" in shown and "Sunday 10:00 — 3 of 4 files ready" in shown
    assert "Thursday 19:00 — not listed yet" not in shown  # the next two meetings only
    line = next(i for i in items if i.label.startswith("2 changes wait until the meeting ends"))
    assert not line.enabled and "21:00" in line.label
    apply = find(items, "Apply them now, during the meeting")
    assert apply.enabled and apply.action == Action(ActionKind.APPLY_HELD, "East")
    # without held changes, no such item
    assert "Apply them now, during the meeting" not in labels(build_menu([status(readiness=ready)], None))


def test_menu_several_congregations(amsterdam: datetime) -> None:
    east = status("East", last_sync="2024-07-17T16:05:00+00:00")
    west = status("West", SyncState.SYNCING, progress=ProgressView(3, 10))
    items = build_menu([east, west], None, amsterdam)
    assert labels(items) == [
        "Update media folders now", "---", "East: Up to date", "West: Syncing…", "---",
        "Open dashboard", "Pause all", "---", "Quit",
    ]
    sub = find(items, "East: Up to date").submenu
    assert sub is not None
    assert labels(sub) == ["Last sync 18:05", "---", "Update now", "Open media folder", "Pause"]
    assert find(sub, "Update now").action == Action(ActionKind.UPDATE_NOW, "East")
    assert find(sub, "Open media folder").action == Action(ActionKind.OPEN_FOLDER, "East", "/media/East")
    assert find(sub, "Pause").action == Action(ActionKind.PAUSE, "East")
    west_sub = find(items, "West: Syncing…").submenu
    assert west_sub is not None and find(west_sub, "Update now").action == Action(ActionKind.UPDATE_NOW, "West")
    assert find(items, "Pause all").action == Action(ActionKind.PAUSE)
    both_paused = build_menu([replace(east, state=SyncState.PAUSED), replace(west, state=SyncState.PAUSED)], None)
    assert find(both_paused, "Resume all").action == Action(ActionKind.RESUME)


def test_an_unconfigured_trays_first_item_is_set_up_which_opens_the_connection_page() -> None:
    items = build_menu([], "http://127.0.0.1:8765/")
    assert labels(items) == ["Set up…", "Open dashboard", "---", "No congregation configured", "---", "Quit"]
    assert items[0].enabled and items[0].default
    assert items[0].action == Action(ActionKind.OPEN_DASHBOARD, target="http://127.0.0.1:8765/", page="connection")
    assert not build_menu([], None)[0].enabled  # no dashboard yet
    not_set_up = build_menu([status(state=SyncState.NOT_CONFIGURED)], "http://127.0.0.1:8765/")
    assert labels(not_set_up)[0] == "Set up…"
    assert SEPARATOR.separator


def test_an_error_a_person_can_fix_has_the_button_that_fixes_it() -> None:
    url = "http://127.0.0.1:8765/"
    items = build_menu([status(state=SyncState.ERROR, last_error=PASSWORD)], url)
    fix = find(items, "Fix password…")
    assert fix.enabled and fix.action == Action(ActionKind.OPEN_DASHBOARD, "East", url, page="connection")
    tls = ErrorView("TLSError", "The certificate is not trusted.", "Pin it.", True)
    assert "Check the connection…" in labels(build_menu([status(state=SyncState.ERROR, last_error=tls)], url))
    disk = labels(build_menu([status(state=SyncState.ERROR, last_error=DISK)], url))
    assert "Fix password…" not in disk and "Check the connection…" not in disk  # nothing here fixes a full disk
    kept = ErrorView("MassDeletionRefused", "4 synced files are missing from the server listing; they were kept.",
                     "If the coordinator really removed them, run `m3daemon update --allow-deletions`.", False)
    review = find(build_menu([status(state=SyncState.ERROR, last_error=kept)], url), "Review the files kept…")
    assert review.action == Action(ActionKind.OPEN_DASHBOARD, "East", url)  # the status page, with its button


# --- tooltip -------------------------------------------------------------------------------


def test_tooltip_single(amsterdam: datetime) -> None:
    st = status(last_sync="2024-07-17T16:05:00+00:00", next_meeting="2024-07-18T17:00:00+00:00")
    assert tooltip([st], amsterdam) == "m3daemon — Up to date (last sync 18:05; next meeting Thu 19:00)"
    syncing = replace(st, state=SyncState.SYNCING, progress=ProgressView(12, 40, 35, 100))
    assert tooltip([syncing], amsterdam) == "m3daemon — Syncing 12/40 files (35 %)"
    by_files = replace(st, state=SyncState.SYNCING, progress=ProgressView(1, 4))
    assert tooltip([by_files], amsterdam) == "m3daemon — Syncing 1/4 files (25 %)"
    early = replace(st, state=SyncState.SYNCING, progress=ProgressView())
    assert tooltip([early], amsterdam) == "m3daemon — Syncing…"
    error = replace(st, state=SyncState.ERROR, last_error=DISK)
    assert tooltip([error], amsterdam) == "m3daemon — Error: The disk is full."
    offline = replace(st, state=SyncState.OFFLINE, next_meeting=None)
    assert tooltip([offline], amsterdam) == "m3daemon — Offline (last sync 18:05)"


def test_tooltip_several_and_cut(amsterdam: datetime) -> None:
    east = status("East", last_sync="2024-07-17T16:05:00+00:00")
    west = status("West", SyncState.SYNCING, progress=ProgressView(3, 10))
    assert tooltip([east, west], amsterdam) == (
        "m3daemon — Syncing…\nEast: Up to date (last sync 18:05)\nWest: Syncing 3/10 files (30 %)")
    many = [status(f"Congregation number {i}") for i in range(10)]
    text = tooltip(many, amsterdam)
    assert len(text) <= 127 and text.endswith("…")
    assert tooltip([]) == "m3daemon — No congregation configured"


def test_sync_percent_across_congregations() -> None:
    a = status("A", SyncState.SYNCING, progress=ProgressView(1, 2, 10, 100))
    b = status("B", SyncState.SYNCING, progress=ProgressView(0, 2, 0, 100))
    assert sync_percent([a, b]) == 5
    assert sync_percent([status()]) is None


# --- notifications -------------------------------------------------------------------------


def test_notify_when_a_failure_needing_a_person_appears() -> None:
    ok = status(last_sync="2024-07-17T16:05:00+00:00")
    bad = replace(ok, state=SyncState.ERROR, last_error=PASSWORD)
    assert notification_for(ok, bad) == (
        "East: action needed", "The server refused the password. Run m3daemon setup again.")
    assert notification_for(None, bad) is not None  # already failing when the daemon starts
    # the same failure again (retry, routine poll, a sync attempt in between): quiet
    assert notification_for(bad, bad) is None
    assert notification_for(replace(bad, state=SyncState.SYNCING), bad) is None
    # another failure that needs a person: notify again
    assert notification_for(bad, replace(bad, last_error=DISK)) == (
        "East: action needed", "The disk is full. Free some space.")


def test_no_notification_for_routine_changes() -> None:
    ok = status()
    offline = replace(ok, state=SyncState.OFFLINE, last_error=TIMEOUT)
    syncing = replace(ok, state=SyncState.SYNCING)
    assert notification_for(ok, offline) is None  # no person needed: the daemon retries
    assert notification_for(ok, replace(ok, state=SyncState.ERROR, last_error=TIMEOUT)) is None
    assert notification_for(ok, syncing) is None
    assert notification_for(syncing, replace(ok, last_result={"reason": "schedule"})) is None
    assert notification_for(syncing, replace(ok, last_result=None)) is None
    assert notification_for(ok, replace(ok, state=SyncState.PAUSED)) is None


def test_notify_media_ready_after_pre_meeting_sync() -> None:
    syncing = status(state=SyncState.SYNCING)
    done = status(last_result={"reason": "pre-meeting", "downloaded": 3})
    title, message = notification_for(syncing, done) or ("", "")
    assert title == "Media ready for the meeting"
    assert message == "East: the media folders are up to date."
    assert notification_for(done, done) is None  # only on the SYNCING → UP_TO_DATE step
    assert notification_for(None, done) is None
    with_meeting = replace(done, next_meeting=(datetime.now() + timedelta(hours=1)).isoformat())
    _title, message = notification_for(syncing, with_meeting) or ("", "")
    assert message.startswith("East: the media folders are up to date for the meeting (")


# --- icons ---------------------------------------------------------------------------------


def test_icon_per_state_is_distinct_64px_rgba() -> None:
    images = {state: icon_for(state) for state in SyncState}
    for img in images.values():
        assert img.size == (ICON_SIZE, ICON_SIZE) == (64, 64)
        assert img.mode == "RGBA"
        assert img.getpixel((0, 0))[3] == 0  # transparent corners
        assert img.getpixel((32, 32))[3] == 255
    blobs = {img.tobytes() for img in images.values()}
    assert len(blobs) == len(SyncState)


def test_icon_cache_and_progress_variants() -> None:
    assert icon_for(SyncState.UP_TO_DATE) is icon_for(SyncState.UP_TO_DATE)
    plain = icon_for(SyncState.SYNCING)
    p35 = icon_for(SyncState.SYNCING, 35)
    assert p35.tobytes() != plain.tobytes() != icon_for(SyncState.SYNCING, 80).tobytes()
    assert icon_for(SyncState.SYNCING, 37) is p35  # quantized: no redraw for every percent
    assert icon_for(SyncState.UP_TO_DATE, 50) is icon_for(SyncState.UP_TO_DATE)  # only syncing has progress
    assert [quantize_percent(p) for p in (None, -3, 0, 4, 5, 99, 100, 130)] == [None, 0, 0, 0, 5, 95, 100, 100]
    big = app_icon(128)
    assert big.size == (128, 128) and big.mode == "RGBA"


# --- the pystray adapter on the dummy backend ----------------------------------------------


class FakeIcon(pystray._base.Icon):  # type: ignore[misc]
    """pystray's abstract Icon whose loop runs queued calls (``call_soon``) until stop().

    Like a real backend, it notes every platform call made outside its loop thread.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.loop_thread: int | None = None
        self.off_loop: list[str] = []
        self.notifications: list[tuple[str | None, str]] = []
        self.menu_updates = 0

    def call_soon(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def _check(self, what: str) -> None:
        if threading.get_ident() != self.loop_thread:
            self.off_loop.append(what)

    def _show(self) -> None:
        self._check("show")

    def _hide(self) -> None:
        self._check("hide")

    def _update_icon(self) -> None:
        self._check("icon")

    def _update_title(self) -> None:
        self._check("title")

    def _update_menu(self) -> None:
        self._check("menu")
        self.menu_updates += 1

    def _notify(self, message: str, title: str | None = None) -> None:
        self._check("notify")
        self.notifications.append((title, message))

    def _remove_notification(self) -> None: ...

    def _run(self) -> None:
        self.loop_thread = threading.get_ident()
        self._mark_ready()
        while (job := self._jobs.get()) is not None:
            job()

    def _stop(self) -> None:
        self._check("stop")
        self._jobs.put(None)


class FakeControl:
    """A DaemonControl: records calls; pause/resume flip the state like the daemon would."""

    def __init__(self, statuses: list[CongregationStatus], url: str | None = None) -> None:
        self._statuses = statuses
        self.url = url
        self.calls: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def statuses(self) -> list[CongregationStatus]:
        with self.lock:
            return list(self._statuses)

    def set(self, *statuses: CongregationStatus) -> None:
        with self.lock:
            self._statuses = list(statuses)

    def _flip(self, name: str | None, state: SyncState) -> None:
        with self.lock:
            self._statuses = [replace(s, state=state) if name in (None, s.name) else s for s in self._statuses]

    def update_now(self, name: str | None = None) -> None:
        self.calls.append(("update_now", name))

    def pause(self, name: str | None = None) -> None:
        self.calls.append(("pause", name))
        self._flip(name, SyncState.PAUSED)

    def resume(self, name: str | None = None) -> None:
        self.calls.append(("resume", name))
        self._flip(name, SyncState.UP_TO_DATE)

    def quit(self) -> None:
        self.calls.append(("quit", None))

    def dashboard_url(self) -> str | None:
        return self.url

    def dashboard_launch(self, cid: int | None = None, page: str | None = None) -> str | None:
        self.calls.append(("dashboard_launch", None))
        return "file:///run/user/1000/m3daemon/dashboard-1.html" if self.url else None


class Harness:
    """A Tray whose loop runs in a thread of its own (it stands for the main thread here)."""

    def __init__(self, control: FakeControl) -> None:
        self.control = control
        self.opened: list[str] = []
        self.browsed: list[str] = []
        self.tray = Tray(control, pystray, icon_cls=FakeIcon, opener=self.opened.append,
                         browser=self.browsed.append)
        self.loop_thread: threading.Thread | None = None

    def start(self) -> None:
        self.loop_thread = threading.Thread(target=self.tray.run, name="fake-main")
        self.loop_thread.start()
        assert self.tray.wait_running(5)

    def stop(self) -> None:
        self.tray.stop()
        if self.loop_thread is not None:
            self.loop_thread.join(5)
            assert not self.loop_thread.is_alive(), "run() did not return after stop()"
        assert self.icon.off_loop == [], "icon changes outside the loop thread"

    @property
    def icon(self) -> FakeIcon:
        icon: FakeIcon = self.tray._icon
        return icon

    def item(self, label: str, menu: Any = None) -> Any:
        items = (menu if menu is not None else self.icon.menu).items
        found = [i for i in items if str(i.text) == label]
        assert found, f"no menu item {label!r} in {[str(i.text) for i in items]}"
        return found[0]

    def on_loop(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the loop thread, as a backend delivers a click, and wait for it."""
        done = threading.Event()

        def run() -> None:
            try:
                job()
            finally:
                done.set()

        self.icon.call_soon(run)
        assert done.wait(5)

    def click(self, label: str, menu: Any = None) -> None:
        """What a click does in a backend: MenuItem.__call__(icon) runs action(icon, item)."""
        item = self.item(label, menu)
        assert item.enabled
        self.on_loop(lambda: item(self.icon))
        assert self.tray.wait_idle()

    def wait_for(self, what: Callable[[], bool], timeout: float = 5.0) -> None:
        wait_until("the tray to follow the daemon's state", what, timeout, every=0.01)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(FakeControl([status(last_sync=datetime.now(UTC).isoformat())]))
    h.start()
    try:
        yield h
    finally:
        h.stop()


def test_adapter_builds_the_pystray_menu(harness: Harness) -> None:
    texts = [str(i.text) for i in harness.icon.menu.items]
    assert texts[:4] == ["Update media folders now", "Open media folder", "Open dashboard", "Pause"]
    assert texts[-1] == "Quit"
    assert harness.item("Update media folders now").default
    assert harness.icon.visible
    assert harness.tray.running and harness.tray.has_menu


def test_update_now_through_the_menu_item(harness: Harness) -> None:
    harness.click("Update media folders now")
    assert harness.control.calls == [("update_now", None)]


def test_default_action_is_update_now(harness: Harness) -> None:
    harness.on_loop(harness.icon)  # a left click on backends with a default action
    assert harness.tray.wait_idle()
    assert harness.control.calls == [("update_now", None)]


def test_pause_toggles(harness: Harness) -> None:
    harness.click("Pause")
    assert harness.control.calls == [("pause", None)]
    harness.wait_for(lambda: "Resume" in [str(i.text) for i in harness.icon.menu.items])
    assert harness.tray.icon_state == (SyncState.PAUSED, None)
    harness.click("Resume")
    assert harness.control.calls == [("pause", None), ("resume", None)]
    harness.wait_for(lambda: "Pause" in [str(i.text) for i in harness.icon.menu.items])


def test_quit_calls_quit(harness: Harness) -> None:
    harness.click("Quit")
    assert harness.control.calls == [("quit", None)]


def test_open_dashboard_disabled_until_there_is_a_url(harness: Harness) -> None:
    item = harness.item("Open dashboard")
    assert not item.enabled
    harness.on_loop(lambda: item(harness.icon))  # even if a backend let it through, nothing happens
    assert harness.tray.wait_idle() and harness.browsed == []
    harness.control.url = "http://127.0.0.1:8765/"
    harness.tray.refresh()
    harness.wait_for(lambda: harness.item("Open dashboard").enabled)
    harness.click("Open dashboard")
    # the browser gets a launch page (a 0600 file), not the address with the key
    assert harness.browsed == ["file:///run/user/1000/m3daemon/dashboard-1.html"]


def test_open_media_folder(harness: Harness) -> None:
    harness.click("Open media folder")
    assert harness.opened == ["/media/East"]


def test_refresh_redraws_icon_and_tooltip(harness: Harness) -> None:
    assert harness.tray.icon_state == (SyncState.UP_TO_DATE, None)
    assert harness.icon.icon is icon_for(SyncState.UP_TO_DATE)
    drawn: list[tuple[SyncState, int | None]] = []
    harness.tray.on_icon_change = lambda state, pct: drawn.append((state, pct))
    harness.control.set(status(state=SyncState.SYNCING, progress=ProgressView(12, 40, 35, 100)))
    harness.tray.refresh()
    harness.wait_for(lambda: harness.tray.icon_state == (SyncState.SYNCING, 35))
    assert harness.icon.icon is icon_for(SyncState.SYNCING, 35)
    assert harness.icon.title == "m3daemon — Syncing 12/40 files (35 %)"
    harness.control.set(status(state=SyncState.ERROR, last_error=DISK))
    for _ in range(20):  # bursts are coalesced
        harness.tray.refresh()
    harness.wait_for(lambda: harness.tray.icon_state == (SyncState.ERROR, None))
    assert drawn[0] == (SyncState.SYNCING, 35) and drawn[-1] == (SyncState.ERROR, None)
    assert "The disk is full." in [str(i.text) for i in harness.icon.menu.items]


def test_menu_not_rebuilt_when_nothing_changed(harness: Harness) -> None:
    harness.control.set(status(state=SyncState.SYNCING, progress=ProgressView(1, 10)))
    harness.tray.refresh()
    harness.wait_for(lambda: harness.tray.icon_state == (SyncState.SYNCING, 10))
    before = harness.icon.menu
    harness.control.set(status(state=SyncState.SYNCING, progress=ProgressView(5, 10)))
    harness.tray.refresh()
    harness.wait_for(lambda: harness.tray.icon_state == (SyncState.SYNCING, 50))
    assert harness.icon.menu is before  # progress lives in the icon and tooltip, not the menu


def test_notify_shows_a_notification(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="m3daemon.tray"):
        harness.tray.notify("Media ready for the meeting", "East: the media folders are up to date.")
    assert harness.tray.wait_idle()
    assert harness.icon.notifications == [("Media ready for the meeting", "East: the media folders are up to date.")]
    assert "Media ready for the meeting" in caplog.text


def test_several_congregations_in_submenus() -> None:
    h = Harness(FakeControl([status("East"), status("West", SyncState.OFFLINE, last_error=TIMEOUT)]))
    h.start()
    try:
        assert h.tray.icon_state == (SyncState.OFFLINE, None)
        west = h.item("West: Offline").submenu
        assert west is not None
        h.click("Update now", west)
        h.click("Pause", west)
        h.click("Open media folder", h.item("East: Up to date").submenu)
        h.click("Update media folders now")
        assert h.control.calls == [("update_now", "West"), ("pause", "West"), ("update_now", None)]
        assert h.opened == ["/media/East"]
        h.wait_for(lambda: "West: Paused" in [str(i.text) for i in h.icon.menu.items])
        assert h.tray.icon_state == (SyncState.PAUSED, None)
    finally:
        h.stop()


def test_stop_from_another_thread_ends_every_thread() -> None:
    h = Harness(FakeControl([status()]))
    before = set(threading.enumerate())
    h.start()
    stopper = threading.Thread(target=h.tray.stop)
    stopper.start()
    stopper.join(5)
    h.stop()  # idempotent; run() returned
    assert not h.tray.running
    h.wait_for(lambda: not (set(threading.enumerate()) - before - {stopper}))
    h.tray.refresh()  # harmless after stop
    h.tray.notify("t", "m")


def test_a_stop_before_the_loop_is_up_still_ends_the_loop() -> None:
    """Quit while the icon is starting: run() must still return (it raises: no icon was shown)."""
    h = Harness(FakeControl([status()]))
    h.tray.stop()  # before run(): nothing to hand the stop to yet
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            h.tray.run()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    loop = threading.Thread(target=run, name="fake-main", daemon=True)
    loop.start()
    loop.join(5)
    assert not loop.is_alive(), "run() did not return: the early stop was lost"
    assert len(outcome) == 1 and isinstance(outcome[0], tray_mod.TrayUnavailable)
    assert h.icon.off_loop == []


def test_a_failing_action_does_not_end_the_tray(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    def boom(name: str | None = None) -> None:
        raise RuntimeError("boom")

    harness.control.update_now = boom  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="m3daemon.tray"):
        harness.click("Update media folders now")
    assert "tray action failed" in caplog.text
    harness.click("Quit")
    assert harness.control.calls == [("quit", None)]


def test_xorg_titles_are_latin1() -> None:
    """python-xlib writes the xorg backend's title as a Latin-1 window name: "—" would raise."""
    tray = Tray(FakeControl([]), pystray, backend="xorg", icon_cls=FakeIcon)
    assert tray._shown_title("m3daemon — Syncing… Zoë ✓") == "m3daemon - Syncing... Zoë ?"
    assert Tray(FakeControl([]), pystray, icon_cls=FakeIcon)._shown_title("a — b") == "a — b"


# --- run_tray: when there is no tray ------------------------------------------------------


def test_run_tray_no_tray_flag(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="m3daemon.tray"):
        assert run_tray(FakeControl([status()]), threading.Event(), no_tray=True) is False
    assert [r.getMessage() for r in caplog.records] == ["tray icon disabled (--no-tray)"]


def test_run_tray_without_display(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(tray_mod.sys, "platform", "linux")
    with caplog.at_level(logging.INFO, logger="m3daemon.tray"):
        assert run_tray(FakeControl([status()]), threading.Event()) is False
    assert len(caplog.records) == 1
    assert "no display" in caplog.records[0].getMessage()


def test_run_tray_when_no_backend_works(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The dummy backend cannot run: run_tray says so once and leaves no thread behind."""
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    before = set(threading.enumerate())
    with caplog.at_level(logging.INFO, logger="m3daemon.tray"):
        assert run_tray(FakeControl([status()]), threading.Event()) is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no tray backend works here" in warnings[0] and "dummy" in warnings[0]
    # pystray's setup thread ends; a non-daemon thread would keep the daemon from exiting
    wait_until("no non-daemon thread to be left", lambda: not {t for t in set(threading.enumerate()) - before
                                                               if not t.daemon}, 5, every=0.01)


def test_run_tray_import_failure_is_guarded(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """An unknown backend makes ``import pystray`` raise; run_tray returns and the daemon runs on without a tray."""
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.setenv("PYSTRAY_BACKEND", "nosuchbackend")
    saved = {n: m for n, m in sys.modules.items() if n == "pystray" or n.startswith("pystray.")}
    try:
        with caplog.at_level(logging.INFO, logger="m3daemon.tray"):
            assert run_tray(FakeControl([status()]), threading.Event()) is False
    finally:
        sys.modules.update(saved)
    assert "nosuchbackend" in caplog.text


# --- opening a folder ----------------------------------------------------------------------


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="xdg-open is the Linux opener")
def test_open_path_runs_xdg_open_without_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log_file = tmp_path / "opened.txt"
    fake = bin_dir / "xdg-open"
    fake.write_text(f'#!/bin/sh\nsleep 1\nprintf "%s" "$1" > "{log_file}"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    media = tmp_path / "media"
    media.mkdir()
    started = time.monotonic()
    open_path(str(media / "not-there-yet"))  # opens the nearest existing folder
    assert time.monotonic() - started < 0.8  # did not wait for the opener
    wait_until("the opener to run", lambda: log_file.exists() and log_file.read_text(), 10)
    assert log_file.read_text() == str(media)


def test_open_path_without_opener_only_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tray_mod.sys, "platform", "linux")
    with caplog.at_level(logging.WARNING, logger="m3daemon.tray"):
        open_path(str(tmp_path))
    assert "cannot open" in caplog.text


# --- a file in use (Windows): the menu and the tooltip say which one waits -------------------


def test_the_menu_and_tooltip_name_the_file_that_waits_for_m3_to_let_go() -> None:
    talk = f"{date.today().isoformat()}/talk.mp4"
    one = status(waiting=[talk])
    assert f"In use, updated after the meeting: {talk}" in labels(build_menu([one], None))
    assert tooltip([one]) == f"m3daemon — Up to date\nIn use, updated after the meeting: {talk}"
    many = status("West", waiting=[f"{date.today().isoformat()}/{n}.jpg" for n in "abcde"])
    sub = find(build_menu([status(), many], None), "West: Up to date").submenu
    assert sub is not None
    line = next(i.label for i in sub if i.label.startswith("In use, updated after the meeting: "))
    assert len(line) <= 80 and line.endswith("…") and f"{date.today().isoformat()}/a.jpg" in line
    assert "\nWest: In use, updated after the meeting: " in tooltip([status(), many])  # cut at 127 (Windows)
    assert not any("in use" in i for i in labels(build_menu([status()], None)))
