"""What the tray shows, as plain values: the menu model, the icon's state, the tooltip, notifications.

Pure module (no pystray, no I/O), so the daemon can use :func:`notification_for` even without a
tray, and the tests need no display. :mod:`m3daemon.tray` turns the model into pystray menus.

One congregation::

    Update media folders now      (default: a left click on gtk/xorg)
    Open media folder
    Open dashboard                (disabled while dashboard_url() is None)
    Pause | Resume
    ─────
    East: Up to date                        (disabled, informational)
    Last sync 18:05 · next meeting Thu 19:00 (disabled, informational)
    ─────
    Quit

Several congregations: *Update media folders now* (all), then one submenu per congregation
("East: Up to date ▸" with its own state line, Update now, Open media folder, Pause/Resume),
then *Open dashboard*, *Pause all | Resume all*, *Quit*. The icon shows the worst state.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from m3daemon.engine.status import CongregationStatus, SyncState
from m3daemon.engine.wording import progress_text, remedy_action, short_time, state_label
from m3daemon.i18n import _, ngettext

__all__ = [
    "APP_NAME",
    "SEPARATOR",
    "STATE_SEVERITY",
    "Action",
    "ActionKind",
    "MenuItemSpec",
    "build_menu",
    "info_line",
    "notification_for",
    "progress_text",
    "short_time",
    "state_label",
    "status_line",
    "sync_percent",
    "tooltip",
    "worst_state",
]

APP_NAME = "m3daemon"

#: Windows limits a tray tooltip to 127 characters; other platforms get the same cut.
TOOLTIP_MAX = 127
#: Long error messages are cut in menu lines.
MENU_LINE_MAX = 80

#: Higher is worse; the icon shows the worst state across congregations.
STATE_SEVERITY: dict[SyncState, int] = {
    SyncState.UP_TO_DATE: 0,
    SyncState.PAUSED: 1,
    SyncState.STARTING: 2,
    SyncState.SYNCING: 3,
    SyncState.NOT_CONFIGURED: 4,
    SyncState.OFFLINE: 5,
    SyncState.ERROR: 6,
}


class ActionKind(str, enum.Enum):
    UPDATE_NOW = "update-now"
    APPLY_HELD = "apply-held"  # "Update now" that also applies what a running meeting holds back
    OPEN_FOLDER = "open-folder"
    OPEN_DASHBOARD = "open-dashboard"
    PAUSE = "pause"
    RESUME = "resume"
    QUIT = "quit"


@dataclass(frozen=True)
class Action:
    """What a menu item does. ``congregation`` None means all; ``target`` is a folder or a URL."""

    kind: ActionKind
    congregation: str | None = None
    target: str | None = None
    page: str | None = None  # OPEN_DASHBOARD: the page to open (``connection``), else the status page


@dataclass(frozen=True)
class MenuItemSpec:
    label: str
    action: Action | None = None
    enabled: bool = True
    default: bool = False
    checked: bool | None = None
    submenu: tuple[MenuItemSpec, ...] | None = None
    separator: bool = False


SEPARATOR = MenuItemSpec("", enabled=False, separator=True)


# --- states and times ----------------------------------------------------------------------


def worst_state(statuses: Sequence[CongregationStatus]) -> SyncState:
    """error > offline > not configured > syncing > starting > paused > up to date."""
    if not statuses:
        return SyncState.NOT_CONFIGURED
    return max((s.state for s in statuses), key=lambda st: STATE_SEVERITY.get(st, 0))


def sync_percent(statuses: Sequence[CongregationStatus]) -> int | None:
    """Overall progress of the congregations that are syncing (bytes if known, else files)."""
    syncing = [s.progress for s in statuses if s.state is SyncState.SYNCING]
    total_bytes = sum(p.total_bytes for p in syncing)
    if total_bytes:
        return min(100, sum(p.done_bytes for p in syncing) * 100 // total_bytes)
    total_files = sum(p.total_files for p in syncing)
    if total_files:
        return min(100, sum(p.done_files for p in syncing) * 100 // total_files)
    return None


def _info_parts(status: CongregationStatus, now: datetime | None) -> list[str]:
    parts: list[str] = []
    last = short_time(status.last_sync, now)
    parts.append(_("last sync {when}").format(when=last) if last else _("not synced yet"))
    meeting = short_time(status.next_meeting, now)
    if meeting:
        parts.append(_("next meeting {when}").format(when=meeting))
    elif not status.meeting_days_known:
        parts.append(_("meeting days not known"))
    return parts


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def info_line(status: CongregationStatus, now: datetime | None = None) -> str:
    """"Last sync 18:05 · next meeting Thu 19:00" (the informational menu line)."""
    return _capitalized(" · ".join(_info_parts(status, now)))


def status_line(status: CongregationStatus) -> str:
    """"East: Up to date" (the menu shows no live progress: it would change while open)."""
    return _("{name}: {state}").format(name=status.name, state=state_label(status.state))


def _error_line(status: CongregationStatus) -> MenuItemSpec | None:
    err = status.last_error
    if err is None or status.state not in (SyncState.ERROR, SyncState.OFFLINE):
        return None
    return MenuItemSpec(_cut(err.message or err.kind, MENU_LINE_MAX), enabled=False)


def _detail(status: CongregationStatus, now: datetime | None) -> str:
    """"Up to date (last sync 18:05; next meeting Thu 19:00)" / "Syncing 12/40 files (35 %)"."""
    if status.state is SyncState.SYNCING:
        return progress_text(status.progress)
    if status.state is SyncState.ERROR and status.last_error is not None:
        return _("Error: {message}").format(message=status.last_error.message or status.last_error.kind)
    return "{state} ({details})".format(state=state_label(status.state),
                                        details="; ".join(_info_parts(status, now)))


def tooltip(statuses: Sequence[CongregationStatus], now: datetime | None = None) -> str:
    """The icon's tooltip: "m3daemon — Up to date (last sync 18:05; next meeting Thu 19:00)"."""
    if not statuses:
        text = f"{APP_NAME} — {_('No congregation configured')}"
    elif len(statuses) == 1:
        text = f"{APP_NAME} — {_detail(statuses[0], now)}"
        if statuses[0].waiting:  # the file's name before the last sync time: the tooltip is short
            text = f"{APP_NAME} — {state_label(statuses[0].state)}\n{waiting_line(statuses[0])}"
    else:
        lines = [f"{APP_NAME} — {state_label(worst_state(statuses))}"]
        lines += [f"{s.name}: {waiting_line(s)}" for s in statuses if s.waiting]  # first: the tooltip is short
        lines += [f"{s.name}: {_detail(s, now)}" for s in statuses]
        text = "\n".join(lines)
    return _cut(text, TOOLTIP_MAX)


# --- the menu ------------------------------------------------------------------------------


def _pause_item(paused: bool, congregation: str | None, *, all_: bool = False) -> MenuItemSpec:
    if paused:
        label = _("Resume all") if all_ else _("Resume")
        return MenuItemSpec(label, Action(ActionKind.RESUME, congregation))
    label = _("Pause all") if all_ else _("Pause")
    return MenuItemSpec(label, Action(ActionKind.PAUSE, congregation))


def _dashboard_item(url: str | None) -> MenuItemSpec:
    return MenuItemSpec(_("Open dashboard"), Action(ActionKind.OPEN_DASHBOARD, target=url), enabled=url is not None)


def _folder_item(status: CongregationStatus) -> MenuItemSpec:
    return MenuItemSpec(_("Open media folder"), Action(ActionKind.OPEN_FOLDER, status.name, status.media_dir),
                        enabled=bool(status.media_dir))


def _remedy_item(status: CongregationStatus, url: str | None) -> MenuItemSpec | None:
    """The button that does what an error's remedy says (the tray never sends a person to a terminal)."""
    err = status.last_error
    if err is None or status.state not in (SyncState.ERROR, SyncState.OFFLINE):
        return None
    action = remedy_action(err.kind)
    if action is None:
        return None
    if action == "allow-deletions":  # the status page lists the files kept, with the button
        return MenuItemSpec(_("Review the files kept…"), Action(ActionKind.OPEN_DASHBOARD, status.name, url),
                            enabled=url is not None)
    label = _("Fix password…") if action == "fix-password" else _("Check the connection…")
    return MenuItemSpec(label, Action(ActionKind.OPEN_DASHBOARD, status.name, url, page="connection"),
                        enabled=url is not None)


def _state_lines(status: CongregationStatus, now: datetime | None, url: str | None = None) -> list[MenuItemSpec]:
    lines = [MenuItemSpec(info_line(status, now), enabled=False)]
    err = _error_line(status)
    if err is not None:
        lines.append(err)
    fix = _remedy_item(status, url)
    if fix is not None:
        lines.append(fix)
    if status.waiting:  # a file M³ holds open: say which one waits
        lines.append(MenuItemSpec(_cut(waiting_line(status), MENU_LINE_MAX), enabled=False))
    lines += [MenuItemSpec(_cut(str(r.get("text", "")), MENU_LINE_MAX), enabled=False) for r in status.readiness[:2]]
    held = status.held_for_meeting
    if held:
        until = short_time(held[0].get("until"), now) or ""
        lines.append(MenuItemSpec(ngettext("{n} change waits until the meeting ends ({until})",
                                           "{n} changes wait until the meeting ends ({until})",
                                           len(held)).format(n=len(held), until=until), enabled=False))
        # The label is the question: choosing it is the person's yes.
        lines.append(MenuItemSpec(_("Apply them now, during the meeting"),
                                  Action(ActionKind.APPLY_HELD, status.name)))
    return lines


def waiting_line(status: CongregationStatus) -> str:
    """"In use, updated after the meeting: 2026-03-04/talk.mp4" (short: menus and the 127-character
    tooltip; the dashboard says the whole sentence)."""
    return _("In use, updated after the meeting: {names}").format(names=", ".join(status.waiting))


def build_menu(
    statuses: Sequence[CongregationStatus], dashboard_url: str | None, now: datetime | None = None
) -> tuple[MenuItemSpec, ...]:
    """The tray menu as plain item specs (see the module docstring for the layout)."""
    update_all = MenuItemSpec(_("Update media folders now"), Action(ActionKind.UPDATE_NOW), enabled=bool(statuses),
                              default=True)
    quit_item = MenuItemSpec(_("Quit"), Action(ActionKind.QUIT))
    items: list[MenuItemSpec] = [update_all]
    if not statuses or all(s.state is SyncState.NOT_CONFIGURED for s in statuses):
        # Unconfigured: the first thing to do is the first item; it opens the dashboard's Connection page.
        setup = MenuItemSpec(_("Set up…"), Action(ActionKind.OPEN_DASHBOARD, target=dashboard_url, page="connection"),
                             enabled=dashboard_url is not None, default=True)
        items = [setup, _dashboard_item(dashboard_url), SEPARATOR,
                  MenuItemSpec(_("No congregation configured"), enabled=False), SEPARATOR, quit_item]
        return tuple(items)
    if len(statuses) == 1:
        status = statuses[0]
        items += [_folder_item(status), _dashboard_item(dashboard_url), _pause_item(status.paused, None), SEPARATOR,
                  MenuItemSpec(status_line(status), enabled=False), *_state_lines(status, now, dashboard_url), SEPARATOR, quit_item]
        return tuple(items)
    items.append(SEPARATOR)
    for status in statuses:
        sub = (*_state_lines(status, now, dashboard_url), SEPARATOR,
               MenuItemSpec(_("Update now"), Action(ActionKind.UPDATE_NOW, status.name)),
               _folder_item(status), _pause_item(status.paused, status.name))
        items.append(MenuItemSpec(status_line(status), submenu=sub))
    items += [SEPARATOR, _dashboard_item(dashboard_url),
              _pause_item(all(s.paused for s in statuses), None, all_=True), SEPARATOR, quit_item]
    return tuple(items)


# --- notifications -------------------------------------------------------------------------


def _person_error(status: CongregationStatus | None) -> tuple[str, str] | None:
    if status is None or status.last_error is None or not status.last_error.needs_person:
        return None
    if status.state in (SyncState.UP_TO_DATE, SyncState.PAUSED):
        return None
    return status.last_error.kind, status.last_error.message


def notification_for(old: CongregationStatus | None, new: CongregationStatus) -> tuple[str, str] | None:
    """(title, message) when a change deserves a notification, else None.

    * A failure that needs a person (wrong password, full disk: ``ErrorView.needs_person``)
      newly appears; the same failure again (a retry, a routine poll) stays quiet.
    * A pre-meeting sync (``last_result["reason"] == "pre-meeting"``) went from syncing to up to date:
      "Media ready for the meeting".

    Everything else (routine polls, going offline and back) is not worth interrupting anyone.
    """
    error = _person_error(new)
    if error is not None and error != _person_error(old):
        assert new.last_error is not None
        title = _("{name}: action needed").format(name=new.name)
        message = " ".join(p for p in (new.last_error.message, new.last_error.remedy) if p)
        return title, message or new.last_error.kind
    if (
        old is not None
        and old.state is SyncState.SYNCING
        and new.state is SyncState.UP_TO_DATE
        and (new.last_result or {}).get("reason") == "pre-meeting"
    ):
        meeting = short_time(new.next_meeting)
        if meeting:
            message = _("{name}: the media folders are up to date for the meeting ({when}).").format(
                name=new.name, when=meeting)
        else:
            message = _("{name}: the media folders are up to date.").format(name=new.name)
        return _("Media ready for the meeting"), message
    return None
