"""The congregation folder as M³ 22–24 laid it out, read from a listing (pure: no I/O).

    Media/<date>/<file>      dated media          Hidden/<date>/<name>   hidden markers
    Media/Recurring/<file>   recurring media      forcedPrefs.json       congregation settings
    custom-background-image-<congregation name>.<ext>
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from m3daemon.core.dates import DEFAULT_DATE_FORMAT, infer_weekday_language, parse_folder_date
from m3daemon.core.entries import RemoteEntry, normalize_etag
from m3daemon.core.names import name_problem, one_per_folded_name
from m3daemon.i18n import _

log = logging.getLogger(__name__)

MEDIA = "Media"
HIDDEN = "Hidden"
RECURRING = "Recurring"
FORCED_PREFS = "forcedPrefs.json"
BACKGROUND_PREFIX = "custom-background-image-"


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A media file on the server. ``etag`` is normalized (no quotes, no ``W/``)."""

    parts: tuple[str, ...]
    size: int
    etag: str | None
    modified: datetime | None = None
    # The server gave only a weak ETag (``W/"…"``): it may not validate a resume (RFC 9110 §13.1.5).
    weak_etag: bool = False

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def version(self) -> str:
        """What identifies this content: the ETag, or size plus time where a server has no ETags."""
        if self.etag:
            return self.etag
        stamp = self.modified.isoformat() if self.modified else "?"
        return f"size={self.size};modified={stamp}"


@dataclass
class CongregationFolder:
    dated: dict[date, dict[str, RemoteFile]] = field(default_factory=dict)
    recurring: dict[str, RemoteFile] = field(default_factory=dict)
    hidden: dict[date, set[str]] = field(default_factory=dict)
    # Remote folder names per date, e.g. {2024-07-17: ["Media/2024-07-17", "Hidden/17-07-2024"]}.
    date_folders: dict[date, list[tuple[str, ...]]] = field(default_factory=dict)
    forced_prefs: RemoteFile | None = None
    background: RemoteFile | None = None
    warnings: list[str] = field(default_factory=list)
    # Whether Media/ exists at all: a listing without it is suspicious for the mass-deletion guard.
    has_media_folder: bool = False

    def media_file_count(self) -> int:
        return sum(len(v) for v in self.dated.values()) + len(self.recurring)

    def folder_name(self, d: date, congregation_format: str = DEFAULT_DATE_FORMAT) -> str | None:
        """The server's name for ``d``'s folder: under ``Media/`` before ``Hidden/``, in the
        congregation's format before any other, so M³ 22–24 clients and we mean one folder."""
        found = self.date_folders.get(d, [])

        def rank(parts: tuple[str, ...]) -> tuple[int, int, str]:
            parsed = parse_folder_date(parts[-1])
            in_format = parsed is not None and parsed[1] == congregation_format
            return (0 if parts[0] == MEDIA else 1, 0 if in_format else 1, parts[-1])

        return min(found, key=rank)[-1] if found else None

    def folder_names(self, congregation_format: str = DEFAULT_DATE_FORMAT) -> dict[date, str]:
        return {d: n for d in self.date_folders if (n := self.folder_name(d, congregation_format))}

    def weekday_language(self) -> str | None:
        """The UI language of the weekday names in the server's date folders (None: none has one)."""
        return infer_weekday_language(p[-1] for parts in self.date_folders.values() for p in parts)


def build_folder(
    entries: Iterable[RemoteEntry],
    congregation_format: str = DEFAULT_DATE_FORMAT,
    congregation_name: str | None = None,
) -> CongregationFolder:
    """Sort a listing into the parts of the congregation folder.

    Anything unexpected is ignored (with a debug log); unsafe names are skipped with a warning and
    never abort the sync. When a date appears in two formats, the folders are merged and, for a
    name in both, the folder in the congregation's format wins.
    """
    folder = CongregationFolder()
    # (date -> name -> (in congregation format?, file)) so the winner can be picked in any order
    dated: dict[date, dict[str, tuple[bool, RemoteFile]]] = {}
    folder_date = lru_cache(maxsize=None)(parse_folder_date)  # (each file's folder: read once per folder)

    for e in entries:
        p = e.parts
        if len(p) == 1:
            _root_entry(folder, e, congregation_name)
            continue
        top = p[0]
        if top == MEDIA:
            folder.has_media_folder = True
        if top not in (MEDIA, HIDDEN):
            log.debug("ignoring %s: not part of the congregation layout", e.path)
            continue
        sub = p[1]
        if len(p) == 2:
            if e.is_dir:
                parsed = parse_folder_date(sub)
                if parsed is not None:
                    folder.date_folders.setdefault(parsed[0], []).append(p)
                elif not (top == MEDIA and sub == RECURRING):
                    log.debug("ignoring folder %s: its name is not a date", e.path)
            else:
                log.debug("ignoring %s: files directly under %s/ are not used", e.path, top)
            continue
        if len(p) > 3:
            log.debug("ignoring %s: too deep to be media", e.path)
            continue
        if e.is_dir:
            log.debug("ignoring folder %s: media folders hold files only", e.path)
            continue
        name = p[2]
        problem = name_problem(name)
        if problem is not None:
            folder.warnings.append(
                _("Skipped {path!r} on the server: {reason}.").format(path=e.path, reason=problem)
            )
            continue
        if top == MEDIA and sub == RECURRING:
            rf = _media_file(folder, e)
            if rf is not None:
                folder.recurring[name] = rf
            continue
        parsed = folder_date(sub)
        if parsed is None:
            log.debug("ignoring %s: its folder name is not a date", e.path)
            continue
        day, fmt = parsed
        if top == HIDDEN:
            folder.hidden.setdefault(day, set()).add(name)
            continue
        rf = _media_file(folder, e)
        if rf is None:
            continue
        preferred = fmt == congregation_format
        slot = dated.setdefault(day, {})
        current = slot.get(name)
        if current is None or (preferred and not current[0]):
            slot[name] = (preferred, rf)

    folder.dated = {d: _one_per_folded_name(folder, {n: rf for n, (_pref, rf) in files.items()})
                    for d, files in dated.items()}
    folder.recurring = _one_per_folded_name(folder, folder.recurring)
    return folder


def _one_per_folded_name(folder: CongregationFolder, files: dict[str, RemoteFile]) -> dict[str, RemoteFile]:
    """Names that differ only in case or Unicode form are one file on Windows and macOS: one is
    kept (the same on every computer, see :func:`names.one_per_folded_name`), the others are
    skipped with a warning that names both."""
    kept, dropped = one_per_folded_name(list(files))
    for name, winner in dropped:
        folder.warnings.append(
            _("Skipped {path!r} on the server: its name differs from {winner!r} only in upper and lower "
              "case or in Unicode form, and Windows and macOS cannot hold both in one folder.").format(
                path="/".join(files[name].parts), winner=winner)
        )
    return {n: files[n] for n in sorted(kept)}


def _media_file(folder: CongregationFolder, e: RemoteEntry) -> RemoteFile | None:
    if not e.size:
        folder.warnings.append(
            _("Skipped {path!r} on the server: the file is empty (0 bytes).").format(path=e.path)
        )
        return None
    weak = bool(e.etag and e.etag.strip().startswith("W/"))
    return RemoteFile(e.parts, e.size, normalize_etag(e.etag), e.modified, weak)


def _root_entry(folder: CongregationFolder, e: RemoteEntry, congregation_name: str | None) -> None:
    name = e.parts[0]
    if e.is_dir:
        if name == MEDIA:
            folder.has_media_folder = True
        return
    if name == FORCED_PREFS:
        folder.forced_prefs = RemoteFile(e.parts, e.size or 0, normalize_etag(e.etag), e.modified)
    elif name.startswith(BACKGROUND_PREFIX) and name_problem(name) is None:
        if (congregation_name is None or name.startswith(BACKGROUND_PREFIX + congregation_name)) \
                and folder.background is None and e.size:
            folder.background = RemoteFile(e.parts, e.size, normalize_etag(e.etag), e.modified)
    else:
        log.debug("ignoring %s at the top of the congregation folder", name)
