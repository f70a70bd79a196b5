"""The executor's file-level helpers: staging names, the mtime grid, files in use, the volume's
traits, the trash. Split from :mod:`m3daemon.engine.executor`, which carries out a plan with them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from pathlib import Path

from m3daemon.local.longpaths import VolumeTraits, plain_path, probe_volume

log = logging.getLogger("m3daemon.engine.executor")

# Placed files get an mtime on this grid (FAT's resolution), see on_time_grid.
MTIME_GRID_SECONDS = 2


def on_time_grid(seconds: float) -> int:
    """``seconds`` as nanoseconds, rounded down to the 2 s grid that every file system keeps exactly.

    The record knows our files by size and mtime. FAT keeps even seconds, exfat-fuse and HFS+ whole
    seconds, NTFS 100 ns, ext4 1 ns; a time the volume cannot hold comes back rounded (after a
    remount, or at once), and our file would look like a person's. A time on the grid is kept as
    is everywhere, so the exact comparison holds; the file shows at most 2 s earlier.
    """
    return int(seconds // MTIME_GRID_SECONDS) * MTIME_GRID_SECONDS * 1_000_000_000


# Windows: ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION (another program holds the file open).
_IN_USE = frozenset({32, 33})


def in_use(exc: OSError) -> bool:
    """Whether an OS error says another program holds the file open (a Windows sharing violation)."""
    return getattr(exc, "winerror", None) in _IN_USE


def waiting_targets(staging: Path) -> list[str]:
    """The media files whose new version waits in ``staging`` because the old one was in use."""
    out: list[str] = []
    try:
        metas = sorted(staging.glob("*.ready.json"))
    except OSError:
        return out
    for meta in metas:
        try:
            out.append(str(json.loads(meta.read_text("utf-8"))["target"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(out)


_VOLUMES: dict[str, VolumeTraits | None] = {}
_VOLUMES_LOCK = threading.Lock()


def volume_of(staging: Path) -> VolumeTraits | None:
    """What the media folder's volume does (probed once per folder and process, in the staging
    folder, which the watcher ignores); None when the probe itself fails."""
    key = str(staging)
    with _VOLUMES_LOCK:
        if key in _VOLUMES:
            return _VOLUMES[key]
    traits: VolumeTraits | None = None
    try:
        traits = probe_volume(staging)
        log.info("the media folder's volume: %s", traits.describe())
    except OSError:
        log.debug("probing the volume of %s failed", staging, exc_info=True)
    with _VOLUMES_LOCK:
        _VOLUMES[key] = traits
    return traits


def send_to_trash(path: Path) -> None:
    """The platform's trash, so a person's file can always be restored."""
    from send2trash import send2trash

    send2trash(plain_path(str(path)))  # the shell's trash refuses the \\?\ form


def staging_name(parts: tuple[str, ...]) -> str:
    return hashlib.sha256("/".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:24]


def stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()  # a link at the target is a person's, never followed
    except FileNotFoundError:
        return None


def unlink_quiet(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def hide_on_windows(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - mypy checks this branch only with --platform win32
        import ctypes

        ctypes.windll.kernel32.SetFileAttributesW(str(path), 0x02)
