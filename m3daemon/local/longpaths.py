"""Paths past Windows' 260 characters, and what the media folder's volume does to names and times.

Windows limits a path to 260 characters (MAX_PATH) unless the path has the ``\\\\?\\`` form, or
long paths are switched on in the registry *and* the program declares itself long-path aware.
A media folder under ``C:\\Users\\<name>\\Documents\\Congregation Media`` plus a date folder
(``2026-03-04 - Wednesday``) plus a 200-byte name passes 260 easily. So on Windows the engine
works on the media folder in its ``\\\\?\\`` form (every path built from it inherits the form),
which the Win32 file API accepts up to about 32,000 characters; the shell's trash does not, so
:func:`plain_path` takes the form off again for it.

The rules are pure string functions over :mod:`ntpath` (tested on every platform); only
:func:`for_os` looks at the platform it runs on.

:func:`probe_volume` measures what the volume of a folder does: whether it folds case, whether it
refuses Windows' characters, and its mtime resolution. The names rule (core/names.py) is already
the strictest of the file systems m3daemon writes to (Windows, FAT, exFAT, NTFS, HFS+, APFS,
ext4), measured on real exFAT and NTFS volumes in tests/test_member_windows_fs.py; the probe says
what the volume itself does (logged once per folder, kept as Executor.volume for the case rule).
"""

from __future__ import annotations

import contextlib
import logging
import ntpath
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WINDOWS_MAX_PATH", "VolumeTraits", "for_os", "needs_long_form", "plain_path", "probe_volume",
    "windows_long_path",
]

log = logging.getLogger(__name__)

WINDOWS_MAX_PATH = 260
"""MAX_PATH: a path of 260 characters or more (with its terminating NUL) needs the long form."""

_LONG = "\\\\?\\"
_LONG_UNC = "\\\\?\\UNC\\"


def windows_long_path(path: str) -> str:
    r"""The ``\\?\`` form of an absolute Windows path: ``C:\a\b`` → ``\\?\C:\a\b``,
    ``\\server\share\a`` → ``\\?\UNC\server\share\a``. The long form turns off Windows' own
    normalisation, so the path is normalised here first (``/`` → ``\``, ``.`` and ``..`` resolved).
    """
    if path.startswith(_LONG):
        return path
    if not ntpath.isabs(path) or not ntpath.splitdrive(path)[0]:
        raise ValueError(f"not an absolute Windows path with a drive or share: {path!r}")
    normal = ntpath.normpath(path)
    if normal.startswith("\\\\"):
        return _LONG_UNC + normal[2:]
    return _LONG + normal


def plain_path(path: str) -> str:
    r"""The inverse of :func:`windows_long_path` (for the shell's trash, which refuses ``\\?\``)."""
    if path.startswith(_LONG_UNC):
        return "\\\\" + path[len(_LONG_UNC):]
    if path.startswith(_LONG):
        return path[len(_LONG):]
    return path


def needs_long_form(path: str) -> bool:
    """Whether a Windows API call on ``path`` would fail without the long form."""
    return len(path) >= WINDOWS_MAX_PATH and not path.startswith(_LONG)


def for_os(folder: Path, platform: str = sys.platform) -> Path:
    """The media folder as the engine's file calls should see it: the long form on Windows."""
    if platform != "win32":
        return folder
    return Path(windows_long_path(ntpath.abspath(str(folder))))


# --- what the volume does ----------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeTraits:
    """What the file system holding a folder does, measured with a probe file."""

    case_insensitive: bool
    refuses_windows_names: bool
    mtime_resolution_ns: int

    def describe(self) -> str:
        parts = ["case-insensitive" if self.case_insensitive else "case-sensitive",
                 "Windows name rules" if self.refuses_windows_names else "POSIX name rules"]
        if self.mtime_resolution_ns >= 1_000_000_000:
            parts.append(f"{self.mtime_resolution_ns // 1_000_000_000} s times")
        else:
            parts.append(f"{self.mtime_resolution_ns} ns times")
        return ", ".join(parts)


def probe_volume(folder: Path) -> VolumeTraits:
    """Create, test and remove two probe files in ``folder`` (which must exist and be writable)."""
    stem = f".m3probe-{os.urandom(4).hex()}"  # not uuid: it imports `platform` (5 ms at start)
    probe = folder / f"{stem}-Aa.tmp"
    probe.write_bytes(b"")
    try:
        insensitive = (folder / f"{stem}-aA.tmp").exists()
        wanted = 1_700_000_000_123_456_789
        os.utime(probe, ns=(wanted, wanted))
        got = probe.stat().st_mtime_ns
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    refuses = True
    odd = folder / f"{stem}-a:b.tmp"
    try:
        odd.write_bytes(b"")
    except OSError:  # EINVAL on NTFS, ENOENT from exfat-fuse, ERROR_INVALID_NAME on Windows
        pass
    else:
        refuses = False
        with contextlib.suppress(OSError):
            odd.unlink()
    resolution = 1  # the coarsest power of ten that the kept time is a multiple of
    while wanted != got and got % (resolution * 10) == 0 and resolution < 10**9:
        resolution *= 10
    return VolumeTraits(insensitive, refuses, resolution)
