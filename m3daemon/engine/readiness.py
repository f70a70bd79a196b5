"""Is each coming meeting ready? "Thursday 19:00 — 12 of 12 files ready", for status, tray, dashboard.

Every sync records, per meeting date of its window, the files that date should hold (what the
plan wanted, whether or not it could place them: ``record meta readiness``). Readiness is then
read from the disk at the moment it is shown, so a file that failed, did not fit, or that a person
deleted since counts as missing, and a computer that cannot reach the server still knows what the
last good listing asked for. One module, so the CLI, the tray, the dashboard and the daemon's
"media missing" notification say the same thing.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from m3daemon.core.layout import Layout
from m3daemon.core.meetings import MeetingDays, meetings_between
from m3daemon.core.planner import Copy, Fetch, Plan
from m3daemon.i18n import _, ngettext, time_text, weekday_name

__all__ = ["MeetingReadiness", "readiness", "wanted_by_date"]

META_KEY = "readiness"


def wanted_by_date(plan: Plan, layout: Layout, meeting_days: list[Any]) -> dict[str, list[str]]:
    """Per meeting date (ISO), every file its folder should hold after this plan, placed or not."""
    folders = {layout.date_dir(d): d.isoformat() for d in meeting_days}
    # a file whose images could not be made counts as missing under its own name
    paths = ([r.path for r in plan.keep] + [a.target for a in plan.actions if isinstance(a, (Fetch, Copy))]
             + plan.unconverted_targets)
    out: dict[str, set[str]] = {iso: set() for iso in folders.values()}
    for p in paths:
        iso = folders.get(p.rpartition("/")[0])
        if iso is not None:
            out[iso].add(p)
    return {iso: sorted(v) for iso, v in out.items()}


@dataclass
class MeetingReadiness:
    kind: str
    start: str  # ISO, aware
    date: str
    wanted: int | None  # None: no sync has listed this date yet
    ready: int
    missing: list[str] = field(default_factory=list)  # file names

    @property
    def complete(self) -> bool:
        return self.wanted is not None and self.ready >= self.wanted

    def line(self) -> str:
        """"Thursday 19:00 — 12 of 12 files ready" (weekday and time as this computer shows them)."""
        when = datetime.fromisoformat(self.start).astimezone()
        head = f"{weekday_name(when)} {time_text(when)}"
        if self.wanted is None:
            return _("{when} — not listed yet").format(when=head)
        return ngettext("{when} — {ready} of {n} file ready", "{when} — {ready} of {n} files ready",
                        self.wanted).format(when=head, ready=self.ready, n=self.wanted)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete, "text": self.line()}


def readiness(
    media_dir: Path, effective: dict[str, Any], meta: Any, now: datetime, *, count: int = 3,
    length: timedelta = timedelta(hours=2),
) -> list[MeetingReadiness]:
    """The next ``count`` meetings (a running one included) and how many of their files are in place."""
    tz = now.tzinfo
    assert tz is not None
    try:
        days = MeetingDays.from_prefs(effective)
    except ValueError:
        return []
    wanted = meta if isinstance(meta, dict) else {}
    out = []
    for m in meetings_between(days, now - length, now + timedelta(days=15), tz)[:count]:
        iso = m.day.isoformat()
        paths = wanted.get(iso)
        if not isinstance(paths, list):
            out.append(MeetingReadiness(m.kind, m.start.isoformat(), iso, None, 0))
            continue
        missing = [p for p in paths if not os.path.isfile(media_dir / p)]
        out.append(MeetingReadiness(m.kind, m.start.isoformat(), iso, len(paths), len(paths) - len(missing),
                                    [p.rpartition("/")[2] for p in missing]))
    return out


def missing_notice(name: str, meeting: MeetingReadiness, problem: Any = None) -> tuple[str, str]:
    """The one notification before a meeting whose media are not all here: what is missing and what
    to do (``problem``: the last sync's error, an ErrorInfo, when there was one)."""
    title = _("{name}: media missing for {meeting}").format(name=name, meeting=meeting.line().split(" — ")[0])
    if meeting.wanted is None:
        what = _("No update has listed the media of this meeting yet.")
    else:
        names = ", ".join(meeting.missing[:5]) + (" …" if len(meeting.missing) > 5 else "")
        what = ngettext("{ready} of {n} file is ready; missing: {names}.",
                        "{ready} of {n} files are ready; missing: {names}.",
                        meeting.wanted).format(ready=meeting.ready, n=meeting.wanted, names=names)
    message = getattr(problem, "message", "") or ""
    remedy = getattr(problem, "remedy", "") or _(
        "Choose Update media folders now; if files still fail, the log says why.")
    return title, " ".join(p for p in (what, message, _("What to do: {remedy}").format(remedy=remedy)) if p)
