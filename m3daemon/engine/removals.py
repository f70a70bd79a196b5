"""Take files out of the media folder, as a plan says: removed, moved to the trash, or an empty
folder left behind.

A removal re-checks the file first: if its size or modification time is no longer what the sync
saw, a person (or M³) touched it in between and it stays. A file held open by another program
(M³ showing it, on Windows) waits for the next update instead of failing. Nothing is removed
through a linked folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from m3daemon.core.planner import Delete, RemoveDir, Trash
from m3daemon.engine.results import Outcome
from m3daemon.engine.staging import in_use
from m3daemon.errors import FileInUse
from m3daemon.i18n import _
from m3daemon.local.safefs import linked_folder, linked_folder_error
from m3daemon.remote.transfer import local_error

log = logging.getLogger(__name__)


def trash_one(media_dir: Path, action: Trash, out: Outcome, trash: Callable[[Path], None]) -> None:
    """Move a file that is in the way (a person's, or edited) to the trash, counted as a conflict."""
    path = media_dir / action.path
    linked = linked_folder(media_dir, action.path)
    if linked is not None:
        out.failed.append((action.path, linked_folder_error(linked)))
        return
    try:
        if os.path.lexists(path):
            trash(path)
            out.conflicts += 1
            out.trashed.append((action.path, action.reason))
            log.info("moved %s to the trash (%s)", action.path, action.reason)
    except OSError as exc:
        out.failed.append((action.path, local_error(exc, path)))


def delete_one(media_dir: Path, action: Delete, out: Outcome) -> None:
    """Remove a file the sync placed, unless it changed since the sync looked at it."""
    path = media_dir / action.path
    linked = linked_folder(media_dir, action.path)
    if linked is not None:
        out.failed.append((action.path, linked_folder_error(linked)))
        return
    try:
        st = path.lstat()
        if (st.st_size, st.st_mtime_ns) != (action.size, action.mtime_ns):
            log.info("kept %s: it changed after the sync looked at it", action.path)
            return
        path.unlink()
        if action.reason == "moved":
            out.moved += 1
        else:
            out.removed += 1
        out.removed_paths.append(action.path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if in_use(exc):
            err = FileInUse(
                _("{path} is in use by another program; it will be removed after the meeting.").format(
                    path=action.path),
                _("Nothing to do: the next update removes it."),
            )
            log.warning("%s: %s", action.path, err.message)
            out.waiting.append((action.path, err))
            return
        out.failed.append((action.path, local_error(exc, path)))


def remove_empty_dirs(media_dir: Path, actions: Iterable[RemoveDir]) -> None:
    """Remove folders the plan emptied; one that still holds something (a person's file) stays."""
    for action in actions:
        try:
            (media_dir / action.path).rmdir()
        except OSError:
            log.debug("left %s in place: not empty", action.path)
