"""How a congregation's sync state reads, in one place for the tray, the dashboard and the CLI.

"Up to date", "Syncing 12/40 files (35 %)", "18:05" or "Thu 19:00": each front-end shows the same
words for the same state, so a person who reads the tray and then the dashboard is not left
wondering whether they mean different things.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from m3daemon.engine.clock import computer_now
from m3daemon.engine.status import ProgressView, SyncState
from m3daemon.i18n import _, ngettext, weekday_name

__all__ = ["N_", "files_text", "moved_sentence", "progress_text", "short_time", "state_label", "waiting_text"]


def N_(message: str) -> str:
    """Marks a string for translation without translating it (xgettext keyword)."""
    return message



_STATE_LABELS = {
    SyncState.STARTING: N_("Starting…"),
    SyncState.UP_TO_DATE: N_("Up to date"),
    SyncState.SYNCING: N_("Syncing…"),
    SyncState.OFFLINE: N_("Offline"),
    SyncState.ERROR: N_("Error"),
    SyncState.PAUSED: N_("Paused"),
    SyncState.NOT_CONFIGURED: N_("Not configured"),
}


def state_label(state: SyncState) -> str:
    return _(_STATE_LABELS.get(state, state.value))


def files_text(done: int, total: int) -> str:
    """"12/40 files"."""
    return ngettext("{done}/{total} file", "{done}/{total} files", total).format(done=done, total=total)


def progress_text(progress: ProgressView) -> str:
    """"Syncing 12/40 files (35 %)", or less when the totals are not known yet."""
    percent = progress.percent
    if progress.total_files:
        files = files_text(progress.done_files, progress.total_files)
        if percent is not None:
            return _("Syncing {files} ({percent} %)").format(files=files, percent=percent)
        return _("Syncing {files}").format(files=files)
    if percent is not None:
        return _("Syncing ({percent} %)").format(percent=percent)
    return _("Syncing…")


#: At most this many waiting files are named; the rest are counted.
WAITING_NAMED = 3


def moved_sentence(n: int) -> str:
    """What ``moved`` in a sync's result means: a new layout, language folder or date format gave
    files new names, and they came from this computer (a count of removals alone reads as loss)."""
    return ngettext("{n} file was moved to its new name on this computer; it was not downloaded again.",
                    "{n} files were moved to their new names on this computer; they were not downloaded again.",
                    n).format(n=n)


def waiting_text(paths: Sequence[str]) -> str:
    """Which files wait because another program (M³ showing it) holds the old one open, or "".

    "2026-03-04/talk.mp4 is in use by another program; it will be updated after the meeting."
    """
    if not paths:
        return ""
    if len(paths) == 1:
        return _("{path} is in use by another program; it will be updated after the meeting.").format(path=paths[0])
    named = ", ".join(paths[:WAITING_NAMED])
    if len(paths) > WAITING_NAMED:
        named = _("{names} and {n} more").format(names=named, n=len(paths) - WAITING_NAMED)
    return ngettext("{n} file is in use by another program; it will be updated after the meeting: {names}.",
                    "{n} files are in use by another program; they will be updated after the meeting: {names}.",
                    len(paths)).format(n=len(paths), names=named)


def _parse(iso: str) -> tuple[datetime, bool] | None:
    """(datetime, date_only); naive values are local time."""
    text = iso.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day), True
        return datetime.fromisoformat(text), False
    except ValueError:
        return None


def short_time(iso: str | None, now: datetime | None = None) -> str | None:
    """An ISO time as short local time: "18:05" today, "Thu 19:00" within a week, else the date.

    Shown on this computer, so in the computer's zone (``now`` defaults to the computer's clock).
    """
    if not iso:
        return None
    parsed = _parse(iso)
    if parsed is None:
        return iso
    dt, date_only = parsed
    local = dt if date_only else dt.astimezone()  # astimezone(): aware → local, naive stays local
    today = (now.astimezone() if now is not None else computer_now()).date()
    days = (local.date() - today).days
    weekday = weekday_name(local, "abbreviated")
    if date_only:
        if days == 0:
            return _("today")
        if days == 1:
            return _("tomorrow")
        return weekday if abs(days) <= 6 else local.date().isoformat()
    hm = local.strftime("%H:%M")
    if days == 0:
        return hm
    if abs(days) <= 6:
        return f"{weekday} {hm}"
    return f"{local.date().isoformat()} {hm}"


def long_time(iso: str | None) -> str | None:
    """An ISO time in words, in this computer's zone: "Tuesday, December 1, 2026 at 18:05"."""
    if not iso:
        return None
    from m3daemon.i18n import day_text, time_text

    parsed = _parse(iso)
    if parsed is None:
        return iso
    dt, date_only = parsed
    if date_only:
        return day_text(dt.date())
    local = dt.astimezone()
    return _("{day} at {time}").format(day=day_text(local), time=time_text(local))


#: Errors whose remedy is done on the dashboard's Connection page (by the error's class name).
_PASSWORD_KINDS = frozenset({"AuthError", "CredentialsError", "MissingPasswordError"})
_CONNECTION_KINDS = frozenset({"TLSError", "FolderNotFoundError", "ConfigError", "InsecureURLError",
                               "NotWebDAVError", "PermissionDeniedError"})


_DELETION_KINDS = frozenset({"MassDeletionRefused"})


def remedy_action(kind: str) -> str | None:
    """What a button next to this error does: ``fix-password`` or ``connection`` (both open the
    Connection page), ``allow-deletions`` (the status page's list of the files kept, with the
    button that removes them), or None when nothing on this computer fixes it (a server down, a
    full disk)."""
    if kind in _PASSWORD_KINDS:
        return "fix-password"
    if kind in _CONNECTION_KINDS:
        return "connection"
    if kind in _DELETION_KINDS:
        return "allow-deletions"
    return None


def on_screen_remedy(kind: str, remedy: str) -> str:
    """The remedy as the dashboard says it. The errors carry the terminal's words ("Check them
    with m3daemon setup"); where a button next to the error does the fix, the words name the
    button's page instead, so a person is never sent to a terminal."""
    action = remedy_action(kind)
    if action == "fix-password":
        return _("Enter the user name and the password again on the Connection page. Box and Koofr need an "
                 "app password, not the account password.")
    if action == "allow-deletions":
        return _("If the coordinator really removed them, remove them from this computer too with the "
                 "button next to the list of the files kept.")
    if action == "connection" and "m3daemon " in remedy:
        if kind == "FolderNotFoundError":
            return _("Choose the congregation folder on the Connection page: its Browse button lists the "
                     "server's folders.")
        return _("Check the server address, the folder and the certificate on the Connection page.")
    return remedy
