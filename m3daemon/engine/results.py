"""What the executor reports: the live :class:`Progress` the front-ends read while it runs, and
the :class:`Outcome` of a run. Split from :mod:`m3daemon.engine.executor`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from m3daemon.core.planner import Placed
from m3daemon.errors import M3Error


@dataclass
class Progress:
    """Counters the front ends read; updated from worker threads."""

    total_files: int = 0
    done_files: int = 0
    total_bytes: int = 0
    done_bytes: int = 0
    current: str = ""  # a file being transferred now (never one already finished)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _active: dict[str, None] = field(default_factory=dict, repr=False)  # in the order they started

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.done_bytes += n

    def file_started(self, name: str) -> None:
        with self._lock:
            self._active[name] = None
            self.current = name

    def file_ended(self, name: str) -> None:
        """A file stopped (done or failed): the label names one still running, the longest-running."""
        with self._lock:
            self._active.pop(name, None)
            self.current = next(iter(self._active), "")

    def file_done(self, name: str) -> None:
        with self._lock:
            self.done_files += 1
        self.file_ended(name)


@dataclass
class Outcome:
    downloaded: int = 0
    copied: int = 0
    removed: int = 0  # not those that moved (below)
    moved: int = 0  # old names removed once their file was copied to its new name
    unchanged: int = 0
    conflicts: int = 0
    adopted: int = 0
    failed: list[tuple[str, M3Error]] = field(default_factory=list)
    rows: list[Placed] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # copies not made because their source failed
    # Files another program holds open (Windows): the new version waits in staging for the next sync.
    waiting: list[tuple[str, M3Error]] = field(default_factory=list)
    # target -> the server's status for a file it would not serve (kept in the record, so that the
    # same failure at the next sync is named for what it is and logged only once).
    failing: dict[str, int] = field(default_factory=dict)
    # date (ISO) -> the media files of that date that are not in place after this sync.
    missing: dict[str, list[str]] = field(default_factory=dict)
    # For the sync's history: a person's files sent to the trash (path, reason code) and files removed.
    trashed: list[tuple[str, str]] = field(default_factory=list)
    removed_paths: list[str] = field(default_factory=list)
