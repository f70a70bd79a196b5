"""The executor's file-level helpers: staging names, the mtime grid, files in use (and the
downloads that wait for them), the volume's traits, the trash. Split from :mod:`m3daemon.engine.executor`, which carries out a plan with them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import threading
from pathlib import Path

from m3daemon.local.longpaths import VolumeTraits, plain_path, probe_volume
from m3daemon.local.safefs import write_new_text

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


# --- files that wait, downloaded, because their target was in use ----------------------------


def ready_name(target_rel: str) -> str:
    """The staging name of a verified download that waits for its target (in use)."""
    return staging_name((target_rel,)) + ".ready"


def ready_paths(staging: Path, target_rel: str) -> tuple[Path, Path]:
    """The waiting file and its description (JSON)."""
    ready = staging / ready_name(target_rel)
    return ready, ready.with_name(ready.name + ".json")


def keep_waiting(staging: Path, staged: Path, target_rel: str, version: str, source: str) -> None:
    """Keep a verified file whose target is in use, with what it is, for the next sync."""
    ready, meta = ready_paths(staging, target_rel)
    try:
        if staged != ready:
            os.replace(staged, ready)
        write_new_text(meta, json.dumps({"target": target_rel, "version": version, "source": source,
                                         "size": ready.stat().st_size}))
    except OSError as exc:
        log.warning("could not keep the download of %s for the next sync: %s", target_rel, exc)
        unlink_quiet(staged)


def waiting_file(staging: Path, target_rel: str, version: str, source: str, size: int) -> Path | None:
    """The download that waited for ``target_rel`` when it is still this version, else None
    (and a stale one is removed)."""
    ready, meta = ready_paths(staging, target_rel)
    try:
        info = json.loads(meta.read_text("utf-8"))
        st = ready.lstat()
    except (OSError, ValueError):
        return None
    if (info.get("target"), info.get("version"), info.get("source"), info.get("size")) != (
            target_rel, version, source, size) or not stat.S_ISREG(st.st_mode) or st.st_size != size:
        unlink_quiet(ready)
        unlink_quiet(meta)
        return None
    unlink_quiet(meta)  # written again if the target is still in use
    return ready


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
