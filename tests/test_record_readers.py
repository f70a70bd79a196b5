"""Readers of the sync record (status, the language choice, the dashboard) never wait for a sync.

A sync holds one write transaction on the record for as long as it runs; a reader that opened the
record for writing (its schema, its WAL switch) had to wait for that lock and failed after 30 s
with "database is locked" (seen with `m3daemon status --json` beside a running daemon).
"""

from __future__ import annotations

import time
from pathlib import Path

from m3daemon.local.record import Record


def test_a_reader_answers_at_once_while_a_sync_holds_the_record(tmp_path: Path) -> None:
    path = tmp_path / "record.sqlite"
    writer = Record(path)
    writer.set_meta(effective_prefs={"app.localAppLang": "fr"})
    writer._db.execute("BEGIN IMMEDIATE")  # what a running sync holds
    try:
        started = time.monotonic()
        reader = Record(path, readonly=True)
        try:
            assert reader.get_meta("effective_prefs") == {"app.localAppLang": "fr"}
        finally:
            reader.close()
        assert time.monotonic() - started < 2.0
    finally:
        writer._db.execute("ROLLBACK")
        writer.close()


def test_a_reader_never_creates_or_changes_the_record(tmp_path: Path) -> None:
    path = tmp_path / "record.sqlite"
    Record(path).close()
    before = path.stat().st_mtime_ns, path.stat().st_size
    reader = Record(path, readonly=True)
    assert reader.get_meta("missing", "default") == "default"
    reader.close()
    assert (path.stat().st_mtime_ns, path.stat().st_size) == before


def test_a_reader_of_a_damaged_record_gets_the_plain_words_error_and_leaves_it_to_the_sync(tmp_path: Path) -> None:
    import pytest

    from m3daemon.errors import LocalFolderError

    path = tmp_path / "record.sqlite"
    path.write_bytes(b"this is not a database, it is a text file" * 100)
    with pytest.raises(LocalFolderError, match="cannot be opened"):
        Record(path, readonly=True)
    assert path.read_bytes().startswith(b"this is not a database")  # untouched: only the sync moves it aside


def test_a_reader_of_a_record_the_first_sync_has_only_just_created_sees_an_empty_record(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "record.sqlite"
    sqlite3.connect(path).close()  # the file exists, its tables do not yet
    reader = Record(path, readonly=True)
    assert reader.get_meta("effective_prefs") is None and reader.load() == {}
    reader.close()
