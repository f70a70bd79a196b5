"""What M³ 25+ does with its Folder to Watch, as far as m3daemon's output depends on it (pure).

Facts from sircharlo/meeting-media-manager 26.8 (``src/constants/media.ts``,
``src/helpers/jw-media.ts``, ``src-electron/main/fs.ts``, ``src/shared/filesystem-errors.ts``);
see ../shared/reference/m3-watch-folder.md.

* Which files become media: plain images, audio, video and ``.jwlplaylist`` only. SVG and HEIC are
  in M³'s image list but its check uses the plain list; there is no PDF branch. M³ 22–24 converted
  PDF, SVG and HEIC itself; m3daemon does it for the ``watch`` layout (:mod:`m3daemon.local.convert`).
* How a file is replaced so M³ sees it: M³'s chokidar watcher ignores ``change``. A file renamed
  away and another renamed in within a few milliseconds is reported as one ``change`` (measured with
  chokidar 5.0.0 and M³'s options: tests/test_m3_watcher.py), so the old file must stay away long
  enough for the watcher to notice: ~10 ms with native events, more than one poll interval (1 s)
  where M³ polls, which it does for folders it takes for network or cloud folders.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["CONVERTIBLE", "M3_MEDIA_EXTENSIONS", "REPLACE_PAUSE_NATIVE", "REPLACE_PAUSE_POLLING",
           "conversion_of", "converted_names", "m3_polls", "m3_shows", "m3_view", "replace_pause"]

_JPG = ("jpg", "jpeg", "jfif", "pjpeg", "pjp")
_IMAGES = ("apng", "avif", "gif", "png", "webp", "bmp", "ico", "cur", *_JPG)
_AUDIO = ("mp3", "wav", "ogg", "flac", "m4a")
_VIDEO = ("mp4", "m4v", "mov", "mkv", "avi", "webm")
M3_MEDIA_EXTENSIONS: frozenset[str] = frozenset((*_IMAGES, *_AUDIO, *_VIDEO, "jwlplaylist"))
"""Extensions (lower case) of files M³ 25+ adds to a meeting from a watched date folder."""

Conversion = Literal["pdf", "svg", "heic"]
CONVERTIBLE: dict[str, Conversion] = {"pdf": "pdf", "svg": "svg", "heic": "heic", "heif": "heic"}
"""What M³ 22–24 converted (PDF pages → PNG, SVG → PNG, HEIC → JPEG); ``.heif`` is the same format."""


def _ext(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def m3_shows(name: str) -> bool:
    """Whether M³ 25+ shows a file of this name from a watched date folder."""
    return _ext(name) in M3_MEDIA_EXTENSIONS


def conversion_of(name: str) -> Conversion | None:
    """The conversion M³ 22–24 applied to a file of this name, if any."""
    return CONVERTIBLE.get(_ext(name))


REPLACE_PAUSE_NATIVE = 0.1
"""Seconds a replaced file stays away where M³ gets native events (unlink seen after ~10 ms)."""
REPLACE_PAUSE_POLLING = 1.5
"""Seconds a replaced file stays away where M³ polls every second: longer than one poll."""

_CLOUD_MARKERS = ("/library/mobile documents/", "/icloud drive/", "/dropbox/", "/onedrive", "/google drive/",
                  "/nextcloud")
_GOOGLE_MIRROR = re.compile(r"/[^/]+ \([^/()@\s]+@[^/()\s]+\)(/|$)")


def m3_polls(folder: str, platform: str) -> bool:
    """Whether M³ watches ``folder`` by polling (its ``isPossiblyNetworkFolderPath``): UNC paths,
    cloud-synced folders, other drive letters than C: on Windows, ``/Volumes/…`` on macOS.

    ``platform`` is ``sys.platform`` (``win32``, ``darwin``, ``linux``).
    """
    path = folder.replace("\\", "/")
    lower = path.lower()
    if path.startswith("//") or re.search(r"@SSL@\d+", path, re.IGNORECASE):
        return True
    if any(marker in lower for marker in _CLOUD_MARKERS) or _GOOGLE_MIRROR.search(lower):
        return True
    if platform == "win32" and re.match(r"[a-bd-zA-BD-Z]:", path):
        return True
    return platform == "darwin" and lower.startswith("/volumes/")


def m3_view(name: str) -> Literal["shows", "converted", "never"]:
    """What M³ 25+ makes of a server file through m3daemon's ``watch`` layout: shown as it is,
    shown as the images m3daemon makes of it, or never shown."""
    if m3_shows(name):
        return "shows"
    return "converted" if conversion_of(name) else "never"


def converted_names(name: str) -> list[str]:
    """The first image M³ 22–24 (and m3daemon) makes of ``name``: ``x-01.png``, ``x.png`` or ``x.jpg``."""
    stem, kind = name.rpartition(".")[0], conversion_of(name)
    return {"pdf": [f"{stem}-01.png"], "svg": [f"{stem}.png"], "heic": [f"{stem}.jpg"]}.get(kind or "", [])


def replace_pause(folder: str, platform: str) -> float:
    """How long a replaced file stays away so that M³ sees it removed, then added."""
    return REPLACE_PAUSE_POLLING if m3_polls(folder, platform) else REPLACE_PAUSE_NATIVE
