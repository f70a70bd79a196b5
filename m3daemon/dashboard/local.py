"""What this computer knows without asking the server: the last sync's record, settings and files.

The facts come from the congregation's context in the engine (:class:`m3daemon.engine.context.Context`);
this module only shapes them for the pages.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from m3daemon.core import prefs as m3prefs
from m3daemon.core.layout import Layout
from m3daemon.core.meetings import Meeting, MeetingDays, meetings_between
from m3daemon.core.names import name_problem
from m3daemon.engine.context import Context
from m3daemon.local.longpaths import for_os
from m3daemon.settings.config import Config

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "webp", "bmp"})
VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "webm", "mkv", "avi", "mpg", "mpeg", "wmv"})
AUDIO_EXTENSIONS = frozenset({"mp3", "m4a", "wav", "ogg", "aac", "flac"})


def record_meta(cfg: Config) -> dict[str, Any]:
    """What the last update recorded (no network); empty before the first one."""
    return Context.of(cfg).recorded()


def effective_of(cfg: Config, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings in force at the last update, else this computer's own."""
    return Context.of(cfg).planned_effective(meta)


def forced_at_last_sync(meta: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The congregation's forced settings as the last update fetched them, and when."""
    forced = meta.get("forced_prefs")
    if not isinstance(forced, dict) or not forced.get("text"):
        return {}, None
    try:
        values = dict(m3prefs.parse_forced_prefs(str(forced["text"])).values)
    except ValueError:
        values = {}
    return values, forced.get("fetched_at")


def next_meetings(cfg: Config, effective: dict[str, Any], count: int = 4) -> list[Meeting]:
    """The congregation's next meetings, in its own time zone."""
    clock = Context.of(cfg).clock
    now = clock.now()
    found = meetings_between(MeetingDays.from_prefs(effective), now, now + timedelta(days=15), clock.tz)
    return found[:count]


def today_of(cfg: Config) -> date:
    """The congregation's today (its ``[schedule] timezone``), not necessarily the computer's."""
    return Context.of(cfg).clock.today()


def layout_of(cfg: Config, effective: dict[str, Any]) -> Layout:
    return Context.of(cfg).layout(effective)


def kind_of(name: str) -> str:
    """``image``, ``video``, ``audio`` or ``file``, from the extension."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    return "file"


def local_file(cfg: Config, effective: dict[str, Any], day: date, name: str) -> Path | None:
    """The file ``name`` of ``day``'s folder, only if it is really inside the media folder.

    The name must be one safe file name (:func:`name_problem`), and the resolved path (symbolic links
    followed) must still be below the media folder and be a regular file.
    """
    if name_problem(name) is not None:
        return None
    root = for_os(cfg.local.media_dir)  # the \\?\ form on Windows: long paths preview too
    try:
        root_real = root.resolve(strict=True)
        candidate = (root / layout_of(cfg, effective).date_dir(day) / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(root_real) or candidate == root_real or not candidate.is_file():
        return None
    return candidate


def local_dates(cfg: Config, effective: dict[str, Any], start: date, end: date) -> list[tuple[date, list[str]]]:
    """The files in each date folder from ``start`` to ``end``, read from disk (offline view)."""
    layout = layout_of(cfg, effective)
    out: list[tuple[date, list[str]]] = []
    d = start
    while d <= end:
        folder = for_os(cfg.local.media_dir) / layout.date_dir(d)
        try:
            names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        except OSError:
            names = []
        if names:
            out.append((d, names))
        d += timedelta(days=1)
    return out
