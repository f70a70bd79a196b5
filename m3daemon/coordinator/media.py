"""The coordinator's changes to the media of the congregation folder.

Every operation takes names that were checked before any request (:func:`plan_uploads`,
:func:`check_names`) and returns a :class:`BatchResult`: one line per item, done or not, so a
failure halfway through a batch still says exactly what is on the server. Items are independent:
one that fails does not stop the next, except when the failure is about the whole account or
connection (wrong password, read-only account, server unreachable), which every later item would
hit too.

Removals work on *every* folder of a date, whatever its format: members merge ``Media/2024-07-17``
and ``Media/17-07-2024`` (SPEC "Dates"), so removing a file from one of them only would leave it
on every computer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from m3daemon.core.dates import parse_folder_date, parse_user_date
from m3daemon.core.entries import RemoteEntry
from m3daemon.core.m3 import m3_view
from m3daemon.core.model import BACKGROUND_PREFIX, HIDDEN, MEDIA, RECURRING
from m3daemon.core.names import check_name
from m3daemon.errors import ExitCode, M3Error, UsageError
from m3daemon.i18n import _, _l

from .context import Coordinator
from .writes import Parts

SECTIONS: tuple[str, ...] = ("tgw", "ayfm", "lac", "pt", "wt")
"""The M³ 25+ meeting parts a file can be put in through its name, ``Section-<id> - ``.

M³ reads that prefix with ``^Section-([^-]+) - `` (``jw-media.ts``), so only ids without a hyphen
can work: ``Section-circuit-overseer - x.jpg`` matches nothing and lands in the day's default part.
"""

SECTION_NAMES: dict[str, str] = {
    "tgw": _l("Treasures From God's Word"),
    "ayfm": _l("Apply Yourself to the Field Ministry"),
    "lac": _l("Living as Christians"),
    "pt": _l("Public Talk"),
    "wt": _l("Watchtower Study"),
    "circuit-overseer": _l("Circuit overseer's service talk"),
}
"""The meeting parts by the names people know (M³ shows them so; its ids are ``tgw``, ``ayfm``, …)."""


def part_name(section: str | None) -> str:
    """"Living as Christians" for ``lac``; an unknown id as it is."""
    if not section:
        return ""
    return str(SECTION_NAMES.get(section, section))


UNNAMEABLE_SECTIONS: tuple[str, ...] = ("circuit-overseer",)
"""M³ parts that no file name can reach (their id has a hyphen)."""

BACKGROUND_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "svg"})  # what M³ accepted (§1.4)
_PREFIX = re.compile(r"[0-9]{2}(?:-[0-9]{2}){0,2}")
_SECTION = re.compile(r"Section-([^-]+) - ")  # M³ 25+'s own pattern, so we read what M³ reads


class UploadProgress(Protocol):
    def start_file(self, name: str, size: int) -> None: ...
    def advance(self, n: int) -> None: ...


class NoProgress:
    def start_file(self, name: str, size: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


# --- names, checked before any request ------------------------------------------------------------


def remote_name(filename: str, prefix: str | None = None, section: str | None = None) -> str:
    """The name on the server: ``[Section-<id> - ][<prefix> - ]<file name>``.

    The order prefix is written the way M³'s "add media" dialog wrote it: one to three two-digit
    groups joined by ``-``, then `` - `` (``01-05 - Talk outline.jpg``, reference §4.3). The file's
    own name is kept verbatim; no M³ JW.org-style name is invented. The section goes first because
    M³ 25+ only recognises it at the very start of the name.
    """
    name = filename
    if prefix:
        if not _PREFIX.fullmatch(prefix):
            raise UsageError(
                _("The prefix {prefix!r} is not one to three two-digit numbers joined by '-'.").format(
                    prefix=prefix),
                _("Examples: --prefix 01, --prefix 01-05, --prefix 02-10-03."),
            )
        name = f"{prefix} - {name}"
    if section:
        if section in UNNAMEABLE_SECTIONS:
            raise UsageError(
                _("M³ cannot put a file in the part {section!r} through its name: it reads the part "
                  "only up to the first hyphen, so the file would land in the day's usual part.").format(
                    section=section),
                _("Leave out the part: in the circuit overseer's week M³ puts a midweek file in his part "
                  "by itself. Parts that work: {ids}.").format(ids=", ".join(SECTIONS)),
            )
        if section not in SECTIONS:
            raise UsageError(
                _("Unknown meeting part {section!r}.").format(section=section),
                _("Use one of: {ids}.").format(ids=", ".join(SECTIONS)),
            )
        name = f"Section-{section} - {name}"
    return check_name(name)


def section_of(name: str) -> str | None:
    """The part M³ 25+ reads from ``name`` (None: the day's default part)."""
    m = _SECTION.match(name)
    return m.group(1) if m else None


@dataclass(frozen=True)
class Upload:
    source: Path
    name: str
    size: int


def local_size(path: Path) -> int:
    """The size of a local file to upload; a usage error (exit 2) for anything unusable."""
    try:
        st = path.stat()
    except OSError as exc:
        raise UsageError(
            _("{path} cannot be read: {reason}.").format(path=path, reason=exc.strerror or exc),
            _("Check the file name."),
        ) from exc
    if not path.is_file():
        raise UsageError(_("{path} is not a file.").format(path=path), _("Give the files to upload."))
    if st.st_size == 0:
        raise UsageError(
            _("{path} is empty; every computer would skip it.").format(path=path),
            _("Check that the file is complete."),
        )
    return st.st_size


def plan_uploads(files: Sequence[str | Path], prefix: str | None, section: str | None) -> list[Upload]:
    """Check every local file and its remote name before anything is sent."""
    uploads: list[Upload] = []
    seen: dict[str, Path] = {}
    for raw in files:
        path = Path(raw)
        size = local_size(path)
        name = remote_name(path.name, prefix, section)
        if name in seen:
            raise UsageError(
                _("{a} and {b} would both be called {name!r} on the server.").format(
                    a=seen[name], b=path, name=name),
                _("Upload them separately or rename one."),
            )
        seen[name] = path
        uploads.append(Upload(path, name, size))
    return uploads


def m3_warnings(uploads: Iterable[Upload]) -> list[str]:
    """What to tell the coordinator before uploading files M³ 25+ shows differently or not at all."""
    out = []
    for up in uploads:
        view = m3_view(up.name)
        if view == "never":
            out.append(_("M³ 25+ will not show {name}: only images, videos, audio and JW playlists appear in a "
                         "meeting. It is uploaded anyway.").format(name=up.name))
        elif view == "converted":
            out.append(_("{name} is shown as images: m3daemon converts it on every computer that uses the "
                         "watch layout (M³ 22–24 converts it itself).").format(name=up.name))
    return out


def check_names(names: Iterable[str]) -> list[str]:
    return [check_name(n) for n in names]


def check_date(text: str, today: date, *, allow_past: bool = False) -> date:
    try:
        d = parse_user_date(text, today)
    except ValueError as exc:
        raise UsageError(str(exc), _("Dates are written YYYY-MM-DD, whatever the congregation's format.")) from exc
    if d < today and not allow_past:
        raise UsageError(
            _("{date} is in the past; M³ clients delete past date folders.").format(date=d.isoformat()),
            _("Give today's date or a later one."),
        )
    return d


# --- results --------------------------------------------------------------------------------------


@dataclass
class ItemResult:
    item: str
    done: bool
    detail: str = ""
    error: M3Error | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"item": self.item, "done": self.done, "detail": self.detail}
        if self.error is not None:
            out["error"] = self.error.info().to_dict()
        return out


@dataclass
class BatchResult:
    action: str
    items: list[ItemResult] = field(default_factory=list)
    fatal: M3Error | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def done(self) -> list[ItemResult]:
        return [i for i in self.items if i.done]

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if not i.done]

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return int(self.fatal.exit_code)
        return int(ExitCode.PARTIAL if self.failed else ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action, "items": [i.to_json() for i in self.items],
            "done": len(self.done), "failed": len(self.failed), "warnings": self.warnings,
        }


def run_batch(action: str, steps: Sequence[tuple[str, Callable[[], str]]], coord: Coordinator) -> BatchResult:
    """Run each step; a step returns a short detail ("uploaded, 2.0 MB") or raises M3Error."""
    result = BatchResult(action)
    for i, (label, step) in enumerate(steps):
        try:
            result.items.append(ItemResult(label, True, step()))
        except M3Error as err:
            result.items.append(ItemResult(label, False, error=err))
            if not err.per_item:  # account, configuration, connection: stop here
                result.fatal = err
                result.items.extend(ItemResult(lbl, False, _("not attempted")) for lbl, _s in steps[i + 1:])
                break
    result.warnings.extend(coord.warnings)
    return result


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


# --- uploads --------------------------------------------------------------------------------------


def _upload_steps(
    coord: Coordinator, folder: Parts, label: str, uploads: Sequence[Upload], progress: UploadProgress,
) -> list[tuple[str, Callable[[], str]]]:
    def step(up: Upload) -> Callable[[], str]:
        def run() -> str:
            progress.start_file(up.name, up.size)
            sent = coord.writer.upload(up.source, folder, up.name, on_bytes=progress.advance)
            return _("uploaded, {size}").format(size=human_size(sent))
        return run

    return [(f"{label}/{up.name}", step(up)) for up in uploads]


def not_a_meeting_day(coord: Coordinator, d: date) -> str | None:
    """A warning when ``d`` is not one of the congregation's meeting days (known ones only)."""
    from m3daemon.core.meetings import MeetingDays, meeting_dates
    from m3daemon.i18n import day_text

    try:
        days = MeetingDays.from_prefs(coord.effective())
    except (ValueError, M3Error):
        return None
    if not days.known or meeting_dates(days, d, d):
        return None
    return _("{day} is not a meeting day of the congregation: M³ shows these media only when that date is opened "
             "in it. Check the date if they are meant for a meeting.").format(day=day_text(d))


def not_on_that_date(coord: Coordinator, d: date, names: Sequence[str]) -> list[str]:
    """Warnings for names that are neither media of ``d`` nor recurring: hiding them changes nothing."""
    there = {e.name for f in date_folders(coord, MEDIA, d) for e in (coord.writer.list_dir(f) or []) if not e.is_dir}
    there |= {e.name for e in list_recurring(coord)}
    from m3daemon.i18n import day_text

    return [_("{name} is not among the media of {day} (its own or recurring), so hiding it changes nothing now. "
              "Check the name and the date.").format(name=n, day=day_text(d)) for n in names if n not in there]


def add_media(
    coord: Coordinator, d: date, uploads: Sequence[Upload], progress: UploadProgress | None = None,
) -> BatchResult:
    """Upload into ``Media/<date in the congregation's format>/``."""
    folder: Parts = (MEDIA, coord.date_folder(d))
    result = run_batch("add", _upload_steps(coord, folder, "/".join(folder), uploads, progress or NoProgress()),
                       coord)
    warning = not_a_meeting_day(coord, d)
    if warning:
        result.warnings.append(warning)
    if result.fatal is None:
        coord.writer.sweep_stale(folder)
    return result


def add_recurring(coord: Coordinator, uploads: Sequence[Upload], progress: UploadProgress | None = None) -> BatchResult:
    folder: Parts = (MEDIA, RECURRING)
    coord.writer.ensure_authenticated()
    result = run_batch("add", _upload_steps(coord, folder, "/".join(folder), uploads, progress or NoProgress()),
                       coord)
    if result.fatal is None:
        coord.writer.sweep_stale(folder)
    return result


# --- removals, markers ----------------------------------------------------------------------------


def date_folders(coord: Coordinator, top: str, d: date) -> list[Parts]:
    """Every folder under ``top`` (Media or Hidden) that names ``d``, in any of the four formats."""
    entries = coord.writer.list_dir((top,)) or []
    return [e.parts for e in entries if e.is_dir and (p := parse_folder_date(e.name)) and p[0] == d]


def _removal_steps(coord: Coordinator, folders: Sequence[Parts], names: Sequence[str],
                   gone: str) -> list[tuple[str, Callable[[], str]]]:
    def step(name: str) -> Callable[[], str]:
        def run() -> str:
            removed = [f for f in folders if coord.writer.delete((*f, name))]
            return _("removed") if removed else gone
        return run

    where = "/".join(folders[0]) if len(folders) == 1 else None
    return [(f"{where}/{n}" if where else n, step(n)) for n in names]


def remove_media(coord: Coordinator, d: date, names: Sequence[str]) -> BatchResult:
    coord.writer.ensure_authenticated()
    folders = date_folders(coord, MEDIA, d)
    return run_batch("rm", _removal_steps(coord, folders, names, _("already gone")), coord)


def remove_recurring(coord: Coordinator, names: Sequence[str]) -> BatchResult:
    coord.writer.ensure_authenticated()
    return run_batch("rm", _removal_steps(coord, [(MEDIA, RECURRING)], names, _("already gone")), coord)


def hide(coord: Coordinator, d: date, names: Sequence[str]) -> BatchResult:
    """PUT an empty marker ``Hidden/<date>/<name>`` (an explicit set, never M³'s toggle)."""
    folder: Parts = (HIDDEN, coord.date_folder(d, HIDDEN))

    def step(name: str) -> Callable[[], str]:
        def run() -> str:
            coord.writer.ensure_collection(folder)
            resp = coord.writer.put_small((*folder, name), b"")
            if resp.status_code not in (200, 201, 204):
                raise coord.writer.fail(resp, "/".join((*folder, name)))
            return _("hidden")
        return run

    warnings = not_on_that_date(coord, d, names)
    result = run_batch("hide", [("/".join((*folder, n)), step(n)) for n in names], coord)
    result.warnings.extend(warnings)
    return result


def unhide(coord: Coordinator, d: date, names: Sequence[str]) -> BatchResult:
    """DELETE the marker from every ``Hidden`` folder of that date; not hidden counts as done."""
    coord.writer.ensure_authenticated()
    folders = date_folders(coord, HIDDEN, d)
    return run_batch("unhide", _removal_steps(coord, folders, names, _("was not hidden")), coord)


# --- prune ----------------------------------------------------------------------------------------


def prune_candidates(coord: Coordinator, before: date) -> list[Parts]:
    """``Media/<date>`` and ``Hidden/<date>`` folders dated before ``before``; nothing else, ever."""
    found: list[tuple[date, Parts]] = []
    for top in (MEDIA, HIDDEN):
        for e in coord.writer.list_dir((top,)) or []:
            parsed = parse_folder_date(e.name) if e.is_dir else None
            if parsed is not None and parsed[0] < before:
                found.append((parsed[0], e.parts))
    return [p for _d, p in sorted(found)]


def prune(coord: Coordinator, folders: Sequence[Parts]) -> BatchResult:
    def step(parts: Parts) -> Callable[[], str]:
        def run() -> str:
            return _("removed") if coord.writer.delete(parts, collection=True) else _("already gone")
        return run

    return run_batch("prune", [("/".join(p), step(p)) for p in folders], coord)


# --- recurring list, background -------------------------------------------------------------------


def list_recurring(coord: Coordinator) -> list[RemoteEntry]:
    entries = coord.writer.list_dir((MEDIA, RECURRING)) or []
    return sorted((e for e in entries if not e.is_dir and not e.name.startswith(".")), key=lambda e: e.name)


def background_name(congregation: str, source: Path) -> str:
    """``custom-background-image-<congregation name>.<ext>``, the extension kept as given (§1.4)."""
    ext = source.suffix[1:]
    if ext.lower() not in BACKGROUND_EXTENSIONS:
        raise UsageError(
            _("{path} is not an image M³ can use as a background.").format(path=source),
            _("Use a {exts} file.").format(exts=", ".join(sorted(BACKGROUND_EXTENSIONS))),
        )
    return check_name(f"{BACKGROUND_PREFIX}{congregation}.{ext}")


def _backgrounds(coord: Coordinator) -> list[str]:
    """Background files of this congregation: exactly ``custom-background-image-<name>.<ext>``.

    M³ matches by prefix, but ``…-North.png`` must not be taken for ``…-North Hill.png``.
    """
    stem = f"{BACKGROUND_PREFIX}{coord.congregation_name()}."
    return sorted(
        e.name for e in coord.writer.list_dir(()) or []
        if not e.is_dir and e.name.startswith(stem) and re.fullmatch(r"[A-Za-z0-9]+", e.name[len(stem):])
    )


def set_background(coord: Coordinator, source: Path, progress: UploadProgress | None = None) -> BatchResult:
    """Upload the background, then remove the one with another extension, if any."""
    size = local_size(source)
    name = background_name(coord.congregation_name(), source)
    prog = progress or NoProgress()

    def upload() -> str:
        prog.start_file(name, size)
        coord.writer.upload(source, (), name, on_bytes=prog.advance)
        return _("uploaded, {size}").format(size=human_size(size))

    result = run_batch("background", [(name, upload)], coord)
    if result.failed:
        return result
    old = [n for n in _backgrounds(coord) if n != name]
    result.items.extend(run_batch("background", [(n, _deleter(coord, n)) for n in old], coord).items)
    coord.writer.sweep_stale(())
    return result


def remove_background(coord: Coordinator) -> BatchResult:
    coord.writer.ensure_authenticated()
    names = _backgrounds(coord)
    result = run_batch("background", [(n, _deleter(coord, n)) for n in names], coord)
    if not names:
        result.warnings.append(_("There is no background image for {name} on the server.").format(
            name=coord.congregation_name()))
    return result


def _deleter(coord: Coordinator, name: str) -> Callable[[], str]:
    return lambda: _("removed") if coord.writer.delete((name,)) else _("already gone")
