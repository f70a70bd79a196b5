"""The meeting rules as a table of times: when a meeting runs, and what a sync holds back meanwhile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from m3daemon.core.meetings import MeetingDays
from m3daemon.core.meetingtime import hold_for_meetings, running_meetings
from m3daemon.core.model import RemoteFile
from m3daemon.core.planner import Copy, Delete, Existing, Fetch, Placed, Plan, RemoveDir, Trash

BERLIN = ZoneInfo("Europe/Berlin")
PAGO = ZoneInfo("Pacific/Pago_Pago")  # UTC-11
KIRI = ZoneInfo("Pacific/Kiritimati")  # UTC+14
TWO_HOURS = timedelta(hours=2)

# Thursday 19:00 midweek, Sunday 10:00 weekend; week of Monday 2026-12-07.
HALL = MeetingDays(mw_day=3, mw_time=time(19, 0), we_day=6, we_time=time(10, 0))
LATE = MeetingDays(mw_day=3, mw_time=time(23, 0))  # a meeting that runs past midnight
CO_WEEK = MeetingDays(mw_day=3, mw_time=time(19, 0), we_day=6, we_time=time(10, 0), co_week=date(2026, 12, 9))


@dataclass(frozen=True)
class Row:
    id: str
    days: MeetingDays
    now: datetime
    running: list[tuple[str, str]]  # (kind, date of the meeting)
    length: timedelta = TWO_HOURS


def at(y: int, m: int, d: int, hh: int, mm: int = 0, tz: ZoneInfo = BERLIN) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz)


ROWS = [
    Row("an hour before the midweek meeting: nothing runs", HALL, at(2026, 12, 10, 18), []),
    Row("the minute it starts", HALL, at(2026, 12, 10, 19), [("midweek", "2026-12-10")]),
    Row("in the middle", HALL, at(2026, 12, 10, 20, 15), [("midweek", "2026-12-10")]),
    Row("one minute before its end", HALL, at(2026, 12, 10, 20, 59), [("midweek", "2026-12-10")]),
    Row("at its end it is over", HALL, at(2026, 12, 10, 21), []),
    Row("a longer meeting (150 minutes) is still on at 21:00", HALL, at(2026, 12, 10, 21),
        [("midweek", "2026-12-10")], timedelta(minutes=150)),
    Row("weekend meeting, Sunday 11:30", HALL, at(2026, 12, 13, 11, 30), [("weekend", "2026-12-13")]),
    Row("weekend meeting day, after it", HALL, at(2026, 12, 13, 12), []),
    Row("Thursday 19:00 in the circuit overseer's week: no meeting (it moved to Tuesday)", CO_WEEK,
        at(2026, 12, 10, 19, 30), []),
    Row("Tuesday 19:30 in the circuit overseer's week", CO_WEEK, at(2026, 12, 8, 19, 30),
        [("midweek", "2026-12-08")]),
    Row("the weekend meeting of the circuit overseer's week does not move", CO_WEEK, at(2026, 12, 13, 10),
        [("weekend", "2026-12-13")]),
    Row("across midnight: 23:00 Thursday, at 00:30 Friday it still runs, on Thursday's folder", LATE,
        at(2026, 12, 11, 0, 30), [("midweek", "2026-12-10")]),
    Row("across midnight: over at 01:00", LATE, at(2026, 12, 11, 1), []),
    Row("the same instant in Pago Pago: Thursday 19:30 there, the meeting runs", HALL,
        at(2026, 12, 10, 19, 30, PAGO), [("midweek", "2026-12-10")]),
    Row("the same instant in Kiritimati: already Friday 20:30, nothing runs", HALL,
        at(2026, 12, 10, 19, 30, PAGO).astimezone(KIRI), []),
    Row("Kiritimati's own Thursday 19:30", HALL, at(2026, 12, 10, 19, 30, KIRI), [("midweek", "2026-12-10")]),
    Row("meeting days not set: never a meeting", MeetingDays(), at(2026, 12, 10, 19, 30), []),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_when_a_meeting_runs(row: Row) -> None:
    tz = row.now.tzinfo
    assert tz is not None
    found = running_meetings(row.days, row.now, tz, row.length)
    assert [(w.kind, w.day.isoformat()) for w in found] == row.running


# --- what is held --------------------------------------------------------------------------------

WHEN = running_meetings(HALL, at(2026, 12, 10, 19, 30), BERLIN, TWO_HOURS)[0]
DAY = "2026-12-10"


def rf(name: str, etag: str = "e2", folder: str = "Media/Recurring") -> RemoteFile:
    return RemoteFile((*folder.split("/"), name), 10, etag)


def row(path: str) -> Placed:
    return Placed(path, 10, 1, "e1", "Media/x")


def test_during_a_meeting_new_files_come_in_and_nothing_leaves_or_changes() -> None:
    year = rf("year.mp4")
    plan = Plan(actions=[
        Fetch(rf("new.jpg", folder=f"Media/{DAY}"), f"{DAY}/new.jpg", Existing.NOTHING, "dated"),
        Fetch(rf("talk.mp4", folder=f"Media/{DAY}"), f"{DAY}/talk.mp4", Existing.OURS, "dated"),
        Fetch(year, f"{DAY}/year.mp4", Existing.OURS, "recurring"),
        Copy(f"{DAY}/year.mp4", year, "2026-12-13/year.mp4", Existing.OURS, "recurring"),
        Copy(f"{DAY}/year.mp4", year, "2026-12-17/year.mp4", Existing.OURS, "recurring"),
        Delete(f"{DAY}/old.jpg", "gone", 10, 1),
        Trash(f"{DAY}/hidden.jpg", "hidden"),
        Delete("2026-12-13/old.jpg", "gone", 10, 1),
    ])
    rows = {p: row(p) for p in (f"{DAY}/talk.mp4", f"{DAY}/year.mp4", f"{DAY}/old.jpg")}
    held = hold_for_meetings(plan, rows, [(DAY, WHEN)])
    assert [(h.path, h.change) for h in held] == [
        (f"{DAY}/talk.mp4", "replace"), (f"{DAY}/year.mp4", "replace"),
        (f"{DAY}/old.jpg", "delete"), (f"{DAY}/hidden.jpg", "delete"),
    ]
    assert {h.until for h in held} == {at(2026, 12, 10, 21)}
    kinds = [(type(a).__name__, getattr(a, "target", getattr(a, "path", "")), getattr(a, "source", None))
             for a in plan.actions]
    assert kinds == [
        ("Fetch", f"{DAY}/new.jpg", None),
        # the recurring file's new version: its source in the meeting's folder keeps the old one
        ("Fetch", "2026-12-13/year.mp4", None),
        ("Copy", "2026-12-17/year.mp4", "2026-12-13/year.mp4"),
        ("Delete", "2026-12-13/old.jpg", None),
    ]
    assert sorted(r.path for r in plan.keep) == sorted(rows)


def test_a_meeting_past_midnight_keeps_yesterdays_folder() -> None:
    late = running_meetings(LATE, at(2026, 12, 11, 0, 30), BERLIN, TWO_HOURS)[0]
    plan = Plan(actions=[Delete(f"{DAY}/a.jpg", "past", 10, 1), RemoveDir(DAY)])
    held = hold_for_meetings(plan, {f"{DAY}/a.jpg": row(f"{DAY}/a.jpg")}, [(DAY, late)])
    assert [(h.path, h.change) for h in held] == [(f"{DAY}/a.jpg", "delete")]
    assert plan.actions == []


def test_nothing_is_held_without_a_running_meeting() -> None:
    plan = Plan(actions=[Delete(f"{DAY}/a.jpg", "gone", 10, 1)])
    assert hold_for_meetings(plan, {}, []) == []
    assert len(plan.actions) == 1
