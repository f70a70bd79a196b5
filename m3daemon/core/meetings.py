"""Which dates are meeting dates, and when the meetings start.

The sync needs meeting dates to know where recurring media go (SPEC: every meeting date in the window),
and the scheduler needs meeting start times to sync shortly before each meeting. Both come from the
effective settings (forced over local): ``meeting.mwDay`` / ``meeting.weDay`` (0 = Monday … 6 = Sunday),
``meeting.mwStartTime`` / ``meeting.weStartTime`` (``"HH:mm"``) and ``meeting.coWeek``.

M³'s rules (reference §4.2), kept here:

* weeks start on Monday, whatever the locale;
* in the circuit overseer's week — the Monday-to-Sunday week that contains ``meeting.coWeek``, whatever
  weekday that date is — the midweek meeting is on Tuesday;
* the weekend meeting does not move.

Pure module: no I/O, no clock (callers pass dates and times in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

from m3daemon.core.prefs import validate_pref

__all__ = ["CO_WEEK_MIDWEEK_DAY", "Meeting", "MeetingDays", "meeting_dates", "meetings_between", "week_start"]

MeetingKind = Literal["midweek", "weekend"]

CO_WEEK_MIDWEEK_DAY = 1
"""Tuesday (0 = Monday): the midweek meeting's day in the circuit overseer's week."""


def week_start(d: date) -> date:
    """The Monday of ``d``'s week."""
    return d - timedelta(days=d.weekday())


def _parse_time(text: str | None) -> time | None:
    if text is None:
        return None
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


@dataclass(frozen=True, slots=True)
class MeetingDays:
    """The congregation's meeting pattern.

    Days are 0 = Monday … 6 = Sunday (M³'s numbering, also Python's ``date.weekday()``); ``None`` means
    "not set". A day without a time still counts as a meeting date; it only cannot be scheduled.
    """

    mw_day: int | None = None
    mw_time: time | None = None
    we_day: int | None = None
    we_time: time | None = None
    co_week: date | None = None

    @classmethod
    def from_prefs(cls, prefs: Mapping[str, Any]) -> MeetingDays:
        """Build from effective dotted prefs (``"meeting.mwDay"`` …). Values are checked again with
        :func:`m3daemon.core.prefs.validate_pref`, so a bad value raises ``ValueError`` naming the key."""

        def get(key: str) -> Any:
            return validate_pref(key, prefs.get(key))

        co_week = get("meeting.coWeek")
        return cls(
            mw_day=get("meeting.mwDay"),
            mw_time=_parse_time(get("meeting.mwStartTime")),
            we_day=get("meeting.weDay"),
            we_time=_parse_time(get("meeting.weStartTime")),
            co_week=date.fromisoformat(co_week) if co_week is not None else None,
        )

    @property
    def known(self) -> bool:
        """True when at least one meeting day is set. Without one, recurring media only go to dates
        that have their own folder, and ``status`` says that meeting days are not set (SPEC)."""
        return self.mw_day is not None or self.we_day is not None

    def is_co_week(self, d: date) -> bool:
        """Whether ``d`` lies in the circuit overseer's Monday-to-Sunday week."""
        return self.co_week is not None and week_start(d) == week_start(self.co_week)

    def midweek_in_week(self, monday: date) -> date | None:
        """The midweek meeting date of the week starting ``monday``, if the day is known."""
        if self.mw_day is None:
            return None
        day = CO_WEEK_MIDWEEK_DAY if self.is_co_week(monday) else self.mw_day
        return monday + timedelta(days=day)

    def weekend_in_week(self, monday: date) -> date | None:
        """The weekend meeting date of the week starting ``monday``, if the day is known."""
        if self.we_day is None:
            return None
        return monday + timedelta(days=self.we_day)


def _meetings_by_date(days: MeetingDays, start: date, end: date) -> list[tuple[date, MeetingKind]]:
    found: list[tuple[date, MeetingKind]] = []
    monday = week_start(start)
    while monday <= end:
        candidates: tuple[tuple[date | None, MeetingKind], ...] = (
            (days.midweek_in_week(monday), "midweek"),
            (days.weekend_in_week(monday), "weekend"),
        )
        for d, kind in candidates:
            if d is not None and start <= d <= end:
                found.append((d, kind))
        monday += timedelta(days=7)
    found.sort()
    return found


def meeting_dates(days: MeetingDays, start: date, end: date) -> list[date]:
    """Every meeting date from ``start`` to ``end``, both included, sorted, each date once.

    Empty when ``start`` is after ``end`` or no meeting day is set.
    """
    return sorted({d for d, _kind in _meetings_by_date(days, start, end)})


@dataclass(frozen=True, slots=True)
class Meeting:
    """One meeting with a known start (an aware datetime in the congregation's time zone)."""

    kind: MeetingKind
    start: datetime

    @property
    def day(self) -> date:
        """The local date of the meeting."""
        return self.start.date()


def _local_start(d: date, t: time, tz: tzinfo) -> datetime:
    """``d`` at ``t`` in ``tz``; a wall time skipped by a DST change moves forward, like a clock does."""
    naive = datetime.combine(d, t)
    aware = naive.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz)


def meetings_between(days: MeetingDays, start: datetime, end: datetime, tz: tzinfo) -> list[Meeting]:
    """Meetings that start between ``start`` and ``end`` (both included), in time order.

    ``tz`` is the congregation's time zone: meeting times are wall-clock times there. A naive ``start``
    or ``end`` is read as a time in ``tz``. Meetings whose time is not set are left out (they still
    count in :func:`meeting_dates`).
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    if end.tzinfo is None:
        end = end.replace(tzinfo=tz)
    # One day of margin each side: the window's local dates in tz may differ from start/end's own.
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    meetings: list[Meeting] = []
    for d, kind in _meetings_by_date(days, first, last):
        t = days.mw_time if kind == "midweek" else days.we_time
        if t is None:
            continue
        when = _local_start(d, t, tz)
        if start <= when <= end:
            meetings.append(Meeting(kind, when))
    meetings.sort(key=lambda m: (m.start, m.kind))
    return meetings
