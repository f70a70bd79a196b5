"""The planner as a table: server state + record + local files + today → actions.

Each row reads: what the server has, what this computer has, and what the sync must do.
Today is Thursday 2026-11-26; the meetings are Saturday 11-28 (weekend) and Tuesday 12-01.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pytest

from m3daemon.core.layout import Layout
from m3daemon.core.model import CongregationFolder, RemoteFile
from m3daemon.core.planner import (
    Copy,
    Delete,
    Fetch,
    LocalFile,
    Placed,
    Plan,
    RemoveDir,
    Trash,
    hold_mass_deletion,
    plan_sync,
)

TODAY = date(2026, 11, 26)
SAT, TUE = date(2026, 11, 28), date(2026, 12, 1)
MEETINGS = [SAT, TUE]


def rf(path: str, etag: str = "e1", size: int = 10) -> RemoteFile:
    return RemoteFile(tuple(path.split("/")), size, etag)


def ours(path: str, source: str, etag: str = "e1", size: int = 10, mtime: int = 1) -> tuple[Placed, LocalFile]:
    return Placed(path, size, mtime, etag, source), LocalFile(size, mtime)


@dataclass
class Case:
    id: str
    dated: dict[date, list[RemoteFile]] = field(default_factory=dict)
    recurring: list[RemoteFile] = field(default_factory=list)
    hidden: dict[date, set[str]] = field(default_factory=dict)
    placed: list[tuple[Placed, LocalFile]] = field(default_factory=list)
    persons: dict[str, LocalFile] = field(default_factory=dict)
    expect: list[tuple[str, ...]] = field(default_factory=list)
    keep: int = 0
    meetings: list[date] = field(default_factory=lambda: list(MEETINGS))
    days_ahead: int = 14
    layout: Layout = field(default_factory=Layout)


def folder_of(case: Case) -> CongregationFolder:
    f = CongregationFolder(has_media_folder=True)
    for d, files in case.dated.items():
        f.dated[d] = {x.name: x for x in files}
    f.recurring = {x.name: x for x in case.recurring}
    f.hidden = case.hidden
    return f


def run(case: Case) -> Plan:
    record = {p.path: p for p, _ in case.placed}
    local = {p.path: lf for p, lf in case.placed} | case.persons
    return plan_sync(
        folder_of(case), record, local, today=TODAY, days_ahead=case.days_ahead,
        meeting_dates=case.meetings, layout=case.layout,
    )


def summary(plan: Plan) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for a in plan.actions:
        if isinstance(a, Fetch):
            out.append(("fetch", a.target, a.existing.value))
        elif isinstance(a, Copy):
            out.append(("copy", a.source, a.target, a.existing.value))
        elif isinstance(a, Delete):
            out.append(("delete", a.path, a.reason))
        elif isinstance(a, Trash):
            out.append(("trash", a.path, a.reason))
        elif isinstance(a, RemoveDir):
            out.append(("rmdir", a.path))
    return out


SAT_A = rf("Media/2026-11-28/a.jpg")
YEARTEXT = rf("Media/Recurring/yeartext.mp4", "r1", 50)

CASES = [
    Case("first sync downloads a dated file",
         dated={SAT: [SAT_A]},
         expect=[("fetch", "2026-11-28/a.jpg", "nothing")]),
    Case("nothing changed: no action",
         dated={SAT: [SAT_A]}, placed=[ours("2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         keep=1),
    Case("same size, new ETag on the server: fetched again over our copy",
         dated={SAT: [rf("Media/2026-11-28/a.jpg", "e2")]},
         placed=[ours("2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         expect=[("fetch", "2026-11-28/a.jpg", "ours")]),
    Case("deleted on the server: our copy goes",
         dated={SAT: [SAT_A, rf("Media/2026-11-28/b.jpg")]},
         placed=[ours("2026-11-28/a.jpg", "Media/2026-11-28/a.jpg"),
                 ours("2026-11-28/b.jpg", "Media/2026-11-28/b.jpg"),
                 ours("2026-11-28/c.jpg", "Media/2026-11-28/c.jpg")],
         keep=2, expect=[("delete", "2026-11-28/c.jpg", "gone")]),
    Case("hidden marker for a file we synced: deleted",
         dated={SAT: [SAT_A]}, hidden={SAT: {"a.jpg"}},
         placed=[ours("2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         expect=[("delete", "2026-11-28/a.jpg", "hidden")]),
    Case("hidden name that a person placed: to the trash",
         hidden={SAT: {"jw-item.mp4"}}, persons={"2026-11-28/jw-item.mp4": LocalFile(5, 5)},
         expect=[("trash", "2026-11-28/jw-item.mp4", "hidden")]),
    Case("a person's own file is left alone",
         dated={SAT: [SAT_A]}, placed=[ours("2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         persons={"2026-11-28/my song.mp3": LocalFile(3, 3)}, keep=1),
    Case("a person's file with a wanted name: fetched, then adopted or trashed by content",
         dated={SAT: [SAT_A]}, persons={"2026-11-28/a.jpg": LocalFile(10, 7)},
         expect=[("fetch", "2026-11-28/a.jpg", "persons")]),
    Case("a synced file edited by hand: restored (the edit goes to the trash)",
         dated={SAT: [SAT_A]},
         placed=[(Placed("2026-11-28/a.jpg", 10, 1, "e1", "Media/2026-11-28/a.jpg"), LocalFile(12, 9))],
         expect=[("fetch", "2026-11-28/a.jpg", "edited")]),
    Case("recurring media: downloaded once, copied into every meeting date and dated date",
         dated={date(2026, 11, 27): [rf("Media/2026-11-27/x.jpg")]}, recurring=[YEARTEXT],
         expect=[("fetch", "2026-11-27/x.jpg", "nothing"),
                 ("fetch", "2026-11-27/yeartext.mp4", "nothing"),
                 ("copy", "2026-11-27/yeartext.mp4", "2026-11-28/yeartext.mp4", "nothing"),
                 ("copy", "2026-11-27/yeartext.mp4", "2026-12-01/yeartext.mp4", "nothing"),
                 ("copy", "2026-11-27/yeartext.mp4", "2026-12-05/yeartext.mp4", "nothing"),
                 ("copy", "2026-11-27/yeartext.mp4", "2026-12-08/yeartext.mp4", "nothing")],
         meetings=[SAT, TUE, date(2026, 12, 5), date(2026, 12, 8)]),
    Case("a dated file wins over a recurring file of the same name",
         dated={SAT: [rf("Media/2026-11-28/yeartext.mp4", "d1", 60)]}, recurring=[YEARTEXT],
         meetings=[SAT],
         expect=[("fetch", "2026-11-28/yeartext.mp4", "nothing")]),
    Case("no meeting days known: recurring media only where the date has its own media",
         dated={SAT: [SAT_A]}, recurring=[YEARTEXT], meetings=[],
         expect=[("fetch", "2026-11-28/a.jpg", "nothing"), ("fetch", "2026-11-28/yeartext.mp4", "nothing")]),
    Case("recurring already here once: copied from it, not downloaded again",
         recurring=[YEARTEXT],
         placed=[ours("2026-11-28/yeartext.mp4", "Media/Recurring/yeartext.mp4", "r1", 50)],
         keep=1, expect=[("copy", "2026-11-28/yeartext.mp4", "2026-12-01/yeartext.mp4", "nothing")]),
    Case("recurring hidden on one date: not placed there",
         recurring=[YEARTEXT], hidden={TUE: {"yeartext.mp4"}},
         expect=[("fetch", "2026-11-28/yeartext.mp4", "nothing")]),
    Case("a past date folder holding only our files: emptied and removed",
         placed=[ours("2026-11-20/a.jpg", "Media/2026-11-20/a.jpg")],
         expect=[("delete", "2026-11-20/a.jpg", "past"), ("rmdir", "2026-11-20")]),
    Case("a past date folder with a person's file: our file goes, the folder stays",
         placed=[ours("2026-11-20/a.jpg", "Media/2026-11-20/a.jpg")],
         persons={"2026-11-20/notes.txt": LocalFile(1, 1)},
         expect=[("delete", "2026-11-20/a.jpg", "past")]),
    Case("M³'s .section-order.json is never touched, even when named by a marker",
         dated={SAT: [SAT_A]}, hidden={SAT: {".section-order.json"}},
         placed=[ours("2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         persons={"2026-11-28/.section-order.json": LocalFile(40, 4)}, keep=1),
    Case("a file synced for a date beyond the window stays until the date comes",
         placed=[ours("2027-01-30/a.jpg", "Media/2027-01-30/a.jpg")], keep=1),
    Case("a synced file edited by hand and then removed on the server: trashed, never deleted",
         placed=[(Placed("2026-11-28/a.jpg", 10, 1, "e1", "Media/2026-11-28/a.jpg"), LocalFile(11, 2))],
         expect=[("trash", "2026-11-28/a.jpg", "edited-unwanted")]),
    Case("window of 0 days: today only",
         dated={TODAY: [rf("Media/2026-11-26/t.jpg")], SAT: [SAT_A]}, days_ahead=0, meetings=[],
         expect=[("fetch", "2026-11-26/t.jpg", "nothing")]),
    Case("classic layout: language folder, congregation date format, and Recurring left empty",
         dated={SAT: [SAT_A]}, recurring=[YEARTEXT], meetings=[SAT],
         layout=Layout("classic", "E", "YYYY-MM-DD - dddd"),
         expect=[("fetch", "E/2026-11-28 - Saturday/a.jpg", "nothing"),
                 ("fetch", "E/2026-11-28 - Saturday/yeartext.mp4", "nothing")]),
    Case("classic layout, a new date format: the date's file is copied to the new name (not downloaded), "
         "the old one deleted and its folder removed",
         dated={SAT: [SAT_A]}, meetings=[SAT], layout=Layout("classic", "E", "DD-MM-YYYY"),
         placed=[ours("E/2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         expect=[("copy", "E/2026-11-28/a.jpg", "E/28-11-2026/a.jpg", "nothing"),
                 ("delete", "E/2026-11-28/a.jpg", "moved"), ("rmdir", "E/2026-11-28")]),
    Case("classic layout, a new date format: a folder of the old name with a person's file stays",
         dated={SAT: [SAT_A]}, meetings=[SAT], layout=Layout("classic", "E", "DD-MM-YYYY"),
         placed=[ours("E/2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         persons={"E/2026-11-28/notes.txt": LocalFile(1, 1)},
         expect=[("copy", "E/2026-11-28/a.jpg", "E/28-11-2026/a.jpg", "nothing"),
                 ("delete", "E/2026-11-28/a.jpg", "moved")]),
    Case("classic layout, a new date format: a file changed on the server since is downloaded, not copied",
         dated={SAT: [rf("Media/2026-11-28/a.jpg", "e2")]}, meetings=[SAT], layout=Layout("classic", "E", "DD-MM-YYYY"),
         placed=[ours("E/2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")],
         expect=[("fetch", "E/28-11-2026/a.jpg", "nothing"), ("delete", "E/2026-11-28/a.jpg", "gone"),
                 ("rmdir", "E/2026-11-28")]),
    Case("classic layout, a new date format: a synced file edited by hand is not copied; it goes to the trash",
         dated={SAT: [SAT_A]}, meetings=[SAT], layout=Layout("classic", "E", "DD-MM-YYYY"),
         placed=[(Placed("E/2026-11-28/a.jpg", 10, 1, "e1", "Media/2026-11-28/a.jpg"), LocalFile(11, 2))],
         expect=[("fetch", "E/28-11-2026/a.jpg", "nothing"), ("trash", "E/2026-11-28/a.jpg", "edited-unwanted"),
                 ("rmdir", "E/2026-11-28")]),
    Case("the layout changes from classic to watch: each file is copied to its new folder, none downloaded",
         dated={SAT: [SAT_A]}, recurring=[YEARTEXT], meetings=[SAT],
         placed=[ours("E/2026-11-28/a.jpg", "Media/2026-11-28/a.jpg"),
                 ours("E/2026-11-28/yeartext.mp4", "Media/Recurring/yeartext.mp4", "r1", 50)],
         expect=[("copy", "E/2026-11-28/a.jpg", "2026-11-28/a.jpg", "nothing"),
                 ("copy", "E/2026-11-28/yeartext.mp4", "2026-11-28/yeartext.mp4", "nothing"),
                 ("delete", "E/2026-11-28/a.jpg", "moved"), ("delete", "E/2026-11-28/yeartext.mp4", "moved"),
                 ("rmdir", "E/2026-11-28"), ("rmdir", "E")]),
    Case("the congregation's language changes: the files move to the new language folder, a person's file stays",
         dated={SAT: [SAT_A]}, meetings=[SAT], layout=Layout("classic", "F"),
         placed=[ours("E/2026-11-28/a.jpg", "Media/2026-11-28/a.jpg")], persons={"E/notes.txt": LocalFile(1, 1)},
         expect=[("copy", "E/2026-11-28/a.jpg", "F/2026-11-28/a.jpg", "nothing"),
                 ("delete", "E/2026-11-28/a.jpg", "moved"), ("rmdir", "E/2026-11-28")]),
    Case("the year-text of a past meeting feeds the next meeting's folder: copied, then the past one deleted",
         recurring=[YEARTEXT], meetings=[TUE], layout=Layout("classic", "E"),
         placed=[ours("E/2026-11-21/yeartext.mp4", "Media/Recurring/yeartext.mp4", "r1", 50)],
         expect=[("copy", "E/2026-11-21/yeartext.mp4", "E/2026-12-01/yeartext.mp4", "nothing"),
                 ("delete", "E/2026-11-21/yeartext.mp4", "past"), ("rmdir", "E/2026-11-21")]),
    Case("classic layout: what an older m3daemon put in Recurring is copied to the meeting, then removed; "
         "a person's file stays",
         recurring=[YEARTEXT], meetings=[SAT], layout=Layout("classic", "E"),
         placed=[ours("E/Recurring/yeartext.mp4", "Media/Recurring/yeartext.mp4", "r1")],
         persons={"E/Recurring/mine.mp4": LocalFile(5, 5)},
         expect=[("copy", "E/Recurring/yeartext.mp4", "E/2026-11-28/yeartext.mp4", "nothing"),
                 ("delete", "E/Recurring/yeartext.mp4", "recurring-folder")]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_planner(case: Case) -> None:
    plan = run(case)
    assert summary(plan) == case.expect
    assert len(plan.keep) == case.keep


def test_a_file_deleted_by_hand_is_restored() -> None:
    row = Placed("2026-11-28/a.jpg", 10, 1, "e1", "Media/2026-11-28/a.jpg")
    plan = plan_sync(folder_of(Case("x", dated={SAT: [SAT_A]})), {row.path: row}, {}, today=TODAY,
                     days_ahead=14, meeting_dates=MEETINGS, layout=Layout())
    assert summary(plan) == [("fetch", "2026-11-28/a.jpg", "nothing")]


def test_the_guard_holds_deletions_when_the_listing_lost_everything() -> None:
    rows = [ours(f"2026-11-28/{n}.jpg", f"Media/2026-11-28/{n}.jpg") for n in "abcd"]
    case = Case("x", placed=rows)
    folder = folder_of(case)
    plan = run(case)
    assert [a[0] for a in summary(plan)] == ["delete"] * 4
    held = hold_mass_deletion(plan, folder, {p.path: p for p, _ in rows})
    assert held == [p.path for p, _ in rows]
    assert plan.actions == []
    assert sorted(r.path for r in plan.keep) == held


def test_the_guard_lets_a_small_removal_through() -> None:
    rows = [ours(f"2026-11-28/{n}.jpg", f"Media/2026-11-28/{n}.jpg") for n in "abcd"]
    case = Case("x", dated={SAT: [rf(f"Media/2026-11-28/{n}.jpg") for n in "abc"]}, placed=rows)
    plan = run(case)
    assert hold_mass_deletion(plan, folder_of(case), {p.path: p for p, _ in rows}) == []
    assert summary(plan) == [("delete", "2026-11-28/d.jpg", "gone")]


def test_the_guard_holds_when_more_than_half_vanish() -> None:
    rows = [ours(f"2026-11-28/{n}.jpg", f"Media/2026-11-28/{n}.jpg") for n in "abcdef"]
    case = Case("x", dated={SAT: [rf("Media/2026-11-28/a.jpg"), rf("Media/2026-11-28/b.jpg")]}, placed=rows)
    plan = run(case)
    held = hold_mass_deletion(plan, folder_of(case), {p.path: p for p, _ in rows})
    assert len(held) == 4
    assert not any(isinstance(a, Delete) for a in plan.actions)


def test_a_new_date_format_moves_the_whole_window_without_holding_a_deletion() -> None:
    """Every synced file of the window leaves its old name at once; none left the server, so
    the guard (which asks before deleting what vanished) has nothing to hold."""
    names = "abcdef"
    rows = [ours(f"E/2026-11-28/{n}.jpg", f"Media/2026-11-28/{n}.jpg") for n in names]
    case = Case("x", dated={SAT: [rf(f"Media/2026-11-28/{n}.jpg") for n in names]}, placed=rows, meetings=[SAT],
                layout=Layout("classic", "E", "DD-MM-YYYY"))
    plan = run(case)
    assert hold_mass_deletion(plan, folder_of(case), {p.path: p for p, _ in rows}) == []
    assert summary(plan) == [*(("copy", f"E/2026-11-28/{n}.jpg", f"E/28-11-2026/{n}.jpg", "nothing") for n in names),
                             *(("delete", f"E/2026-11-28/{n}.jpg", "moved") for n in names), ("rmdir", "E/2026-11-28")]


def test_past_deletions_are_not_held_by_the_guard() -> None:
    rows = [ours(f"2026-11-20/{n}.jpg", f"Media/2026-11-20/{n}.jpg") for n in "abcdef"]
    case = Case("x", placed=rows)
    plan = run(case)
    assert hold_mass_deletion(plan, folder_of(case), {p.path: p for p, _ in rows}) == []
    assert len([a for a in plan.actions if isinstance(a, Delete)]) == 6


# --- the mass-deletion guard's boundaries --------------------------------------------------------
# Deletions of files that vanished from the server are held when at least 3 vanished AND they are
# at least half of what this computer synced for the window (planner.hold_mass_deletion). Each row:
# how many files of the coming Saturday this computer synced, how many of them the server no longer
# lists, and whether the guard holds the deletions. The rows sit at, one below and one above each
# boundary, so a change of either number or of either comparison fails one of them.
@dataclass(frozen=True)
class GuardRow:
    id: str
    synced: int
    vanished: int
    held: bool


GUARD_ROWS = [
    # the minimum count, with every synced file gone (the ratio is met)
    GuardRow("2 of 2 vanish: below the minimum count, deleted", 2, 2, held=False),
    GuardRow("3 of 3 vanish: at the minimum count, held", 3, 3, held=True),
    GuardRow("4 of 4 vanish: above the minimum count, held", 4, 4, held=True),
    # the minimum count with the ratio far from its boundary
    GuardRow("2 of 10 vanish: a small removal, deleted", 10, 2, held=False),
    # the ratio, with the count above its minimum
    GuardRow("4 of 9 vanish: just under half, deleted", 9, 4, held=False),
    GuardRow("4 of 8 vanish: exactly half, held", 8, 4, held=True),
    GuardRow("4 of 7 vanish: just over half, held", 7, 4, held=True),
    # the ratio at the minimum count
    GuardRow("3 of 7 vanish: just under half, deleted", 7, 3, held=False),
    GuardRow("3 of 6 vanish: exactly half, held", 6, 3, held=True),
    GuardRow("3 of 5 vanish: just over half, held", 5, 3, held=True),
]


@pytest.mark.parametrize("row", GUARD_ROWS, ids=lambda r: r.id)
def test_the_mass_deletion_guard_boundaries(row: GuardRow) -> None:
    names = [f"{i:02d}.jpg" for i in range(row.synced)]
    rows = [ours(f"2026-11-28/{n}", f"Media/2026-11-28/{n}") for n in names]
    still = [rf(f"Media/2026-11-28/{n}") for n in names[row.vanished:]]
    # Tuesday's new file keeps the listing from being empty, so only the count and ratio decide.
    case = Case("x", dated={SAT: still, TUE: [rf("Media/2026-12-01/new.jpg")]}, placed=rows)
    plan = run(case)
    assert plan.tracked_in_window == row.synced and len(plan.vanished) == row.vanished
    held = hold_mass_deletion(plan, folder_of(case), {p.path: p for p, _ in rows})
    deleted = [a.path for a in plan.actions if isinstance(a, Delete)]
    gone = [f"2026-11-28/{n}" for n in names[:row.vanished]]
    if row.held:
        assert (held, deleted) == (gone, [])
        assert sorted(r.path for r in plan.keep) == [p.path for p, _ in rows]
    else:
        assert (held, deleted) == ([], gone)
    assert ("fetch", "2026-12-01/new.jpg", "nothing") in summary(plan)
