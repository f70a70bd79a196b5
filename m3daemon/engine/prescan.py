"""The daemon's poll reads the media folder while the server answers its listing.

Why: on a server that lists folder by folder (Apache, nginx) the poll waits 35-50 ms for the
answers, then spent 10-20 ms more on the ``stat`` of every file (2,000 here). Those are
independent: which folders to read follows from the last listing's layout, and the files the
record names from the last sync. So the scan starts in a thread as the poll starts, and the plan
takes it only when it read exactly the folders the new listing asks for; the recorded files it
did not know of are read then. Anything else (a new layout, a first sync, the CLI) scans as before.

What the plan sees is as fresh as before, to within the listing's time: it was read at most that
long earlier. A file a person changes in between is the same race as one changed while the
executor works, which the executor's own checks before each rename and removal handle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from m3daemon.core.layout import Layout
from m3daemon.core.planner import LocalFile
from m3daemon.local.scan import list_subdirs, scan_local

log = logging.getLogger(__name__)


def scan_dirs(layout: Layout, today: date, days_ahead: int, media_dir: Path) -> set[str]:
    """The folders a plan reads: the window's dates, ``Recurring``, and past date folders (to
    remove what the sync put there)."""
    dirs = {layout.date_dir(today + timedelta(days=i)) for i in range(days_ahead + 1)}
    rec_dir = layout.recurring_dir()
    if rec_dir:
        dirs.add(rec_dir)
    for name in list_subdirs(media_dir / layout.root if layout.root else media_dir):
        rel = f"{layout.root}/{name}" if layout.root else name
        d = layout.parse_date_dir(rel)
        if d is not None and d < today:
            dirs.add(rel)
    return dirs


@dataclass
class _Scan:
    dirs: frozenset[str]
    record_paths: frozenset[str]
    done: threading.Event = field(default_factory=threading.Event)
    found: dict[str, LocalFile] | None = None


@dataclass
class LocalAhead:
    """Kept by the daemon between polls (in its listing cache): the recorded paths of the last
    plan, and the scan of the poll under way."""

    record_paths: frozenset[str] = frozenset()
    _scan: _Scan | None = None

    def start(self, media_dir: Path, dirs: Iterable[str]) -> None:
        scan = _Scan(frozenset(dirs), self.record_paths)
        self._scan = scan

        def run() -> None:
            try:
                scan.found = scan_local(media_dir, scan.record_paths, scan.dirs)
            except Exception as exc:  # noqa: BLE001 - the plan then scans in its own thread
                log.debug("reading the media folder ahead of the listing: %s", exc)
            finally:
                scan.done.set()

        threading.Thread(target=run, name="m3daemon-prescan", daemon=True).start()

    def take(self, media_dir: Path, record_paths: AbstractSet[str], dirs: AbstractSet[str]) -> dict[str, LocalFile]:
        """What the plan needs of the media folder: the scan under way when it read ``dirs``
        (completed with the recorded files it did not know of), else a scan now."""
        scan, self._scan = self._scan, None
        self.record_paths = frozenset(record_paths)
        if scan is not None:
            scan.done.wait()
            if scan.found is not None and scan.dirs == dirs:
                found = dict(scan.found)
                rest = [p for p in record_paths if p not in scan.record_paths and p not in found]
                if rest:
                    found.update(scan_local(media_dir, rest, ()))
                return found
        return scan_local(media_dir, record_paths, dirs)
