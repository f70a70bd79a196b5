"""Windows long paths and the media folder's volume.

The ``\\\\?\\`` rules are pure string functions over ntpath, so they run here with the inputs a
Windows computer gives (drive paths, UNC shares, forward slashes, ``..``); :func:`for_os` is
called with ``platform="win32"``. The volume probe runs on real exFAT and NTFS volumes
(tests/fsmounts.py) and on the Linux disk.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from fsmounts import Volume

from m3daemon.errors import LocalFolderError
from m3daemon.local.longpaths import (
    WINDOWS_MAX_PATH,
    for_os,
    needs_long_form,
    plain_path,
    probe_volume,
    windows_long_path,
)
from m3daemon.remote.transfer import local_error

DOCS = "C:\\Users\\Kingdom Hall A-V\\Documents\\Congregation Media"


@pytest.mark.parametrize("given, long, plain", [
    (r"C:\Media", r"\\?\C:\Media", r"C:\Media"),
    ("C:/Users/av/Documents/Congregation Media", r"\\?\C:\Users\av\Documents\Congregation Media",
     r"C:\Users\av\Documents\Congregation Media"),
    (r"C:\Media\..\Other\.\x", r"\\?\C:\Other\x", r"C:\Other\x"),
    (r"\\hall-nas\media\Cong", r"\\?\UNC\hall-nas\media\Cong", r"\\hall-nas\media\Cong"),
    (r"\\?\C:\Media", r"\\?\C:\Media", r"C:\Media"),
])
def test_the_long_form_of_windows_paths(given: str, long: str, plain: str) -> None:
    assert windows_long_path(given) == long
    assert plain_path(long) == plain


@pytest.mark.parametrize("relative", ["Media", "\\Media", "C:Media"])
def test_only_absolute_paths_with_a_drive_get_the_long_form(relative: str) -> None:
    with pytest.raises(ValueError, match="not an absolute Windows path"):
        windows_long_path(relative)


def test_a_date_folder_and_a_long_name_pass_max_path_and_get_through_in_the_long_form() -> None:
    name = "Song 151 - " + "He Will Call " * 13 + ".mp4"  # 200 bytes, the longest name M³ writes
    full = f"{DOCS}\\2026-03-04 - Wednesday\\{name}"
    assert len(full) > WINDOWS_MAX_PATH and needs_long_form(full)
    on_os = for_os(Path(DOCS), platform="win32")
    assert str(on_os) == "\\\\?\\" + DOCS
    assert not needs_long_form(windows_long_path(full))
    assert plain_path(windows_long_path(full)) == full


def test_for_os_leaves_other_platforms_alone(tmp_path: Path) -> None:
    assert for_os(tmp_path, platform="linux") == tmp_path
    assert for_os(tmp_path, platform="darwin") == tmp_path


def test_a_path_too_long_for_the_computer_says_so_and_what_to_do(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 200) / ("y" * 200) / "talk.mp4"
    error = local_error(OSError(errno.ENAMETOOLONG, "File name too long"), deep)
    assert isinstance(error, LocalFolderError)
    assert "is too long for this computer" in str(error) and str(len(str(deep))) in str(error)
    assert "shorter path" in error.remedy
    name = tmp_path / ("n" * 300)
    assert "The name" in str(local_error(OSError(errno.ENAMETOOLONG, "File name too long"), name))


def test_the_probe_tells_what_each_volume_does(windows_volume: Volume, tmp_path: Path) -> None:
    traits = probe_volume(windows_volume.folder("probe"))
    assert traits.case_insensitive is windows_volume.case_insensitive
    assert traits.refuses_windows_names
    assert traits.mtime_resolution_ns == windows_volume.mtime_resolution_ns
    linux = probe_volume(tmp_path)
    assert (linux.case_insensitive, linux.refuses_windows_names) == (False, False)
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
