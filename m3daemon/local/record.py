"""The local record: what the sync placed in the media folder, kept outside it in SQLite.

The record is replaced in one transaction at the end of each sync. Because a sync can be killed
between renaming a file into place and that commit, every file is first noted in ``pending``
(committed at once) *before* its rename; the next sync counts a pending file as the sync's own
when its size and mtime still match, so a crash never turns our files into "a person's files".
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from m3daemon.core.planner import Placed
from m3daemon.errors import LocalFolderError
from m3daemon.i18n import _
from m3daemon.local.paths import ensure_private_dir

log = logging.getLogger(__name__)

#: How many syncs' changes the history keeps (``m3daemon history``, the dashboard's *What changed*).
HISTORY_KEEP = 50

RECORD_FILE = "record.sqlite"


def record_file(state_dir: Path) -> Path:
    """Where a congregation's record lives in its state folder."""
    return state_dir / RECORD_FILE


SCHEMA = """
CREATE TABLE IF NOT EXISTS placed (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    version TEXT NOT NULL, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    version TEXT NOT NULL, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL);
"""


class Record:
    def __init__(self, db_path: Path, *, repair: bool = False, readonly: bool = False) -> None:
        """Open (or create) the record. With ``repair`` (the sync does this; readers such as
        ``status`` do not), a damaged record is moved aside and a new one started.

        ``readonly``: for readers (status, the language choice, the dashboard's pages). They take
        no write lock, so a sync that holds its one transaction for minutes never makes them wait
        or fail with "database is locked".
        """
        self.path = db_path
        self.damaged: Path | None = None  # where a damaged record was moved aside, if it was
        self._as_loaded: dict[str, Placed] | None = None  # the placed rows as load() found them
        if readonly:
            try:
                self._db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True,
                                           isolation_level=None, check_same_thread=False, timeout=5)
                try:
                    self._db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()  # a damaged file shows here
                except sqlite3.OperationalError as exc:
                    self._db.close()
                    if "no such table" not in str(exc):
                        raise
                    # A record the first sync has only just created: it holds nothing yet.
                    self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                    self._db.executescript(SCHEMA)
                except BaseException:
                    self._db.close()
                    raise
            except (OSError, sqlite3.Error, ValueError) as exc:
                raise LocalFolderError(
                    _("The sync record {path} cannot be opened: {reason}.").format(path=db_path, reason=exc),
                    _("Check that the folder is writable. Deleting the file is safe: the next sync rebuilds it."),
                ) from exc
            return
        try:
            ensure_private_dir(db_path.parent)  # the record holds names and paths
            try:
                self._db = self._open(db_path)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) or not repair:
                    raise  # locked, unwritable: not damage, and moving it would not help
                self.damaged = _move_aside(db_path)
                log.warning(
                    "the sync record %s was damaged (%s); it was moved to %s and a new record started. "
                    "Files already in the media folder are kept; identical ones are taken over again.",
                    db_path, exc, self.damaged,
                )
                self._db = self._open(db_path)
        except (OSError, sqlite3.Error) as exc:
            raise LocalFolderError(
                _("The sync record {path} cannot be opened: {reason}.").format(path=db_path, reason=exc),
                _("Check that the folder is writable. Deleting the file is safe: the next sync rebuilds it."),
            ) from exc

    @staticmethod
    def _open(db_path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            # WAL: a pending row per file costs an append, not a journal rewrite (2,000 files on ext4:
            # 7.5 s -> 5.4 s). A power cut may lose the newest pending rows; the next sync then finds
            # those files identical and adopts them.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            # A damaged page deep in the file shows only here (a few ms for thousands of rows).
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else 'no answer'}")
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def load(self, on_disk: Callable[[str], tuple[int, int] | None] | None = None) -> dict[str, Placed]:
        """Placed rows, with pending rows (from an interrupted sync) laid over them.

        A pending row is written *before* its rename, so a sync killed between the two leaves the
        previous file in place under a pending row that describes the new one. ``on_disk`` (path ->
        (size, mtime_ns) of the file there, or None) lets the placed row stand in that case, so the
        sync's own file is not taken for a person's edit and sent to the trash.
        """
        placed, pending = self._rows("placed"), self._rows("pending")
        # What commit() can compare with: a sync that changed nothing rewrites no rows.
        self._as_loaded = placed if not pending else None
        rows = dict(placed)
        for path, row in pending.items():
            old = placed.get(path)
            if old is not None and on_disk is not None:
                here = on_disk(path)
                if here == (old.size, old.mtime_ns) and here != (row.size, row.mtime_ns):
                    continue
            rows[path] = row
        return rows

    def _rows(self, table: str) -> dict[str, Placed]:
        return {row.path: row for row in map(Placed._make, self._db.execute(
            f"SELECT path, size, mtime_ns, version, source FROM {table}"))}

    def note_pending(self, row: Placed) -> None:
        self._as_loaded = None
        self._db.execute(
            "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?)",
            (row.path, row.size, row.mtime_ns, row.version, row.source),
        )

    def note_pending_many(self, rows: Sequence[Placed]) -> None:
        """:meth:`note_pending` for several files in one transaction: one commit instead of one
        per file (about 70 µs each here), before any of their renames."""
        if len(rows) == 1:
            self.note_pending(rows[0])
            return
        self._as_loaded = None
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?)",
                           [(r.path, r.size, r.mtime_ns, r.version, r.source) for r in rows])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def commit(self, rows: Iterable[Placed], meta: dict[str, Any] | None = None) -> None:
        """Replace the whole record with ``rows`` in one transaction.

        When ``rows`` are exactly what :meth:`load` found (no pending rows then, none noted since),
        only ``meta`` is written: the no-op poll of a large folder rewrites nothing.
        """
        rows = list(rows)
        same = self._as_loaded is not None and len(rows) == len(self._as_loaded) and all(
            self._as_loaded.get(r.path) == r for r in rows)  # (tuples: compared in C)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if not same:
                db.execute("DELETE FROM placed")
                db.executemany(
                    "INSERT OR REPLACE INTO placed VALUES (?, ?, ?, ?, ?)",
                    [(r.path, r.size, r.mtime_ns, r.version, r.source) for r in rows],
                )
                db.execute("DELETE FROM pending")
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._as_loaded = {r.path: r for r in rows}

    def add_history(self, entry: dict[str, Any], keep: int = HISTORY_KEEP) -> None:
        """Append one sync's changes; only the newest ``keep`` entries are kept."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO history (entry) VALUES (?)", (json.dumps(entry, ensure_ascii=False),))
            db.execute("DELETE FROM history WHERE id NOT IN (SELECT id FROM history ORDER BY id DESC LIMIT ?)",
                       (keep,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def history(self, limit: int = HISTORY_KEEP) -> list[dict[str, Any]]:
        """The newest entries first."""
        out: list[dict[str, Any]] = []
        for (text,) in self._db.execute("SELECT entry FROM history ORDER BY id DESC LIMIT ?", (limit,)):
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, **values: Any) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for key, value in values.items():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise


def _move_aside(db_path: Path) -> Path:
    """``record.sqlite`` -> ``record.sqlite.damaged-<UTC time>`` (with its WAL and shared-memory
    files), kept for a person or a bug report; never deleted."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = db_path.with_name(f"{db_path.name}.damaged-{stamp}-{n}")
    os.replace(db_path, aside)
    for suffix in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return aside
