"""When the daemon syncs: before each meeting, on a coalesced misfire, never two at once."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from m3daemon.core.meetings import MeetingDays
from m3daemon.daemon.runner import CongregationRunner
from m3daemon.daemon.schedule import Scheduler, WakeDetector, pre_meeting_times
from m3daemon.engine.status import SyncState
from m3daemon.engine.sync import SyncReport
from m3daemon.errors import CredentialsError, ServerUnreachableError
from m3daemon.settings.config import ConnectionConfig, default_config

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 2026-11-23, 08:00 in Berlin
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=BERLIN)


def days(mw: int | None, mw_t: str | None, we: int | None, we_t: str | None, co: date | None = None) -> MeetingDays:
    return MeetingDays.from_prefs({"meeting.mwDay": mw, "meeting.mwStartTime": mw_t, "meeting.weDay": we,
                                   "meeting.weStartTime": we_t, "meeting.coWeek": co.isoformat() if co else None})


@pytest.mark.parametrize("what, md, lead, expected", [
    ("Thursday 19:00 and Sunday 10:00, an hour before",
     days(3, "19:00", 6, "10:00"), 60, ["2026-11-26 18:00", "2026-11-29 09:00"]),
    ("Tuesday 18:30, 45 minutes before",
     days(1, "18:30", None, None), 45, ["2026-11-24 17:45"]),
    ("a meeting at 00:30 on Wednesday: the sync is on Tuesday evening",
     days(2, "00:30", None, None), 60, ["2026-11-24 23:30"]),
    ("a Monday meeting at 09:00 with a two-hour lead: already past today, next week's remains",
     days(0, "09:00", None, None), 120, ["2026-11-30 07:00"]),
    ("circuit-overseer week: midweek moves from Thursday to Tuesday",
     days(3, "19:00", 6, "10:00", co=date(2026, 11, 27)), 60, ["2026-11-24 18:00", "2026-11-29 09:00"]),
    ("no meeting days known: no pre-meeting syncs",
     days(None, None, None, None), 60, []),
])
def test_pre_meeting_sync_times(what: str, md: MeetingDays, lead: int, expected: list[str]) -> None:
    times = pre_meeting_times(md, NOW, timedelta(minutes=lead), BERLIN, horizon=timedelta(days=7))
    assert [t.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") for t, _m in times] == expected


def test_a_run_missed_while_asleep_happens_once_on_wake() -> None:
    """A poll due 10 minutes ago (the computer slept through three runs) runs exactly once."""
    runs: list[datetime] = []
    ran = threading.Event()
    sched = Scheduler(ZoneInfo("UTC"))

    def job() -> None:
        runs.append(datetime.now())
        ran.set()

    past = datetime.now(ZoneInfo("UTC")) - timedelta(minutes=10)
    sched.every("poll", 180, job, first=past)
    sched.start()
    try:
        assert ran.wait(5)
        # The next run is a whole interval away: nothing else may run now.
        assert not threading.Event().wait(0.5)  # an absence is observed over time; no event to await
        assert len(runs) == 1
        nxt = sched.next_run("poll")
        # The interval keeps its phase: 12 minutes after the missed slot, in about 2 minutes.
        assert nxt is not None and nxt > datetime.now(ZoneInfo("UTC")) + timedelta(seconds=60)
    finally:
        sched.shutdown()


def test_the_wake_detector_notices_a_jump_of_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    woke: list[float] = []
    det = WakeDetector(woke.append)
    from m3daemon.daemon import schedule

    real = schedule.time.time
    monkeypatch.setattr(schedule.time, "time", lambda: real() + 3600)
    det.tick()
    assert len(woke) == 1 and woke[0] > 3500


class GatedSync:
    """A sync that waits for the test to let it finish, and counts its runs."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.runs = 0
        self.running = 0
        self.max_running = 0
        self.fail_with: list[Exception] = []

    def __call__(self, cfg: Any, **kw: Any) -> SyncReport:
        self.runs += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.release()
        try:
            assert self.release.acquire(timeout=10)
            if self.fail_with:
                raise self.fail_with.pop(0)
            return SyncReport(downloaded=1)
        finally:
            self.running -= 1


@pytest.fixture
def cfg(tmp_path: Path) -> Any:
    """A congregation that is set up (the fake syncs never contact the address)."""
    conn = ConnectionConfig(url="https://dav.example.org", username="av", folder="/Cong")
    return replace(default_config(tmp_path / "cong.toml"), connection=conn)


def test_a_congregation_not_set_up_yet_never_syncs(tmp_path: Path) -> None:
    sync = GatedSync()
    runner = CongregationRunner(default_config(tmp_path / "new.toml"), sync_fn=sync)
    assert runner.request_sync("manual", force=True) == 0
    assert runner.status().state is SyncState.NOT_CONFIGURED and sync.runs == 0


def test_update_now_during_a_sync_makes_exactly_one_more_sync(cfg: Any) -> None:
    sync = GatedSync()
    runner = CongregationRunner(cfg, sync_fn=sync)
    runner.start()
    try:
        runner.request_sync("start")
        assert sync.started.acquire(timeout=5)
        seqs = [runner.request_sync("manual", force=True) for _ in range(3)]
        sync.release.release()  # the first sync ends
        assert sync.started.acquire(timeout=5)  # exactly one more starts
        sync.release.release()
        assert runner.wait_for(seqs[-1], timeout=5)
        assert sync.runs == 2 and sync.max_running == 1
        assert runner.status().state is SyncState.UP_TO_DATE
    finally:
        runner.stop()


def test_offline_then_back_by_itself(cfg: Any) -> None:
    sync = GatedSync()
    sync.fail_with = [ServerUnreachableError("down", "wait")]
    states: list[SyncState] = []
    runner = CongregationRunner(cfg, sync_fn=sync, backoff=(0.05,), on_change=lambda r: states.append(r.state))
    runner.start()
    try:
        seq = runner.request_sync("start")
        sync.release.release()
        assert runner.wait_for(seq, timeout=5)
        assert runner.status().state is SyncState.OFFLINE
        sync.release.release()  # the retry, after the back-off, succeeds
        assert sync.started.acquire(timeout=5) and sync.started.acquire(timeout=5)
        assert runner.wait_for(seq + 1, timeout=5)
        assert runner.status().state is SyncState.UP_TO_DATE and runner.status().last_error is None
        assert SyncState.OFFLINE in states
    finally:
        runner.stop()


def test_a_wrong_password_is_an_error_a_person_must_fix(cfg: Any) -> None:
    sync = GatedSync()
    sync.fail_with = [CredentialsError("refused", "check it")]
    runner = CongregationRunner(cfg, sync_fn=sync)
    runner.start()
    try:
        seq = runner.request_sync("start")
        sync.release.release()
        assert runner.wait_for(seq, timeout=5)
        st = runner.status()
        assert st.state is SyncState.ERROR and st.last_error is not None and st.last_error.needs_person
    finally:
        runner.stop()


def test_pause_skips_scheduled_syncs_and_survives_a_restart(cfg: Any) -> None:
    sync = GatedSync()
    runner = CongregationRunner(cfg, sync_fn=sync)
    runner.pause()
    assert runner.request_sync("poll") == 0
    again = CongregationRunner(cfg, sync_fn=sync)
    assert again.paused and again.status().state is SyncState.PAUSED
    again.resume()
    assert not CongregationRunner(cfg, sync_fn=sync).paused


# --- one clock per congregation ---------------------------------------------------------------

KIRITIMATI, PAGO_PAGO = ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")  # UTC+14, UTC-11
# Thursday 2036-01-03, 12:00 UTC: already Friday 02:00 in Kiritimati, still Thursday 01:00 in Pago Pago.
# (Years ahead, so the scheduler's real timers for these meetings cannot fire during the test.)
INSTANT = datetime(2036, 1, 3, 12, 0, tzinfo=ZoneInfo("UTC"))


class RecordingSync:
    """Remembers the "today" each congregation's sync was given; signals once all have synced."""

    def __init__(self, expected: int) -> None:
        self.today: dict[str, date] = {}
        self.expected = expected
        self.all_synced = threading.Event()

    def __call__(self, cfg: Any, **kw: Any) -> SyncReport:
        self.today[cfg.name] = kw["today"]
        if len(self.today) >= self.expected:
            self.all_synced.set()
        return SyncReport()


def test_two_congregations_far_apart_each_sync_by_their_own_day_and_meeting_time(tmp_path: Path) -> None:
    """One daemon, a congregation in Kiritimati and one in Pago Pago, both meeting Thursday 19:00.
    Each gets its own "today" for its sync and its own pre-meeting sync an hour before its own meeting."""
    from m3daemon.daemon.app import Daemon
    from m3daemon.settings.config import ScheduleConfig

    conn = ConnectionConfig(url="https://dav.example.org", username="av", folder="/Cong")
    thursday_evening = {"meeting.mwDay": 3, "meeting.mwStartTime": "19:00"}
    configs = [
        replace(default_config(tmp_path / f"{name}.toml"), connection=conn, prefs=thursday_evening,
                schedule=ScheduleConfig(timezone=zone.key))
        for name, zone in (("kiritimati", KIRITIMATI), ("pago-pago", PAGO_PAGO))
    ]
    sync = RecordingSync(expected=2)
    daemon = Daemon(configs, no_tray=True, sync_fn=sync, watch=False, time_source=lambda: INSTANT)
    daemon.start()
    try:
        assert sync.all_synced.wait(10)
        assert daemon.scheduler is not None
        pre = {c.name: daemon.scheduler.next_run(f"pre:{c.path}:") for c in configs}
        meetings = {s.name: s.next_meeting for s in daemon.statuses()}
    finally:
        daemon.shutdown()
    assert sync.today == {"kiritimati": date(2036, 1, 4), "pago-pago": date(2036, 1, 3)}
    # Kiritimati's Thursday has passed: its next meeting is a week on; Pago Pago's is this evening.
    assert meetings == {"kiritimati": "2036-01-10T19:00:00+14:00", "pago-pago": "2036-01-03T19:00:00-11:00"}
    assert pre["kiritimati"] == datetime(2036, 1, 10, 18, 0, tzinfo=KIRITIMATI)
    assert pre["pago-pago"] == datetime(2036, 1, 3, 18, 0, tzinfo=PAGO_PAGO)
    assert pre["pago-pago"] is not None and pre["pago-pago"].utcoffset() == timedelta(hours=-11)
