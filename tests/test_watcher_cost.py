"""The watcher costs nothing while files are written: the sync's own downloads must not wait
behind it (a 200 MiB download through the daemon took 2.5 s instead of 0.3 s when every
``write()`` was an event handled in watchdog's threads)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from conftest import wait_until

from m3daemon.daemon.watcher import MediaWatcher

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify's event mask is Linux's")


class Seen:
    def __init__(self, watcher: MediaWatcher) -> None:
        self.events: list[str] = []
        original = watcher._event

        def counting(root: Path, event: object) -> None:
            self.events.append(getattr(event, "event_type", "?"))
            original(root, event)

        watcher._event = counting  # type: ignore[method-assign]


@linux_only
def test_writing_a_big_file_in_the_media_folder_gives_the_watcher_a_handful_of_events(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    calls: list[Path] = []
    changed = threading.Event()
    watcher = MediaWatcher(lambda root: (calls.append(root), changed.set()), debounce=0.05)
    seen = Seen(watcher)
    watcher.start([media])
    try:
        with open(media / "talk.mp4", "wb") as f:  # as libcurl writes a download: chunk by chunk
            for _ in range(2000):
                f.write(b"x" * 16384)
                f.flush()
        wait_until("the change to be reported", changed.is_set)
    finally:
        watcher.stop()
    assert "closed" in seen.events  # the end of the writing is what counts
    assert len(seen.events) < 10, seen.events[:20]  # not one event per write()
    assert calls == [media]


def test_many_changes_in_a_quiet_period_ask_for_one_repair_without_a_thread_each(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "2026-01-01").mkdir(parents=True)
    files = [media / "2026-01-01" / f"{i:04d}.jpg" for i in range(300)]
    for p in files:
        p.write_bytes(b"a")
    calls: list[Path] = []
    changed = threading.Event()
    watcher = MediaWatcher(lambda root: (calls.append(root), changed.set()), debounce=0.5)
    watcher.start([media])
    try:
        before = threading.active_count()
        most = before
        for p in files:  # a person deletes a whole day's files
            os.unlink(p)
            most = max(most, threading.active_count())
        wait_until("the repair request", changed.is_set)
        wait_until("the quiet period to end", lambda: not watcher.pending)
    finally:
        watcher.stop()
    assert calls == [media]
    assert most <= before + 1, (before, most)


def test_a_synced_file_edited_in_place_is_reported(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "2026-01-01").mkdir(parents=True)
    target = media / "2026-01-01" / "a.jpg"
    target.write_bytes(b"synced")
    changed = threading.Event()
    watcher = MediaWatcher(lambda root: changed.set(), debounce=0.05)
    watcher.start([media])
    try:
        with open(target, "r+b") as f:  # an image editor saving over the file
            f.write(b"edited")
        wait_until("the edit to be reported", changed.is_set)
    finally:
        watcher.stop()
