"""Watch the media folders: a synced file that a person deletes or edits is put back.

The watcher is only a hint. It asks for a *repair* (a sync from the remembered listing, with no
listing request), debounced, and the scheduled syncs still repair anything it missed. Where
inotify cannot watch (its limit reached), it falls back to polling, and says so in the log.

It must cost nothing while the sync writes. inotify reports every ``write()`` as a modification:
a 200 MiB download gave some 12,800 events, each handled in three of watchdog's threads, and the
download waited for Python's GIL behind them (2.5 s instead of 0.3 s, docs/performance.md). So on
Linux the kernel is asked only for what a person's change ends with: a file closed after writing,
deleted or moved. Events are debounced in one thread, not a timer thread per event.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from m3daemon.core.layout import STAGING_DIR

log = logging.getLogger(__name__)

DEBOUNCE = 1.0
_INTERESTING = {"deleted", "modified", "moved", "closed"}


class MediaWatcher:
    """One observer for all media folders; ``on_change(folder)`` fires once per quiet period."""

    def __init__(self, on_change: Callable[[Path], None], debounce: float = DEBOUNCE) -> None:
        self._on_change = on_change
        self._debounce = debounce
        self._due: dict[Path, float] = {}  # media folder -> when its quiet period ends (monotonic)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._debouncer: threading.Thread | None = None
        self._filter: list[Any] | None = None  # the events the kernel is asked for (None: all)
        self._observer: Any = None
        self._watches: dict[Path, Any] = {}
        self._stopping = threading.Event()
        self.mode = "off"
        self.rearmed = 0  # how often a media folder that was deleted came back and is watched again

    def start(self, folders: list[Path]) -> None:
        from watchdog.observers import Observer

        self._stopping.clear()
        self._debouncer = threading.Thread(target=self._debounce_loop, name="watch-debounce", daemon=True)
        self._debouncer.start()
        self._filter = _kernel_filter()
        self._observer = self._schedule(Observer(), folders)
        if self._observer is not None:
            self.mode = "events"
            return
        from watchdog.observers.polling import PollingObserver

        log.warning("the media folders cannot be watched for changes (inotify limit?); "
                    "checking them every 10 seconds instead")
        self._filter = None
        self._observer = self._schedule(PollingObserver(timeout=10), folders)
        self.mode = "polling" if self._observer is not None else "off"

    def _handler(self, root: Path) -> Any:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._event(root, event)

        return Handler()

    @property
    def pending(self) -> bool:
        """Whether a change waits for its quiet period to end."""
        with self._lock:
            return bool(self._due)

    def _schedule(self, observer: Any, folders: list[Path]) -> Any:
        try:
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
                self._watches[folder] = observer.schedule(self._handler(folder), str(folder), recursive=True,
                                                          event_filter=self._filter)
            observer.start()
        except OSError as exc:
            log.debug("watching failed: %s", exc)
            try:
                observer.stop()
            except Exception:  # noqa: BLE001, S110 - a watcher that failed to start has nothing to stop
                pass
            return None
        return observer

    def _root_gone(self, root: Path) -> None:
        """The media folder itself was deleted (or moved away): its watch is dead. Watch it again as
        soon as it is back (the repair this deletion asks for recreates it, or a person does)."""
        log.info("the media folder %s was removed; watching it again once it is back", root)

        def rearm() -> None:
            while not self._stopping.wait(0.2):
                if not root.is_dir() or self._observer is None:
                    continue
                try:
                    old = self._watches.pop(root, None)
                    if old is not None:
                        try:
                            self._observer.unschedule(old)
                        except (KeyError, ValueError):
                            pass
                    self._watches[root] = self._observer.schedule(self._handler(root), str(root), recursive=True,
                                                                  event_filter=self._filter)
                except OSError as exc:
                    log.debug("watching %s again failed (%s); trying again", root, exc)
                    continue
                self.rearmed += 1
                log.info("watching the media folder %s again", root)
                self._fire(root)  # what was restored by hand may not be what the sync placed
                return

        threading.Thread(target=rearm, name="watch-rearm", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._due.clear()
            self._wake.notify_all()
        if self._debouncer is not None:
            self._debouncer.join(timeout=5)
            self._debouncer = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def _event(self, root: Path, event: Any) -> None:
        path = Path(event.src_path)
        if path == root and event.event_type in ("deleted", "moved"):
            self._root_gone(root)
            self._debounced(root)
            return
        if event.event_type not in _INTERESTING or getattr(event, "is_directory", False):
            return
        try:
            rel = path.relative_to(root)
        except ValueError:
            return
        if rel.parts and rel.parts[0] == STAGING_DIR:
            return  # our own staging area
        self._debounced(root)

    def _debounced(self, root: Path) -> None:
        with self._lock:
            new = root not in self._due
            self._due[root] = time.monotonic() + self._debounce
            if new:  # a later end of an already pending period needs no wake-up: the loop re-reads it
                self._wake.notify()

    def _debounce_loop(self) -> None:
        with self._lock:
            while not self._stopping.is_set():
                if not self._due:
                    self._wake.wait()
                    continue
                now = time.monotonic()
                ready = [root for root, due in self._due.items() if due <= now]
                if not ready:
                    self._wake.wait(min(self._due.values()) - now)
                    continue
                for root in ready:
                    del self._due[root]
                self._lock.release()
                try:
                    for root in ready:
                        self._call(root)
                finally:
                    self._lock.acquire()

    def _fire(self, root: Path) -> None:
        with self._lock:
            self._due.pop(root, None)
        self._call(root)

    def _call(self, root: Path) -> None:
        try:
            self._on_change(root)
        except Exception:
            log.exception("watcher callback failed")


def _kernel_filter() -> list[Any] | None:
    """On Linux, the events inotify is asked for (None elsewhere: every event). Without IN_MODIFY
    and IN_ATTRIB: an edit still ends with IN_CLOSE_WRITE, a replacement with a move."""
    if not sys.platform.startswith("linux"):
        return None
    from watchdog.events import (
        DirDeletedEvent,
        DirMovedEvent,
        FileClosedEvent,
        FileDeletedEvent,
        FileMovedEvent,
    )

    return [FileDeletedEvent, DirDeletedEvent, FileMovedEvent, DirMovedEvent, FileClosedEvent]
