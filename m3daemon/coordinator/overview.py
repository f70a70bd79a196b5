"""``media ls``: what each date will get, as every member's sync will see it.

Built from the same listing model and the same rules as the planner (dated media, recurring media on
meeting dates and on dates with media of their own, a dated file winning over a recurring one of the
same name, hidden markers), so the coordinator sees what the members will get, not a raw file list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from m3daemon.core.dates import DEFAULT_DATE_FORMAT
from m3daemon.core.m3 import converted_names, m3_view
from m3daemon.core.meetings import MeetingDays, meeting_dates
from m3daemon.core.model import RemoteFile, build_folder
from m3daemon.core.planner import Placed
from m3daemon.local.record import Record
from m3daemon.remote.listing import list_tree

from .context import Coordinator
from .media import section_of


@dataclass
class Entry:
    name: str
    origin: str  # "dated", "recurring", or "marker" (a marker that hides no congregation file)
    hidden: bool
    section: str | None
    size: int | None
    here: bool | None  # this computer already has it (None: not applicable)
    remote: str | None

    @property
    def m3(self) -> str:
        """What M³ 25+ makes of it: ``shows``, ``converted`` (into images) or ``never``."""
        return m3_view(self.name)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "origin": self.origin, "hidden": self.hidden, "section": self.section,
            "size": self.size, "here": self.here, "remote": self.remote, "m3": self.m3,
        }


@dataclass
class DateView:
    date: date
    meeting: bool
    folders: list[str]
    entries: list[Entry]

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(), "weekday": self.date.strftime("%A"), "meeting": self.meeting,
            "folders": self.folders, "entries": [e.to_json() for e in self.entries],
        }


@dataclass
class Overview:
    start: date
    end: date
    date_format: str
    meeting_days_known: bool
    dates: list[DateView] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(), "date_format": self.date_format,
            "meeting_days_known": self.meeting_days_known, "dates": [d.to_json() for d in self.dates],
            "warnings": self.warnings,
        }


class _Local:
    """Whether this computer's media folder already holds an entry (size, and version if recorded)."""

    def __init__(self, coord: Coordinator, effective: dict[str, Any]) -> None:
        self.media_dir = coord.cfg.local.media_dir
        self.layout = coord.ctx.layout(effective)
        self.rows: dict[str, Placed] = {}
        path = coord.ctx.record_path
        if path.exists():
            record = Record(path, readonly=True)
            try:
                self.rows = record.load()
            finally:
                record.close()

    def has(self, d: date, rf: RemoteFile) -> bool:
        if self.layout.kind == "watch" and m3_view(rf.name) == "converted":
            # the watch layout holds the images made of it, not the file
            return all((self.media_dir / self.layout.date_dir(d) / n).is_file() for n in converted_names(rf.name))
        rel = f"{self.layout.date_dir(d)}/{rf.name}"
        try:
            size = (self.media_dir / rel).stat().st_size
        except OSError:
            return False
        row = self.rows.get(rel)
        return size == rf.size and (row is None or row.version == rf.version)


def overview(coord: Coordinator, start: date, end: date, *, extend: bool = False) -> Overview:
    """Every date from ``start`` to ``end`` that is a meeting date or gets anything. With ``extend``,
    later dates that have media of their own are shown too."""
    listing = list_tree(coord.session)
    effective = coord.effective()
    fmt = str(effective.get("app.outputFolderDateFormat") or DEFAULT_DATE_FORMAT)
    folder = build_folder(listing.entries, fmt, str(effective.get("app.congregationName") or "") or None)
    days = MeetingDays.from_prefs(effective)
    if extend:
        end = max([end, *(d for d in folder.dated if d > end)])
    meetings = set(meeting_dates(days, start, end))
    local = _Local(coord, effective)
    view = Overview(start, end, fmt, days.known, warnings=[*coord.warnings, *folder.warnings])
    d = start
    while d <= end:
        entries = _entries_for(d, folder.dated.get(d, {}), folder.recurring if (d in meetings or d in folder.dated)
                               else {}, folder.hidden.get(d, set()), local)
        if entries or d in meetings:
            folders = sorted("/".join(p) for p in folder.date_folders.get(d, []))
            view.dates.append(DateView(d, d in meetings, folders, entries))
        d += timedelta(days=1)
    return view


def _entries_for(
    d: date, dated: dict[str, RemoteFile], recurring: dict[str, RemoteFile], hidden: set[str], local: _Local,
) -> list[Entry]:
    chosen: dict[str, tuple[str, RemoteFile]] = {n: ("dated", rf) for n, rf in dated.items()}
    for n, rf in recurring.items():
        chosen.setdefault(n, ("recurring", rf))
    entries = [
        Entry(n, origin, n in hidden, section_of(n), rf.size,
              None if n in hidden else local.has(d, rf), "/".join(rf.parts))
        for n, (origin, rf) in chosen.items()
    ]
    entries.extend(Entry(n, "marker", True, section_of(n), None, None, None) for n in hidden - chosen.keys())
    return sorted(entries, key=lambda e: e.name)
