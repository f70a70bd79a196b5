"""Meeting dates and start times, from the congregation's settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from m3daemon.core.meetings import Meeting, MeetingDays, meeting_dates, meetings_between, week_start

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)  # M³ numbering: 0 = Monday
PARIS = ZoneInfo("Europe/Paris")

# The week of Monday 15 July 2024 … Sunday 21 July 2024.
JUL = {d: date(2024, 7, d) for d in range(1, 32)}

WED_SUN = MeetingDays(mw_day=WED, mw_time=time(19, 30), we_day=SUN, we_time=time(10, 0))


# --- from the settings ---------------------------------------------------------------------------

FROM_PREFS: list[tuple[str, dict[str, Any], MeetingDays]] = [
    ("nothing-set", {}, MeetingDays()),
    ("all-null", {"meeting.mwDay": None, "meeting.weDay": None, "meeting.coWeek": None}, MeetingDays()),
    (
        "full",
        {"meeting.mwDay": 2, "meeting.mwStartTime": "19:30", "meeting.weDay": 6,
         "meeting.weStartTime": "10:00", "meeting.coWeek": "2024-07-15"},
        MeetingDays(WED, time(19, 30), SUN, time(10, 0), date(2024, 7, 15)),
    ),
    ("days-without-times", {"meeting.mwDay": 1, "meeting.weDay": 5}, MeetingDays(mw_day=TUE, we_day=SAT)),
    ("weekend-only", {"meeting.weDay": 6, "meeting.weStartTime": "9:45"}, MeetingDays(we_day=SUN, we_time=time(9, 45))),
    ("unrelated-keys-ignored", {"media.lang": "F", "meeting.mwDay": 0}, MeetingDays(mw_day=MON)),
]


@pytest.mark.parametrize(("prefs", "expected"), [r[1:] for r in FROM_PREFS], ids=[r[0] for r in FROM_PREFS])
def test_from_prefs(prefs: dict[str, Any], expected: MeetingDays) -> None:
    assert MeetingDays.from_prefs(prefs) == expected


@pytest.mark.parametrize(
    ("prefs", "key"),
    [({"meeting.mwDay": 7}, "meeting.mwDay"), ({"meeting.weStartTime": "25:00"}, "meeting.weStartTime"),
     ({"meeting.coWeek": "15-07-2024"}, "meeting.coWeek")],
    ids=["day-7", "hour-25", "co-week-dmy"],
)
def test_from_prefs_refuses_bad_values_naming_the_key(prefs: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        MeetingDays.from_prefs(prefs)


KNOWN = [
    ("nothing", MeetingDays(), False),
    ("only-co-week", MeetingDays(co_week=JUL[15]), False),
    ("only-times", MeetingDays(mw_time=time(19), we_time=time(10)), False),
    ("midweek", MeetingDays(mw_day=WED), True),
    ("weekend", MeetingDays(we_day=SUN), True),
    ("monday-is-day-0", MeetingDays(mw_day=MON), True),
]


@pytest.mark.parametrize(("days", "known"), [r[1:] for r in KNOWN], ids=[r[0] for r in KNOWN])
def test_known_when_a_meeting_day_is_set(days: MeetingDays, known: bool) -> None:
    assert days.known is known


# --- meeting dates -------------------------------------------------------------------------------

MEETING_DATES = [
    ("ordinary-week", WED_SUN, JUL[15], JUL[21], [JUL[17], JUL[21]]),
    ("window-ends-are-included", WED_SUN, JUL[17], JUL[21], [JUL[17], JUL[21]]),
    ("window-ends-just-inside", WED_SUN, JUL[18], JUL[20], []),
    ("single-day-window", WED_SUN, JUL[17], JUL[17], [JUL[17]]),
    ("window-starting-mid-week", WED_SUN, JUL[19], JUL[24], [JUL[21], JUL[24]]),
    ("start-after-end", WED_SUN, JUL[21], JUL[15], []),
    ("monday-and-saturday", MeetingDays(mw_day=MON, we_day=SAT), JUL[15], JUL[21], [JUL[15], JUL[20]]),
    ("weekend-only", MeetingDays(we_day=SUN), JUL[1], JUL[31], [JUL[7], JUL[14], JUL[21], JUL[28]]),
    ("no-days-set", MeetingDays(), JUL[1], JUL[31], []),
    ("both-on-the-same-day-counted-once", MeetingDays(mw_day=SAT, we_day=SAT), JUL[15], JUL[21], [JUL[20]]),
    (
        "across-a-month-end",
        WED_SUN, date(2024, 7, 29), date(2024, 8, 11),
        [date(2024, 7, 31), date(2024, 8, 4), date(2024, 8, 7), date(2024, 8, 11)],
    ),
    (
        "across-a-year-end",
        WED_SUN, date(2024, 12, 28), date(2025, 1, 8),
        [date(2024, 12, 29), date(2025, 1, 1), date(2025, 1, 5), date(2025, 1, 8)],
    ),
    (
        "leap-day",
        MeetingDays(mw_day=THU), date(2024, 2, 26), date(2024, 3, 3), [date(2024, 2, 29)],
    ),
]


@pytest.mark.parametrize(
    ("days", "start", "end", "expected"), [r[1:] for r in MEETING_DATES], ids=[r[0] for r in MEETING_DATES]
)
def test_meeting_dates(days: MeetingDays, start: date, end: date, expected: list[date]) -> None:
    assert meeting_dates(days, start, end) == expected


# The circuit overseer's week is the Monday-to-Sunday week containing coWeek, whatever weekday coWeek is.
CO_WEEK_GIVEN_AS = [("monday", JUL[15]), ("tuesday", JUL[16]), ("wednesday", JUL[17]), ("saturday", JUL[20]),
                    ("sunday", JUL[21])]


@pytest.mark.parametrize("co_week", [r[1] for r in CO_WEEK_GIVEN_AS], ids=[f"co-week-is-the-{r[0]}" for r in CO_WEEK_GIVEN_AS])
def test_in_the_co_week_the_midweek_meeting_moves_to_tuesday(co_week: date) -> None:
    days = MeetingDays(mw_day=THU, we_day=SUN, co_week=co_week)
    assert meeting_dates(days, JUL[8], JUL[28]) == [
        JUL[11], JUL[14],  # the week before: Thursday as usual
        JUL[16], JUL[21],  # the CO week: Tuesday; the weekend does not move
        JUL[25], JUL[28],  # the week after: Thursday again
    ]


CO_WEEK_CASES = [
    ("midweek-already-tuesday", MeetingDays(mw_day=TUE, we_day=SUN, co_week=JUL[17]), [JUL[16], JUL[21]]),
    ("midweek-on-monday-moves-later", MeetingDays(mw_day=MON, we_day=SAT, co_week=JUL[15]), [JUL[16], JUL[20]]),
    ("co-week-sunday-is-not-the-next-week", MeetingDays(mw_day=WED, co_week=JUL[14]), [JUL[17]]),
    ("co-week-monday-is-not-the-previous-week", MeetingDays(mw_day=WED, co_week=JUL[22]), [JUL[17]]),
    ("no-midweek-day-no-tuesday-meeting", MeetingDays(we_day=SUN, co_week=JUL[17]), [JUL[21]]),
]


@pytest.mark.parametrize(("days", "expected"), [r[1:] for r in CO_WEEK_CASES], ids=[r[0] for r in CO_WEEK_CASES])
def test_co_week_details(days: MeetingDays, expected: list[date]) -> None:
    assert meeting_dates(days, JUL[15], JUL[21]) == expected


def test_co_week_across_a_year_end() -> None:
    # Monday 30 Dec 2024 … Sunday 5 Jan 2025; coWeek given as the Sunday, in the new year.
    days = MeetingDays(mw_day=THU, we_day=SUN, co_week=date(2025, 1, 5))
    assert meeting_dates(days, date(2024, 12, 23), date(2025, 1, 12)) == [
        date(2024, 12, 26), date(2024, 12, 29),
        date(2024, 12, 31), date(2025, 1, 5),
        date(2025, 1, 9), date(2025, 1, 12),
    ]


@pytest.mark.parametrize("d", [JUL[15] + timedelta(days=i) for i in range(7)], ids=lambda d: d.strftime("%A"))
def test_weeks_start_on_monday(d: date) -> None:
    assert week_start(d) == JUL[15]


# --- meetings with a start time, for the scheduler -----------------------------------------------


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def test_meetings_between_gives_aware_starts_in_order() -> None:
    assert meetings_between(WED_SUN, paris(JUL[15], 0), paris(JUL[28], 23, 59), PARIS) == [
        Meeting("midweek", paris(JUL[17], 19, 30)),
        Meeting("weekend", paris(JUL[21], 10)),
        Meeting("midweek", paris(JUL[24], 19, 30)),
        Meeting("weekend", paris(JUL[28], 10)),
    ]


def test_a_meeting_without_a_time_is_not_scheduled_but_is_a_meeting_date() -> None:
    days = MeetingDays(mw_day=WED, we_day=SUN, we_time=time(10))
    assert meetings_between(days, paris(JUL[15], 0), paris(JUL[21], 23), PARIS) == [
        Meeting("weekend", paris(JUL[21], 10)),
    ]
    assert meeting_dates(days, JUL[15], JUL[21]) == [JUL[17], JUL[21]]


def test_the_co_week_tuesday_meeting_keeps_the_midweek_time() -> None:
    days = MeetingDays(mw_day=THU, mw_time=time(19), co_week=JUL[21])
    assert meetings_between(days, paris(JUL[15], 0), paris(JUL[21], 23), PARIS) == [
        Meeting("midweek", paris(JUL[16], 19)),
    ]


WINDOW_EDGES = [
    ("start-exactly-at-meeting", paris(JUL[17], 19, 30), paris(JUL[17], 20), 1),
    ("end-exactly-at-meeting", paris(JUL[17], 19), paris(JUL[17], 19, 30), 1),
    ("one-minute-too-late", paris(JUL[17], 19, 31), paris(JUL[18], 0), 0),
    ("end-before-start", paris(JUL[18], 0), paris(JUL[17], 0), 0),
]


@pytest.mark.parametrize(("start", "end", "count"), [r[1:] for r in WINDOW_EDGES], ids=[r[0] for r in WINDOW_EDGES])
def test_meetings_between_includes_both_ends(start: datetime, end: datetime, count: int) -> None:
    assert len(meetings_between(WED_SUN, start, end, PARIS)) == count


def test_a_window_given_in_utc_finds_local_meetings() -> None:
    # 17:30 UTC is 19:30 in Paris in summer.
    start = datetime(2024, 7, 17, 17, 0, tzinfo=UTC)
    end = datetime(2024, 7, 17, 18, 0, tzinfo=UTC)
    (meeting,) = meetings_between(WED_SUN, start, end, PARIS)
    assert meeting.start == datetime(2024, 7, 17, 17, 30, tzinfo=UTC)
    assert meeting.start.tzinfo is PARIS
    assert meeting.day == JUL[17]


def test_a_late_meeting_is_found_from_a_utc_window_on_the_previous_day() -> None:
    # Sunday 23:30 in Tokyo is Sunday 14:30 UTC; the window is in UTC.
    tokyo = ZoneInfo("Asia/Tokyo")
    days = MeetingDays(we_day=SUN, we_time=time(23, 30))
    start = datetime(2024, 7, 21, 14, 0, tzinfo=UTC)
    end = datetime(2024, 7, 21, 15, 0, tzinfo=UTC)
    assert [m.start for m in meetings_between(days, start, end, tokyo)] == [
        datetime(2024, 7, 21, 23, 30, tzinfo=tokyo)
    ]


def test_naive_window_bounds_are_read_in_the_congregation_time_zone() -> None:
    found = meetings_between(WED_SUN, datetime(2024, 7, 17, 19, 0), datetime(2024, 7, 17, 20, 0), PARIS)
    assert [m.start for m in found] == [paris(JUL[17], 19, 30)]


DST = [
    # Europe/Paris: clocks go forward on Sunday 31 March 2024 and back on Sunday 27 October 2024.
    ("spring-forward-sunday", date(2024, 3, 31), time(10), timedelta(hours=2)),
    ("fall-back-sunday", date(2024, 10, 27), time(10), timedelta(hours=1)),
    ("winter", date(2024, 1, 7), time(10), timedelta(hours=1)),
]


@pytest.mark.parametrize(("day", "at", "offset"), [r[1:] for r in DST], ids=[r[0] for r in DST])
def test_meeting_times_are_wall_clock_times_across_dst(day: date, at: time, offset: timedelta) -> None:
    days = MeetingDays(we_day=SUN, we_time=at)
    start = datetime(day.year, day.month, day.day, tzinfo=PARIS)
    (meeting,) = meetings_between(days, start, start + timedelta(days=1), PARIS)
    assert (meeting.start.hour, meeting.start.minute) == (at.hour, at.minute)
    assert meeting.start.utcoffset() == offset


def test_a_time_skipped_by_dst_moves_forward() -> None:
    days = MeetingDays(we_day=SUN, we_time=time(2, 30))  # 02:30 does not exist on 31 March 2024 in Paris
    start = datetime(2024, 3, 31, tzinfo=PARIS)
    (meeting,) = meetings_between(days, start, start + timedelta(days=1), PARIS)
    assert meeting.start.astimezone(UTC) == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert (meeting.start.hour, meeting.start.minute) == (3, 30)
