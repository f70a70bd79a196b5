"""The meeting itself: when it runs, and what a sync may do to its date folder meanwhile (pure).

From a meeting's start until its end (start + ``[schedule] meeting_minutes``, default 2 hours) M³
is showing that date's media: M³ 25+ drops an unlinked file from the running meeting, and a
replaced one would change under the speaker. So while a meeting runs the sync neither deletes nor
replaces a file in that meeting's date folder; it may still add new files. What it held back is
applied by the first sync after the meeting, or at once when a person confirms "Update now".

A meeting belongs to the date it starts on (in the congregation's time zone), even when it runs
past midnight. Midweek and weekend meetings alike; in the circuit overseer's week the midweek
meeting is on Tuesday (:mod:`m3daemon.core.meetings`).

No I/O and no clock: callers pass "now" from the congregation's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo

from m3daemon.core.meetings import MeetingDays, MeetingKind, meetings_between
from m3daemon.core.planner import Action, Copy, Delete, Existing, Fetch, Placed, Plan, RemoveDir, Trash

__all__ = ["DEFAULT_MEETING_MINUTES", "Held", "MeetingWindow", "hold_for_meetings", "meeting_windows",
           "running_meetings"]

DEFAULT_MEETING_MINUTES = 120


@dataclass(frozen=True, slots=True)
class MeetingWindow:
    kind: MeetingKind
    start: datetime  # aware, in the congregation's zone
    end: datetime

    @property
    def day(self) -> date:
        """The date whose folder M³ shows during this meeting."""
        return self.start.date()

    def running_at(self, now: datetime) -> bool:
        return self.start <= now < self.end


def meeting_windows(
    days: MeetingDays, start: datetime, end: datetime, tz: tzinfo, length: timedelta
) -> list[MeetingWindow]:
    """Every meeting that runs at some time between ``start`` and ``end``, in time order."""
    found = meetings_between(days, start - length, end, tz)
    return [w for m in found if (w := MeetingWindow(m.kind, m.start, m.start + length)).end > start]


def running_meetings(days: MeetingDays, now: datetime, tz: tzinfo, length: timedelta) -> list[MeetingWindow]:
    """The meetings running at ``now`` (start included, end excluded)."""
    return [w for w in meeting_windows(days, now, now, tz, length) if w.running_at(now)]


@dataclass(frozen=True, slots=True)
class Held:
    """A change the sync did not make because a meeting is running in that date folder."""

    path: str
    change: str  # "replace" | "delete"
    until: datetime  # the meeting's end: the first sync after it applies the change


def hold_for_meetings(
    plan: Plan, record: Mapping[str, Placed], running: Iterable[tuple[str, MeetingWindow]]
) -> list[Held]:
    """Take out of ``plan`` every deletion and replacement in a running meeting's date folder.

    ``running`` pairs a date folder (relative path) with the meeting shown from it. New files stay
    in the plan. A held file keeps its record row, so the next sync still knows it is the sync's
    own. A copy whose source was a held replacement downloads instead (the source still holds the
    old version).
    """
    folders = {folder: window for folder, window in running}
    if not folders:
        return []

    def meeting_of(path: str) -> MeetingWindow | None:
        return folders.get(path.rpartition("/")[0])

    held: list[Held] = []
    kept: list[str] = []
    actions: list[Action] = []
    for a in plan.actions:
        if isinstance(a, (Fetch, Copy)) and a.existing is not Existing.NOTHING and (w := meeting_of(a.target)):
            held.append(Held(a.target, "replace", w.end))
            kept.append(a.target)
            continue
        if isinstance(a, (Delete, Trash)) and (w := meeting_of(a.path)):
            held.append(Held(a.path, "delete", w.end))
            kept.append(a.path)
            continue
        if isinstance(a, RemoveDir) and a.path in folders:
            continue
        actions.append(a)
    held_targets = {h.path for h in held if h.change == "replace"}
    fixed: list[Action] = []
    moved: dict[str, str] = {}  # a held source -> the target that downloads its new version instead
    for a in actions:
        if isinstance(a, Copy) and a.source in held_targets:
            if a.source in moved:
                a = replace(a, source=moved[a.source])
            else:
                moved[a.source] = a.target
                fixed.append(Fetch(a.remote, a.target, a.existing, a.origin))
                continue
        fixed.append(a)
    plan.actions = fixed
    plan.keep.extend(record[p] for p in kept if p in record)
    plan.vanished = [p for p in plan.vanished if p not in set(kept)]
    return held
