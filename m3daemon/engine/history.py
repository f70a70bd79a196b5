"""What changed: a short history of the syncs, kept in the record, for ``m3daemon history`` and the
dashboard's *What changed* page.

Each sync that changed something (or failed to) adds one entry: when, which dates, the files added,
replaced and removed, how many were hidden, the files that failed, and each of a person's files
that went to the trash with the reason in words. A sync that changed nothing adds nothing, so the
50 kept entries (:data:`m3daemon.local.record.HISTORY_KEEP`) are the ones worth reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from m3daemon.core.dates import parse_folder_date
from m3daemon.core.planner import Copy, Existing, Fetch, Plan
from m3daemon.engine.results import Outcome
from m3daemon.i18n import _, ngettext

__all__ = ["entry_for", "entry_lines", "trash_reason"]


def N_(message: str) -> str:
    return message


#: Why a person's file went to the trash, by the planner's and the executor's reason codes.
TRASH_REASONS = {
    "replaced": N_("a file of the same name came from the congregation; yours is in the trash"),
    "edited-unwanted": N_("it was a synced file that had been changed here, and the congregation no longer "
                          "has it"),
    "hidden": N_("the coordinator hid this name for that date"),
}


def trash_reason(code: str) -> str:
    return _(TRASH_REASONS.get(code, code))


def _date_of(path: str) -> str | None:
    for part in path.split("/")[:-1]:
        found = parse_folder_date(part)
        if found is not None:
            return found[0].isoformat()
    return None


def entry_for(plan: Plan, outcome: Outcome, at: datetime, reason: str = "") -> dict[str, Any] | None:
    """The history entry of one sync, or None when it changed nothing."""
    not_done = {p for p, _err in outcome.failed} | {p for p, _err in outcome.waiting} | set(outcome.skipped)
    added: list[str] = []
    replaced: list[str] = []
    for action in plan.actions:
        if isinstance(action, (Fetch, Copy)) and action.target not in not_done:
            (added if action.existing is Existing.NOTHING else replaced).append(action.target)
    entry: dict[str, Any] = {
        "at": at.isoformat(),
        "reason": reason,
        "added": sorted(added),
        "replaced": sorted(replaced),
        "removed": sorted(outcome.removed_paths),
        "hidden": plan.hidden,
        "trashed": [{"path": p, "reason": r} for p, r in sorted(outcome.trashed)],
        "failed": sorted({p for p, _err in outcome.failed}),
    }
    if not (added or replaced or outcome.removed_paths or outcome.trashed or entry["failed"]):
        return None
    paths: Iterable[str] = [*added, *replaced, *outcome.removed_paths, *(p for p, _r in outcome.trashed),
                            *entry["failed"]]
    entry["dates"] = sorted({d for d in (_date_of(p) for p in paths) if d})
    return entry


def entry_lines(entry: dict[str, Any]) -> list[str]:
    """The entry in sentences, for the terminal and the dashboard."""
    lines: list[str] = []

    def names(key: str) -> tuple[int, str]:
        found = list(entry.get(key) or [])
        return len(found), ", ".join(found[:5]) + (" …" if len(found) > 5 else "")

    n, shown = names("added")
    if n:
        lines.append(ngettext("{n} file added: {names}", "{n} files added: {names}", n).format(n=n, names=shown))
    n, shown = names("replaced")
    if n:
        lines.append(ngettext("{n} file replaced by a new version: {names}",
                              "{n} files replaced by a new version: {names}", n).format(n=n, names=shown))
    n, shown = names("removed")
    if n:
        lines.append(ngettext("{n} file removed (no longer wanted here): {names}",
                              "{n} files removed (no longer wanted here): {names}", n).format(n=n, names=shown))
    n, shown = names("failed")
    if n:
        lines.append(ngettext("{n} file could not be placed: {names}",
                              "{n} files could not be placed: {names}", n).format(n=n, names=shown))
    hidden = int(entry.get("hidden") or 0)
    if hidden:
        lines.append(ngettext("{n} item left out because the coordinator hid it",
                              "{n} items left out because the coordinator hid them", hidden).format(n=hidden))
    for item in entry.get("trashed") or []:
        lines.append(_("{path} was moved to the trash: {why}. Restore it from the trash if you still need it.").format(
            path=item.get("path", ""), why=trash_reason(str(item.get("reason", "")))))
    return lines
