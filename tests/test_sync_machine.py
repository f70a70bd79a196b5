"""The sync as a state machine: the coordinator changes the server, a person changes the media
folder, the computer syncs, in any order Hypothesis finds (after vdirsyncer's ``SyncMachine``).

Each step is real: files on a real WebDAV server (WsgiDAV, in-process), the real engine
(``engine.sync.update``: listing, planner, executor, record) on a real folder, and the platform's
trash as Send2Trash fills it. After every sync two promises are checked:

* **nothing of a person's is lost.** Every version a person wrote (an own file, an edit of a
  synced file) is still where they put it, or in the trash, and in the trash only where the rules
  send it: the congregation's file takes its name, the name is hidden for that date, or it is an
  edit of the sync's own file that the server no longer wants, all within the sync window;
* **the media folder is the server's state for the window**: exactly the congregation's files
  (dated media, and recurring media in dates that have media of their own, less the hidden
  names), plus the person's files that stay. When the mass-deletion guard holds deletions, the
  held files are the sync's own and still intact; the person's confirmation
  (``allow_deletions``) then brings the folder to the server's state.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import trashed_from
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from member import Member
from servers import DavServer

from m3daemon.engine.sync import SyncReport

START = date.today()
DAYS_AHEAD = 3
# Date folders relative to the first day: past, today, inside the window, beyond it.
OFFSETS = (-1, 0, 1, 3, 5)
NAMES = ("a.jpg", "b.mp4", "c.png")  # few names, so the server's and the person's meet
RECURRING = "Recurring"

offsets = st.sampled_from(OFFSETS)
names = st.sampled_from(NAMES)


@dataclass
class PersonsVersion:
    path: str  # relative to the media folder
    data: bytes
    edit_of_ours: bool  # an edit of a file the sync placed (else the person's own file)


@dataclass
class World:
    """What the test knows: the server's media, and what the person wrote."""

    dated: dict[tuple[date, str], bytes] = field(default_factory=dict)
    recurring: dict[str, bytes] = field(default_factory=dict)
    hidden: set[tuple[date, str]] = field(default_factory=set)
    persons: list[PersonsVersion] = field(default_factory=list)  # not yet seen in the trash
    ours: dict[str, bytes] = field(default_factory=dict)  # what the last sync left as the sync's own
    today: date = START

    def window(self) -> list[date]:
        return [self.today + timedelta(days=i) for i in range(DAYS_AHEAD + 1)]

    def wanted(self) -> dict[str, bytes]:
        """The congregation's files for the window, by path in the media folder (watch layout)."""
        out: dict[str, bytes] = {}
        for d in self.window():
            own = {n: b for (day, n), b in self.dated.items() if day == d}
            files = dict(own)
            if own:  # no meeting days are set: recurring media go into dates with media of their own
                for n, b in self.recurring.items():
                    files.setdefault(n, b)
            out |= {f"{d.isoformat()}/{n}": b for n, b in files.items() if (d, n) not in self.hidden}
        return out

    def hidden_paths(self) -> set[str]:
        return {f"{d.isoformat()}/{n}" for d, n in self.hidden if d in self.window()}

    def in_window(self, path: str) -> bool:
        return date.fromisoformat(path.split("/")[0]) in self.window()


class SyncMachine(RuleBasedStateMachine):
    server: DavServer
    base: Path
    seen: dict[str, int] = {}  # noqa: RUF012 - totals over all examples, to show what was exercised

    def note(self, what: str, n: int = 1) -> None:
        SyncMachine.seen[what] = SyncMachine.seen.get(what, 0) + n

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.counter = itertools.count()
        self.clock = time.time() - 100_000  # server mtimes, each change later than the last
        self.cong = self.server.root / "Cong"
        shutil.rmtree(self.cong, ignore_errors=True)
        (self.cong / "Media").mkdir(parents=True)
        home = Path(tempfile.mkdtemp(dir=self.base))
        self.member = Member.create(home, self.server.url, "/dav/Cong", self.server.username,
                                    self.server.password, self.server.ca_file, days_ahead=DAYS_AHEAD)
        self.trash_seen = self.trash()
        self.syncs = 0

    # --- helpers ---------------------------------------------------------------------------------

    def fresh(self, who: str) -> bytes:
        return f"{who} {next(self.counter)}".encode()

    def put_on_server(self, rel: str, data: bytes | None) -> None:
        path = self.cong / rel
        if data is None:
            path.unlink()
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.clock += 10
        os.utime(path, (self.clock, self.clock))

    def local(self) -> dict[str, bytes]:
        return {k: v for k, v in self.member.files().items()}

    def trash(self) -> dict[tuple[str, bytes], int]:
        """What the platform's trash holds from the media folder: (original path, content) → count."""
        found: dict[tuple[str, bytes], int] = {}
        for original, in_trash in trashed_from(self.member.media.parent):
            key = (str(original), in_trash.read_bytes())
            found[key] = found.get(key, 0) + 1
        return found

    # --- the coordinator changes the server ------------------------------------------------------

    @initialize(dated=st.sets(st.tuples(offsets, names), min_size=1, max_size=8),
                recurring=st.sets(names, max_size=2))
    def the_coordinator_uploaded_media_and_the_computer_synced(
        self, dated: set[tuple[int, str]], recurring: set[str]
    ) -> None:
        for offset, name in sorted(dated):
            self.coordinator_adds_or_replaces_dated_media(offset, name)
        for name in sorted(recurring):
            self.coordinator_changes_recurring_media(name, delete=False)
        self.sync()

    @rule(offset=offsets, name=names)
    def coordinator_adds_or_replaces_dated_media(self, offset: int, name: str) -> None:
        d = START + timedelta(days=offset)
        data = self.fresh("server")
        self.world.dated[(d, name)] = data
        self.put_on_server(f"Media/{d.isoformat()}/{name}", data)

    @precondition(lambda self: self.world.dated)
    @rule(data=st.data())
    def coordinator_deletes_dated_media(self, data: st.DataObject) -> None:
        d, name = data.draw(st.sampled_from(sorted(self.world.dated)))
        del self.world.dated[(d, name)]
        self.put_on_server(f"Media/{d.isoformat()}/{name}", None)

    @precondition(lambda self: self.world.dated)
    @rule(data=st.data())
    def coordinator_removes_a_whole_date(self, data: st.DataObject) -> None:
        d = data.draw(st.sampled_from(sorted({day for day, _n in self.world.dated})))
        for day, name in sorted(self.world.dated):
            if day == d:
                del self.world.dated[(day, name)]
                self.put_on_server(f"Media/{d.isoformat()}/{name}", None)

    @rule(name=names, delete=st.booleans())
    def coordinator_changes_recurring_media(self, name: str, delete: bool) -> None:
        if delete:
            if name in self.world.recurring:
                del self.world.recurring[name]
                self.put_on_server(f"Media/{RECURRING}/{name}", None)
            return
        data = self.fresh("recurring")
        self.world.recurring[name] = data
        self.put_on_server(f"Media/{RECURRING}/{name}", data)

    @rule(offset=offsets, name=names)
    def coordinator_hides_or_unhides(self, offset: int, name: str) -> None:
        d = START + timedelta(days=offset)
        if (d, name) in self.world.hidden:
            self.world.hidden.discard((d, name))
            self.put_on_server(f"Hidden/{d.isoformat()}/{name}", None)
        else:
            self.world.hidden.add((d, name))
            self.put_on_server(f"Hidden/{d.isoformat()}/{name}", b"")

    # --- the person changes the media folder -----------------------------------------------------

    @rule(offset=offsets, name=names)
    def person_adds_an_own_file(self, offset: int, name: str) -> None:
        rel = f"{(START + timedelta(days=offset)).isoformat()}/{name}"
        target = self.member.media / rel
        if target.exists():
            return
        data = self.fresh("person")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.world.persons.append(PersonsVersion(rel, data, edit_of_ours=False))

    @precondition(lambda self: self.world.ours)
    @rule(data=st.data())
    def person_edits_a_synced_file(self, data: st.DataObject) -> None:
        rel = data.draw(st.sampled_from(sorted(self.world.ours)))
        target = self.member.media / rel
        if not target.exists() or target.read_bytes() != self.world.ours[rel]:
            return
        new = self.fresh("edit")
        target.write_bytes(new)
        self.world.persons.append(PersonsVersion(rel, new, edit_of_ours=True))

    @precondition(lambda self: self.world.ours)
    @rule(data=st.data())
    def person_deletes_a_synced_file(self, data: st.DataObject) -> None:
        rel = data.draw(st.sampled_from(sorted(self.world.ours)))
        target = self.member.media / rel
        if target.exists() and target.read_bytes() == self.world.ours[rel]:
            target.unlink()

    @precondition(lambda self: self.world.today < START + timedelta(days=2))
    @rule()
    def a_day_passes(self) -> None:
        self.world.today += timedelta(days=1)

    # --- the computer syncs ----------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        w = self.world
        before_local = self.local()
        wanted, hidden = w.wanted(), w.hidden_paths()
        report = self.update()
        held = report.held_deletions
        self.note("syncs")
        self.note("downloaded", report.downloaded)
        self.note("copied", report.copied)
        self.note("removed", report.removed)
        if held:
            self.note("guard held deletions")
            # The guard: only the sync's own files, gone from the server, still intact here.
            for rel in held:
                assert rel in w.ours and rel not in wanted, rel
                assert self.local().get(rel) == w.ours[rel], rel
            report = self.update(allow_deletions=True)
            assert not report.held_deletions
        assert report.failed == 0 and report.ok, report.errors
        self.check_persons_files(before_local, wanted, hidden)
        remaining = {v.path: v.data for v in w.persons}
        assert self.local() == wanted | remaining
        w.ours = wanted

    def update(self, **kwargs: bool) -> SyncReport:
        self.syncs += 1
        return self.member.update(today=self.world.today, **kwargs)

    def check_persons_files(self, before: dict[str, bytes], wanted: dict[str, bytes], hidden: set[str]) -> None:
        trash = self.trash()
        new_in_trash = {k: n - self.trash_seen.get(k, 0) for k, n in trash.items() if n > self.trash_seen.get(k, 0)}
        after = self.local()
        kept = []
        for v in self.world.persons:
            here = after.get(v.path) == v.data
            trashed = new_in_trash.get((str(self.member.media / v.path), v.data), 0) > 0
            assert here or trashed, f"a person's file was lost: {v.path} ({v.data!r})"
            if trashed:
                self.note("person's file to the trash")
                assert before.get(v.path) == v.data and self.world.in_window(v.path), v
                # the rules that send a person's file to the trash
                assert v.path in wanted or v.path in hidden or v.edit_of_ours, v
                new_in_trash[(str(self.member.media / v.path), v.data)] -= 1
            else:
                kept.append(v)
        self.world.persons = kept
        # Nothing else went to the trash: the sync's own files are deleted, never trashed.
        assert not {k: n for k, n in new_in_trash.items() if n}, new_in_trash
        self.trash_seen = trash

    @invariant()
    def nothing_half_written_is_visible(self) -> None:
        staged = self.member.staged()
        assert all(name.endswith(".part") for name in staged), staged


@pytest.mark.slow
def test_any_sequence_of_server_changes_edits_and_syncs_keeps_the_promises(
    wsgidav_server: DavServer, tmp_path: Path
) -> None:
    SyncMachine.server, SyncMachine.base, SyncMachine.seen = wsgidav_server, tmp_path, {}
    started = time.monotonic()
    run_state_machine_as_test(SyncMachine, settings=settings(
        max_examples=60, stateful_step_count=30, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    ))
    print(f"sync state machine: {time.monotonic() - started:.1f} s, {SyncMachine.seen}")
    # the sequences reached every kind of outcome (else the promises were checked on too little)
    assert {"syncs", "downloaded", "copied", "removed", "guard held deletions", "person's file to the trash"} <= {
        k for k, n in SyncMachine.seen.items() if n}, SyncMachine.seen
