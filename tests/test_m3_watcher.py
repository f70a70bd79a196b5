"""M³ 25+'s own watcher sees a replaced file removed, then added (it ignores ``change``).

The watcher is the real npm package chokidar, at the version M³ 26.8 ships (5.0.0,
tests/chokidar/package-lock.json), with M³'s options and filter (tests/chokidar/watch.mjs): native
events for a local folder, polling every second for a folder M³ takes for a network or cloud folder.
Needs Node.js 20.19+ with npm (Debian package nodejs); `npm ci` fills tests/chokidar/node_modules once.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from member import Member, iso
from servers import DavServer, bump, make_tree, skip_or_fail

FIXTURE = Path(__file__).parent / "chokidar"
FOLDER = "/dav/Cong"


def _node_ready() -> str | None:
    """None when chokidar can run here, else what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "Node.js with npm is not installed (Debian package nodejs, 20.19 or newer)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    if (major, minor) < (20, 19):
        return f"chokidar 5 needs Node.js 20.19 or newer, this is {version} (Debian package nodejs from nodesource)"
    if not (FIXTURE / "node_modules" / "chokidar").is_dir():
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FIXTURE, capture_output=True,
                              text=True, timeout=300, check=False)
        if done.returncode != 0:
            return f"`npm ci` in {FIXTURE} failed (npm package chokidar 5.0.0): {done.stderr[-500:]}"
    return None


class M3Watcher:
    """`node watch.mjs FOLDER [poll]`: every chokidar event as a JSON line."""

    def __init__(self, folder: Path, poll: bool) -> None:
        self.proc = subprocess.Popen(["node", str(FIXTURE / "watch.mjs"), str(folder), *(["poll"] if poll else [])],
                                     stdout=subprocess.PIPE, text=True)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda e: e["event"] == "ready", "the watcher to be ready", 30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def wait_for(self, match: Any, what: str, timeout: float = 20) -> list[dict[str, Any]]:
        """Events up to and including the first that matches."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {what}; events: {seen}") from None
            seen.append(event)
            if match(event):
                return seen

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def node_watcher_available() -> None:
    missing = _node_ready()
    if missing:
        skip_or_fail(missing)


@pytest.fixture
def watcher_factory(node_watcher_available: None) -> Iterator[Any]:
    started: list[M3Watcher] = []

    def start(folder: Path, poll: bool) -> M3Watcher:
        w = M3Watcher(folder, poll)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def member_with_media_in(server: DavServer, home: Path, where: str) -> Member:
    """A member whose media folder is ``home/where`` (M³ polls one under ``Dropbox/``)."""
    return Member.create(home, server.url, FOLDER, server.username, server.password, server.ca_file,
                         media=home / where)


@pytest.mark.parametrize("where, poll", [("Congregation Media", False), ("Dropbox/Congregation Media", True)],
                         ids=["local-folder-native-events", "cloud-folder-polling"])
def test_a_file_the_coordinator_replaced_is_removed_then_added_in_m3(
    wsgidav_server: DavServer, isolated_env: Path, watcher_factory: Any, where: str, poll: bool
) -> None:
    """Before: one `change` event, which M³ ignores (old duration and thumbnail stay). After: M³'s
    chokidar reports `unlink`, then `add` with the new size, and never `change`."""
    cong = wsgidav_server.root / "Cong"
    make_tree(cong, {f"Media/{iso(1)}/Talk.mp4": b"v1" * 1000})
    m = member_with_media_in(wsgidav_server, isolated_env, where)
    media = m.media
    assert m.update().ok
    target = media / iso(1) / "Talk.mp4"
    watcher = watcher_factory(media, poll)
    bump(cong / "Media" / iso(1) / "Talk.mp4", b"v2" * 3000)
    report = m.update()
    assert report.ok and report.downloaded == 1
    assert target.read_bytes() == b"v2" * 3000
    events = watcher.wait_for(lambda e: e["event"] == "add" and e["path"] == str(target), "the add of the new file")
    about = [(e["event"], e["size"]) for e in events if e.get("path") == str(target)]
    assert about == [("unlink", None), ("add", 6000)], events


@pytest.mark.parametrize("where, poll", [("Congregation Media", False), ("Dropbox/Congregation Media", True)],
                         ids=["local-folder-native-events", "cloud-folder-polling"])
def test_every_file_of_a_meeting_the_coordinator_replaced_is_removed_then_added_in_m3(
    wsgidav_server: DavServer, isolated_env: Path, watcher_factory: Any, where: str, poll: bool
) -> None:
    """The replacements of one sync share one pause (engine/swaps.py): M³ still sees each old
    file go before its new one comes, and never a `change`."""
    cong = wsgidav_server.root / "Cong"
    names = [f"Slide {i}.jpg" for i in range(6)]
    make_tree(cong, {f"Media/{iso(1)}/{n}": b"v1" * 500 for n in names})
    m = member_with_media_in(wsgidav_server, isolated_env, where)
    media = m.media
    assert m.update().ok
    watcher = watcher_factory(media, poll)
    for n in names:
        bump(cong / "Media" / iso(1) / n, b"v2" * 800)
    report = m.update()
    assert report.ok and report.downloaded == len(names)
    targets = {str(media / iso(1) / n) for n in names}
    events: list[dict[str, Any]] = []
    for _ in names:
        events += watcher.wait_for(lambda e: e["event"] == "add" and e["path"] in targets, "the adds")
    for target in targets:
        about = [(e["event"], e["size"]) for e in events if e.get("path") == target]
        assert about == [("unlink", None), ("add", 1600)], (target, events)
