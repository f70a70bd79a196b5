"""The local side of a plan: what is in the media folder now, by ``stat`` alone (no file is read)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from m3daemon.core.planner import LocalFile
from m3daemon.local.safefs import linked_folder


def scan_local(media_dir: Path, record_paths: Iterable[str], date_dirs: Iterable[str]) -> dict[str, LocalFile]:
    """Stat what the planner needs: every recorded file, and every file in the given folders.

    Only ``stat`` is used; no file is read, so a no-op sync costs one system call per file.
    """
    found: dict[str, LocalFile] = {}
    for rel_dir in set(date_dirs):
        if rel_dir and linked_folder(media_dir, rel_dir + "/x") is not None:
            continue  # a folder that is a link is never looked into (the executor refuses it)
        try:
            with os.scandir(media_dir / rel_dir) as it:
                for de in it:
                    if de.is_file(follow_symlinks=False):
                        st = de.stat(follow_symlinks=False)
                        found[f"{rel_dir}/{de.name}" if rel_dir else de.name] = LocalFile(st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue
    for rel in record_paths:
        if rel in found or linked_folder(media_dir, rel) is not None:
            continue
        try:
            st = os.stat(media_dir / rel, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        found[rel] = LocalFile(st.st_size, st.st_mtime_ns)
    return found


def list_subdirs(path: Path) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [de.name for de in it if de.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
