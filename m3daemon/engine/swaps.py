"""Files that replace one already there: swapped in together, after one pause for them all.

Why: M³ 25+'s watcher ignores ``change``, and a file swapped in one rename is a ``change``, so
the old duration and thumbnail would stay. A replaced file must be seen removed, then added: the
old one stays away a pause first (core/m3.py: 0.1 s where M³ gets native events, 1.5 s where it
polls a network or cloud folder). Waited file by file, on the thread that runs libcurl's
transfers, 100 replaced files of 100 KB took 3.5 s instead of 0.2 s here, and on a folder M³
polls each one held every download for 1.5 s. Here the replacements of one phase of a sync leave
together, wait one pause, and come in together; until then each old file stays where it is (a
meeting can still show it).

The executor queues a replacement once its new file is verified and its pending row is in the
record (engine/executor.py), and finishes the queue before anything reads the new files (the
copies made from them) and before the sync's record is written.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from time import sleep
from typing import Any

from m3daemon.engine.staging import stat_or_none, unlink_quiet


@dataclass(eq=False)
class Swap:
    """One replacement: ``staged`` (verified) is to take the place of what is at ``target``."""

    staged: Path
    target: Path
    there: bool  # the old file is still at target; False: it already left (a person's, to the trash)
    # (size, mtime_ns) the old file must still have when it is moved away (None: not looked at);
    # one that changed since the swap was queued is left alone and reported ``changed``.
    seen: tuple[int, int] | None = None
    key: Any = None  # the queuer's own (engine/executor.py: what the record and report need)


@dataclass(frozen=True)
class Finished:
    swap: Swap
    error: OSError | None = None  # the swap failed: the old file is back, the staged one not placed
    changed: bool = False  # the file there changed after it was queued: nothing was done


class Swaps:
    """The queue of one phase; safe to fill from several threads."""

    def __init__(self, staging: Path, pause: float) -> None:
        self.staging = staging
        self.pause = pause
        self._lock = threading.Lock()
        self._queued: list[Swap] = []

    def add(self, swap: Swap) -> None:
        with self._lock:
            self._queued.append(swap)

    def finish(self) -> list[Finished]:
        """Every old file away, one pause, every new file in; each swap's outcome, in order."""
        with self._lock:
            swaps, self._queued = self._queued, []
        done: dict[int, Finished] = {}
        away: list[tuple[Swap, Path | None]] = []
        for swap in swaps:
            if not swap.there:
                away.append((swap, None))
                continue
            if swap.seen is not None:
                st = stat_or_none(swap.target)
                if st is None or (st.st_size, st.st_mtime_ns) != swap.seen:
                    done[id(swap)] = Finished(swap, changed=True)  # a person's edit since: looked at again
                    continue
            aside = self.staging / (swap.staged.name + ".replaced")
            try:
                os.replace(swap.target, aside)
            except OSError as exc:  # (in use, on Windows): it stays, and so does the staged file
                done[id(swap)] = Finished(swap, error=exc)
                continue
            away.append((swap, aside))
        if away and self.pause > 0:
            sleep(self.pause)
        for swap, old in away:
            try:
                os.replace(swap.staged, swap.target)
            except OSError as exc:
                if old is not None:
                    os.replace(old, swap.target)  # the old file back rather than none
                done[id(swap)] = Finished(swap, error=exc)
                continue
            if old is not None:
                unlink_quiet(old)
            done[id(swap)] = Finished(swap)
        return [done[id(swap)] for swap in swaps]
