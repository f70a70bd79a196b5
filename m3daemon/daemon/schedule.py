"""When syncs happen: a poll interval, a sync before each meeting, and after the machine wakes.

APScheduler 3.x runs the timers with ``coalesce=True`` and no misfire grace limit, so runs
missed while the computer slept happen once on resume instead of being dropped. The jobs only
*request* syncs; the congregation's worker decides when to run them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from m3daemon.core.meetings import Meeting, MeetingDays, meetings_between

log = logging.getLogger(__name__)

HORIZON = timedelta(days=8)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
RESUME_JUMP = 90.0  # seconds the wall clock may run ahead of the monotonic clock before we call it a wake-up


def pre_meeting_times(
    days: MeetingDays, now: datetime, lead: timedelta, tz: tzinfo, horizon: timedelta = HORIZON
) -> list[tuple[datetime, Meeting]]:
    """The future moments ``lead`` before each meeting within ``horizon`` (pure; tested as a table).

    Meetings come from :func:`meetings_between`, so the circuit-overseer week (midweek on
    Tuesday) and times across midnight are handled there, in the congregation's time zone.
    """
    meetings = meetings_between(days, now, now + horizon + lead, tz)
    return [(m.start - lead, m) for m in meetings if m.start - lead > now]


def next_meeting(days: MeetingDays, now: datetime, tz: tzinfo) -> Meeting | None:
    upcoming = [m for m in meetings_between(days, now, now + HORIZON, tz) if m.start >= now]
    return upcoming[0] if upcoming else None


class WakeDetector:
    """Notices a suspend/resume: the wall clock jumps ahead of the monotonic clock, which stops
    while the machine sleeps."""

    def __init__(self, on_wake: Callable[[float], None]) -> None:
        self._on_wake = on_wake
        self._wall, self._mono = time.time(), time.monotonic()

    def tick(self) -> None:
        wall, mono = time.time(), time.monotonic()
        slept = (wall - self._wall) - (mono - self._mono)
        self._wall, self._mono = wall, mono
        if slept > RESUME_JUMP:
            log.info("the computer woke up after about %d minutes", slept // 60)
            self._on_wake(slept)


class Scheduler:
    """A thin wrapper: APScheduler is imported only by the daemon."""

    def __init__(self, tz: tzinfo) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.tz = tz
        self._sched: Any = BackgroundScheduler(timezone=tz, job_defaults=dict(JOB_DEFAULTS))

    def start(self) -> None:
        self._sched.start()

    def shutdown(self) -> None:
        self._sched.shutdown(wait=False)

    def every(self, job_id: str, seconds: float, func: Callable[[], object], *, first: datetime | None = None) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        # APScheduler reads next_run_time=None as "paused": pass it only when given.
        extra = {"next_run_time": first} if first is not None else {}
        self._sched.add_job(func, IntervalTrigger(seconds=seconds, timezone=self.tz), id=job_id,
                            replace_existing=True, **extra)

    def at_times(self, prefix: str, times: list[datetime], func: Callable[[], object]) -> None:
        """Replace the one-off jobs named ``prefix*`` by one job per time."""
        from apscheduler.triggers.date import DateTrigger

        for job in self._sched.get_jobs():
            if job.id.startswith(prefix):
                job.remove()
        for when in times:
            self._sched.add_job(func, DateTrigger(run_date=when), id=f"{prefix}{when.isoformat()}",
                                replace_existing=True)

    def next_run(self, prefix: str) -> datetime | None:
        # getattr: a job added before start() has no next_run_time yet
        times = [t for j in self._sched.get_jobs()
                 if j.id.startswith(prefix) and (t := getattr(j, "next_run_time", None)) is not None]
        return min(times) if times else None
