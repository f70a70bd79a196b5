"""The daemon's log: a rotating file in the platform's log folder, read back by ``m3daemon logs``."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from m3daemon.i18n import EnglishLogs
from m3daemon.local import paths

LOG_NAME = "m3daemon.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_file() -> Path:
    return paths.log_dir() / LOG_NAME


def setup_daemon_logging(verbose: int = 0) -> Path:
    """File at INFO (DEBUG with -vv), and the terminal at WARNING (more with -v)."""
    path = log_file()
    paths.ensure_private_dir(path.parent)  # the log names files and folders
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                        encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(FORMAT))
    file_handler.addFilter(EnglishLogs())
    file_handler.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    console.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)
    root = logging.getLogger()
    root.handlers[:] = [file_handler, console]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    for noisy in ("httpx", "httpcore", "apscheduler", "watchdog", "cheroot", "PIL", "wsgidav"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def tail(n: int, path: Path | None = None) -> list[str]:
    path = path or log_file()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return list(deque(f, maxlen=n))
    except FileNotFoundError:
        return []


def follow(path: Path | None = None, poll: float = 0.5) -> Iterator[str]:
    """Lines appended to the log from now on, across rotations (like ``tail -F``)."""
    path = path or log_file()
    f = None
    inode = None
    while True:
        if f is None:
            try:
                f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - kept open while following
                inode = path.stat().st_ino
                f.seek(0, 2)
            except FileNotFoundError:
                time.sleep(poll)
                continue
        line = f.readline()
        if line:
            yield line
            continue
        try:
            if path.stat().st_ino != inode:
                f.close()
                f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - kept open while following
                inode = path.stat().st_ino
                continue
        except FileNotFoundError:
            pass
        time.sleep(poll)
