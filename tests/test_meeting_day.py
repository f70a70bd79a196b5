"""The meeting itself, end to end against a real WebDAV server (WsgiDAV): nothing in the meeting's
folder moves while it runs, downloads stay polite, and each coming meeting says whether it is ready.

Time is given to the sync (``now``), or to the daemon's clocks, so no test waits for a meeting.
"""

from __future__ import annotations

import json
import os
import threading
import time as clock
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from dashhelpers import csrf_of, dashboard_of
from member import Member, day, run_cli
from servers import DavServer, make_tree

from m3daemon.engine.clock import Clock
from m3daemon.engine.context import clock_for
from m3daemon.engine.sync import SyncReport
from m3daemon.i18n import time_text, weekday_name

FOLDER = "/dav/Cong"
D = day(1)  # the meeting's date: tomorrow, Thursday-like, 19:00 to 21:00


def bump(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    later = clock.time() + 5
    os.utime(tmp, (later, later))
    os.replace(tmp, path)


@pytest.fixture
def hall(wsgidav_server: DavServer, isolated_env: Path) -> Member:
    make_tree(wsgidav_server.root / "Cong", {
        f"Media/{D.isoformat()}/Talk.mp4": b"v1" * 500,
        f"Media/{D.isoformat()}/Old.jpg": b"old",
    })
    return Member.create(isolated_env, wsgidav_server.url, FOLDER, wsgidav_server.username,
                         wsgidav_server.password, wsgidav_server.ca_file,
                         prefs={"meeting.mwDay": D.weekday(), "meeting.mwStartTime": "19:00"})


def at(m: Member, d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=clock_for(m.config).tz)


def cong(server: DavServer) -> Path:
    return server.root / "Cong"


def test_during_the_meeting_nothing_in_its_folder_is_removed_or_replaced(
    wsgidav_server: DavServer, hall: Member
) -> None:
    """Before: a file the coordinator replaced or removed at 19:30 vanished from the running meeting
    (M³ 25+ drops an unlinked file). After: it stays until 21:00; new files still arrive."""
    assert hall.update(today=D, now=at(hall, D, 18)).ok
    talk = hall.media / D.isoformat() / "Talk.mp4"
    bump(cong(wsgidav_server) / "Media" / D.isoformat() / "Talk.mp4", b"v2" * 700)
    (cong(wsgidav_server) / "Media" / D.isoformat() / "Old.jpg").unlink()
    (cong(wsgidav_server) / "Media" / D.isoformat() / "New.jpg").write_bytes(b"new")

    during = hall.update(today=D, now=at(hall, D, 19, 30))
    assert during.ok
    assert hall.files() == {f"{D}/Talk.mp4": b"v1" * 500, f"{D}/Old.jpg": b"old", f"{D}/New.jpg": b"new"}
    assert [(h["path"], h["change"]) for h in during.held_for_meeting] == [
        (f"{D}/Talk.mp4", "replace"), (f"{D}/Old.jpg", "delete")]
    assert {h["until"] for h in during.held_for_meeting} == {at(hall, D, 21).isoformat()}
    assert [m["kind"] for m in during.meetings_running] == ["midweek"]
    assert any("A meeting is running: 2 changes" in w for w in during.warnings)
    # a later sync in the meeting downloads nothing again and still holds them
    again = hall.update(today=D, now=at(hall, D, 20, 45))
    assert again.downloaded == 0 and len(again.held_for_meeting) == 2 and talk.read_bytes() == b"v1" * 500

    after = hall.update(today=D, now=at(hall, D, 21))
    assert after.ok and not after.held_for_meeting and not after.meetings_running
    assert hall.files() == {f"{D}/Talk.mp4": b"v2" * 700, f"{D}/New.jpg": b"new"}


def test_update_now_during_the_meeting_applies_the_held_changes_when_asked(
    wsgidav_server: DavServer, hall: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hall.update(today=D, now=at(hall, D, 18)).ok
    (cong(wsgidav_server) / "Media" / D.isoformat() / "Old.jpg").unlink()
    during = at(hall, D, 19, 30)
    monkeypatch.setattr("m3daemon.engine.sync.clock_for", lambda cfg: Clock(during.tzinfo, lambda: during))  # type: ignore[arg-type]
    rc, out, err = run_cli(hall, "update")  # not a terminal: it says how, and asks nothing
    assert rc == 0, out + err
    assert "A meeting is running: 1 change in its folder waits until it ends at" in out
    assert f"remove   {D}/Old.jpg" in out and "To apply them now: m3daemon update --during-meeting" in out
    assert (hall.media / D.isoformat() / "Old.jpg").exists()
    rc, out, err = run_cli(hall, "update", "--during-meeting")
    assert rc == 0, out + err
    assert not (hall.media / D.isoformat() / "Old.jpg").exists()


def test_scheduled_downloads_during_a_meeting_keep_to_the_meeting_limit(
    wsgidav_server: DavServer, hall: Member
) -> None:
    """`[schedule] meeting_bandwidth_limit_kbps = 1600` (200 kB/s): 600 kB take at least 2 s during
    a meeting, and go at full speed outside it."""
    hall.config_path.write_text(hall.config_path.read_text() + "\n[schedule]\nmeeting_bandwidth_limit_kbps = 1600\n")
    for n in range(3):
        (cong(wsgidav_server) / "Media" / D.isoformat() / f"clip{n}.mp4").write_bytes(bytes([n]) * 200_000)
    started = clock.monotonic()
    assert hall.update(today=D, now=at(hall, D, 19, 30)).ok
    during = clock.monotonic() - started
    for n in range(3):
        (cong(wsgidav_server) / "Media" / D.isoformat() / f"more{n}.mp4").write_bytes(bytes([n]) * 200_000)
    started = clock.monotonic()
    assert hall.update(today=D, now=at(hall, D, 22)).ok
    outside = clock.monotonic() - started
    assert during >= 2.0, during
    assert outside < 1.5, outside


def test_status_says_how_many_files_of_the_next_meeting_are_ready(hall: Member) -> None:
    """Before: nothing said that a meeting's file was missing until someone looked in M³.
    After: `status` says "Thursday 19:00 — 2 of 3 files ready (missing: Old.jpg)"."""
    assert hall.update().ok
    (hall.media / D.isoformat() / "Old.jpg").unlink()  # gone since (by hand, or it failed)
    proc = hall.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    [first, *_rest] = json.loads(proc.stdout)["readiness"]
    assert first["date"] == D.isoformat() and first["wanted"] == 2 and first["ready"] == 1
    assert first["missing"] == ["Old.jpg"] and not first["complete"]
    start = at(hall, D, 19).astimezone()
    line = f"{weekday_name(start)} {time_text(start)} — 1 of 2 files ready"  # "Thursday 7:00 PM — …"
    assert first["text"] == line
    assert f"{line} (missing: Old.jpg)" in hall.cli("status").stdout


class Notes:
    """The tray, as far as the daemon's notifications go."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def refresh(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def notify(self, title: str, message: str) -> None:
        with self.lock:
            self.notes.append((title, message))


def test_one_notification_when_a_coming_meeting_misses_media(hall: Member) -> None:
    """Half an hour before the meeting, with a file missing and the server unreachable: one
    notification names the file and what to do; the next syncs stay quiet."""
    from m3daemon.daemon.app import Daemon
    from m3daemon.errors import ServerUnreachableError

    assert hall.update().ok
    (hall.media / D.isoformat() / "Talk.mp4").unlink()
    instant = at(hall, D, 18, 30)
    calls: list[int] = []

    def offline(cfg: Any, **kw: Any) -> SyncReport:
        calls.append(1)
        raise ServerUnreachableError("The server dav.example.org cannot be reached.",
                                "Check the internet connection; m3daemon tries again by itself.")

    daemon = Daemon([hall.config], no_tray=True, sync_fn=offline, watch=False, time_source=lambda: instant)
    notes = Notes()
    daemon.tray = notes
    daemon.start()
    try:
        runner = next(iter(daemon.runners.values()))
        deadline = clock.monotonic() + 10
        while not calls and clock.monotonic() < deadline:
            clock.sleep(0.02)
        for _ in range(2):
            runner.wait_for(runner.request_sync("manual", force=True), timeout=10)
    finally:
        daemon.shutdown()
    missing = [n for n in notes.notes if "media missing" in n[0]]
    assert len(missing) == 1, notes.notes
    title, message = missing[0]
    assert time_text(at(hall, D, 19).astimezone()) in title
    assert "1 of 2 files are ready; missing: Talk.mp4." in message
    assert "cannot be reached" in message and "What to do: Check the internet connection" in message


def test_the_dashboard_shows_what_is_held_and_ready_and_applies_when_asked(
    wsgidav_server: DavServer, hall: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One computer's dashboard during the meeting: the held changes with *Apply them now*, each
    coming meeting's readiness, a file M³ never shows, and the circuit overseer's part refused."""
    from m3daemon.daemon.app import Daemon

    assert hall.update(today=D, now=at(hall, D, 18)).ok
    folder = cong(wsgidav_server) / "Media" / D.isoformat()
    bump(folder / "Talk.mp4", b"v2" * 700)
    (folder / "Old.jpg").unlink()
    (folder / "Notes.docx").write_bytes(b"PK\x03\x04 notes")
    monkeypatch.setenv("M3DAEMON_PASSWORD", hall.password)
    during = at(hall, D, 19, 30)
    daemon = Daemon([hall.config], no_tray=True, watch=False, time_source=lambda: during)
    daemon.start()
    try:
        runner = next(iter(daemon.runners.values()))
        assert runner.wait_for(1, timeout=20), "the first sync"
        assert runner.held_for_meeting, runner.status()
        with dashboard_of(daemon) as (web, base, text):
            assert "A meeting is running: 2 changes in its folder wait until it ends" in text
            assert f"{D}/Talk.mp4" in text and "Apply them now" in text
            assert "M³ is showing this folder now. Apply the changes anyway?" in text  # the page asks
            assert "— 3 of 3 files ready" in text  # the held ones are still there, the new one came
            token = csrf_of(text)
            upcoming = web.get("/c/0/upcoming").text
            assert "M³ 25+ never shows this file" in upcoming
            refused = web.post("/c/0/manage/upload", data={"csrf_token": token, "date": D.isoformat(),
                                                          "section": "circuit-overseer"},
                               files={"file": ("Slides.jpg", b"jpeg")},
                               headers={"Origin": base, "X-Requested-With": "m3daemon"})
            assert refused.status_code == 400
            assert "cannot put a file in the part 'circuit-overseer'" in refused.json()["message"]
            done = runner.completed_seq
            applied = web.post("/c/0/apply-held", data={"csrf_token": token}, headers={"Origin": base})
            assert applied.status_code in (202, 303)
            assert runner.wait_for(done + 1, timeout=20)
    finally:
        daemon.shutdown()
    assert hall.files() == {f"{D}/Talk.mp4": b"v2" * 700, f"{D}/Notes.docx": b"PK\x03\x04 notes"}


def test_the_changes_held_for_a_meeting_are_applied_by_a_sync_at_its_end(tmp_path: Path) -> None:
    """The daemon plans one sync for the end of the meeting when a sync held changes back."""
    from dataclasses import replace as with_

    from m3daemon.daemon.runner import CongregationRunner
    from m3daemon.engine.clock import system_time
    from m3daemon.settings.config import default_config
    from m3daemon.settings.values import ConnectionConfig

    cfg = with_(default_config(tmp_path / "c.toml"),
                connection=ConnectionConfig(url="https://dav.example.org", username="av", folder="/Cong"))
    ends = system_time() + timedelta(seconds=0.5)
    calls: list[dict[str, Any]] = []

    def sync(cfg: Any, **kw: Any) -> SyncReport:
        calls.append(kw)
        held = [{"path": "2026-12-03/Talk.mp4", "change": "replace", "until": ends.isoformat()}] if len(calls) == 1 else []
        return SyncReport(held_for_meeting=held)

    runner = CongregationRunner(cfg, sync_fn=sync)
    runner.start()
    try:
        assert runner.wait_for(runner.request_sync("poll"), timeout=5)
        assert runner.status().held_for_meeting
        assert runner.wait_for(2, timeout=5)  # nobody asked: the meeting's end did
    finally:
        runner.stop()
    assert len(calls) == 2 and runner.last_result is not None and runner.last_result["reason"] == "after-meeting"
    assert not runner.status().held_for_meeting
