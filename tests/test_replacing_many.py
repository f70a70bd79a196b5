"""The coordinator replaces many files of a meeting at once: every new version is in place after
one pause for them all, not one pause per file (M³ must see each old file go, then the new one
come: engine/swaps.py), and a file a person changes meanwhile is still treated as theirs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from faulthelpers import trash_files
from member import Member, iso
from servers import DavServer, bump, make_tree

from m3daemon.engine import swaps
from m3daemon.errors import Cancelled

FOLDER = "/dav/Cong"
NAMES = [f"Slide {i:02d}.jpg" for i in range(24)]


@pytest.fixture
def member(wsgidav_server: DavServer, isolated_env: Path) -> Member:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/{n}": f"{n} v1".encode() for n in NAMES})
    m = Member.create(isolated_env, wsgidav_server.url, FOLDER, wsgidav_server.username,
                      wsgidav_server.password, wsgidav_server.ca_file)
    assert m.update().downloaded == len(NAMES)
    return m


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses M³'s watcher is given, in order (none is slept: the test need not wait)."""
    slept: list[float] = []
    monkeypatch.setattr(swaps, "sleep", slept.append)
    return slept


def test_a_sync_that_replaces_many_files_waits_the_pause_once(
    wsgidav_server: DavServer, member: Member, pauses: list[float]
) -> None:
    for n in NAMES:
        bump(wsgidav_server.root / "Cong" / "Media" / iso(1) / n, f"{n} v2, longer".encode())
    report = member.update()
    assert report.ok and report.downloaded == len(NAMES)
    assert member.files() == {f"{iso(1)}/{n}": f"{n} v2, longer".encode() for n in NAMES}
    assert len(pauses) == 1, f"one pause for {len(NAMES)} replaced files, not {len(pauses)}"
    staging = member.media / ".m3daemon" / "staging"
    assert not list(staging.glob("*.replaced")) and not list(staging.glob("*.part"))


def test_a_file_a_person_edits_while_its_new_version_downloads_goes_to_the_trash(
    wsgidav_server: DavServer, isolated_env: Path, member: Member, pauses: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between the check of the file there and its swap, a person saved their own version: it is
    a person's file then, sent to the trash, and the congregation's new version takes its place."""
    edited = member.media / iso(1) / NAMES[3]
    real_finish = swaps.Swaps.finish
    phases: list[swaps.Swaps] = []

    def edit_first(self: swaps.Swaps) -> Any:
        if not phases:  # the phase's queue (not the one file placed again after it)
            edited.write_bytes(b"a person's own slide")
        phases.append(self)
        return real_finish(self)

    monkeypatch.setattr(swaps.Swaps, "finish", edit_first)
    for n in NAMES:
        bump(wsgidav_server.root / "Cong" / "Media" / iso(1) / n, f"{n} v2".encode())
    report = member.update()
    assert report.ok and report.downloaded == len(NAMES), report.errors
    assert member.files() == {f"{iso(1)}/{n}": f"{n} v2".encode() for n in NAMES}
    assert report.conflicts == 1
    assert [p.read_bytes() for p in trash_files(isolated_env)] == [b"a person's own slide"]


def test_a_sync_stopped_midway_puts_in_the_new_versions_it_had_and_leaves_no_file_missing(
    wsgidav_server: DavServer, member: Member, pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon quits, or a person cancels, while new versions download: those already verified
    are put in place on the way out (each has its pending row), the rest keep their old version,
    and the next sync fetches only what is still old."""
    cancel = threading.Event()
    real_add = swaps.Swaps.add
    queued: list[swaps.Swap] = []

    def add_then_stop(self: swaps.Swaps, swap: swaps.Swap) -> None:
        real_add(self, swap)
        queued.append(swap)
        if len(queued) == 3:
            cancel.set()

    monkeypatch.setattr(swaps.Swaps, "add", add_then_stop)
    for n in NAMES:
        bump(wsgidav_server.root / "Cong" / "Media" / iso(1) / n, f"{n} v2".encode())
    with pytest.raises(Cancelled):
        member.update(cancel=cancel)
    files = member.files()
    assert set(files) == {f"{iso(1)}/{n}" for n in NAMES}, "no file is missing"
    new = [p for p, data in files.items() if data.endswith(b" v2")]
    assert len(new) >= 3, "what was queued is in place"
    assert all(data in (f"{p.split('/')[-1]} v1".encode(), f"{p.split('/')[-1]} v2".encode())
               for p, data in files.items()), "every file is whole: its old version or its new one"
    assert not list((member.media / ".m3daemon" / "staging").glob("*.replaced"))

    monkeypatch.setattr(swaps.Swaps, "add", real_add)
    report = member.update()
    assert report.ok and report.downloaded == len(NAMES) - len(new)
    assert member.files() == {f"{iso(1)}/{n}": f"{n} v2".encode() for n in NAMES}
