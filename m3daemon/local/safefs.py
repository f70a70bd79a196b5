"""Writing in the media folder without following links.

The media folder is shared with people (and with whatever they plant in it). A link in the staging
folder, or a date, language or staging folder replaced by a link, must never make the sync write,
trash or delete anywhere else: staging files are created with ``O_EXCL | O_NOFOLLOW`` (a planted
link is removed, not written through), and a folder on the way to a target that is a link (or a
Windows junction) is refused with a clear error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from m3daemon.errors import LocalFolderError
from m3daemon.i18n import _

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_BINARY = getattr(os, "O_BINARY", 0)


def open_new(path: Path) -> BinaryIO:
    """A new, empty file at ``path``; whatever was there (a planted link included) is unlinked,
    and the create never follows a link (``O_EXCL``), not even one that appears in between.

    The create is tried first: in a sync nothing is there, and an unlink that fails costs a
    system call and an exception for each file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_BINARY
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        os.unlink(path)
        fd = os.open(path, flags, 0o644)  # a second file planted in between: the error stands
    return os.fdopen(fd, "wb")


def open_existing(path: Path) -> BinaryIO:
    """An existing regular file for reading and writing (a resume); a link is refused (ELOOP)."""
    fd = os.open(path, os.O_RDWR | O_NOFOLLOW | O_BINARY)
    return os.fdopen(fd, "r+b")


def write_new_text(path: Path, text: str) -> None:
    with open_new(path) as f:
        f.write(text.encode("utf-8"))


def is_link(path: str | os.PathLike[str]) -> bool:
    """A symbolic link, or a Windows junction (Python 3.12+ tells those apart)."""
    isjunction = getattr(os.path, "isjunction", None)
    return os.path.islink(path) or bool(isjunction is not None and isjunction(path))


def linked_folder(root: Path, rel: str) -> Path | None:
    """The first folder between ``root`` (itself may be a link: a person's choice) and the file
    ``rel`` that is a link, or None. (On strings: it runs for every file a sync places.)"""
    cur = os.fspath(root)
    parts = rel.replace(os.sep, "/").split("/") if os.altsep else rel.split("/")
    for part in parts[:-1]:
        if not part:
            continue
        cur = os.path.join(cur, part)
        if is_link(cur):
            return Path(cur)
    return None


def linked_folder_error(folder: Path) -> LocalFolderError:
    try:
        target = str(folder.readlink())
    except OSError:
        target = "?"
    return LocalFolderError(
        _("The folder {folder} is a link to {target}; m3daemon writes nothing through links.").format(
            folder=folder, target=target
        ),
        _("Replace the link with a real folder (or delete it; the next sync creates the folder)."),
    )


def check_no_link(root: Path, rel: str) -> None:
    """Raise :func:`linked_folder_error` when a folder on the way to ``rel`` is a link."""
    linked = linked_folder(root, rel)
    if linked is not None:
        raise linked_folder_error(linked)
