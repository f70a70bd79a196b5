"""Files that arrived on libcurl, flushed and checked, put in place a few at a time.

Why: each file's pending row (local/record.py) was its own SQLite transaction, about 70 µs here
and the largest cost per 100 KB file after libcurl's own. The files that arrive within
:data:`WAIT` seconds (at most :data:`BATCH`) have their rows committed in one transaction, still
before any of their renames, so a sync killed at any point leaves no file of its own in the media
folder that the record does not name; a file killed before its rename is downloaded again.

Only a file whose target is free takes this way. One whose target exists (an update, a person's
file), or appeared since, goes through the executor's careful placing, file by file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Protocol

from m3daemon.core.planner import Fetch, Placed
from m3daemon.engine.results import Progress
from m3daemon.errors import M3Error

log = logging.getLogger(__name__)

BATCH = 32  # files whose pending rows are committed together
WAIT = 0.1  # seconds the first of them waits, at most, for the others


class Placing(Protocol):
    """What the executor lends: its careful placing and the steps the batch shares with it."""

    media_dir: Path
    progress: Progress

    def _staged_row(self, staged: Path, target_rel: str, version: str, source: str,
                    modified: datetime | None) -> Placed: ...

    def _not_placed(self, exc: OSError, staged: Path, target_rel: str, version: str,
                    source: str) -> M3Error: ...

    def _place_arrived(self, action: Fetch, staged: Path) -> Placed | None: ...


class Arrivals:
    """Collects the files that arrived; :meth:`flush` places them, each result in ``futures``."""

    def __init__(self, executor: Placing, note_pending_many: Callable[[list[Placed]], None],
                 futures: dict[int, Future[Placed | None]]) -> None:
        self.executor = executor
        self.note_pending_many = note_pending_many
        self.futures = futures
        self._waiting: list[tuple[int, Fetch, Path]] = []
        self._since = 0.0
        self._folders: set[str] = set()  # made (or found) during this sync

    def add(self, key: int, action: Fetch, staged: Path) -> None:
        if not self._waiting:
            self._since = time.monotonic()
        self._waiting.append((key, action, staged))
        if len(self._waiting) >= BATCH:
            self.flush()

    def flush_if_due(self) -> None:
        if self._waiting and time.monotonic() - self._since >= WAIT:
            self.flush()

    def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        ex = self.executor
        free: list[tuple[Future[Placed | None], Fetch, Path, str, Placed]] = []
        for key, action, staged in waiting:
            fut: Future[Placed | None] = Future()
            self.futures[key] = fut
            try:
                target = os.path.join(ex.media_dir, action.target)
                if os.path.lexists(target):
                    fut.set_result(ex._place_arrived(action, staged))
                    continue
                r = action.remote
                row = ex._staged_row(staged, action.target, r.version, "/".join(r.parts), r.modified)
                folder = os.path.dirname(target)
                if folder not in self._folders:
                    try:
                        os.makedirs(folder, exist_ok=True)
                    except OSError as exc:
                        fut.set_exception(ex._not_placed(exc, staged, action.target, r.version, row.source))
                        continue
                    self._folders.add(folder)
                free.append((fut, action, staged, target, row))
            except BaseException as exc:  # noqa: BLE001 - collected per file by the executor
                fut.set_exception(exc)
        if not free:
            return
        try:
            self.note_pending_many([row for *_x, row in free])
        except BaseException as exc:  # noqa: BLE001 - every file of the batch waits for its row
            for fut, *_rest in free:
                fut.set_exception(exc)
            return
        for fut, action, staged, target, row in free:
            try:
                if os.path.lexists(target):  # a file appeared there since: placed with care
                    fut.set_result(ex._place_arrived(action, staged))
                    continue
                try:
                    os.replace(staged, target)
                except FileNotFoundError:
                    if not os.path.exists(staged):
                        raise
                    os.makedirs(os.path.dirname(target), exist_ok=True)  # its folder was removed since
                    os.replace(staged, target)
            except OSError as exc:
                fut.set_exception(ex._not_placed(exc, staged, action.target, row.version, row.source))
                continue
            except BaseException as exc:  # noqa: BLE001 - collected per file by the executor
                fut.set_exception(exc)
                continue
            ex.progress.file_done(action.target)
            fut.set_result(row)
