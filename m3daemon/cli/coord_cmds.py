"""Coordinator commands: ``media``, ``recurring``, ``background`` and ``settings force|unforce|publish``.

Every name, date and file is checked before the first request, so a typo never leaves half a
change on the server. The work itself is in :mod:`m3daemon.coordinator`; this module parses,
prints, and turns results into exit codes (0 all done, 1 some items not done, 2/3/4 as usual).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m3daemon.errors import ExitCode, UsageError
from m3daemon.i18n import _, ngettext, weekday_name

if TYPE_CHECKING:  # `m3daemon --help` does not import the coordinator package
    from m3daemon.coordinator.context import Coordinator
    from m3daemon.coordinator.forced import ForcedChange
    from m3daemon.coordinator.media import BatchResult
    from m3daemon.coordinator.overview import Overview
    from m3daemon.settings.config import Config


# --- parsers --------------------------------------------------------------------------------------


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=_("print the result as one JSON object"))


def _upload_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prefix", metavar="NN[-NN[-NN]]",
                   help=_("order prefix, written as '<prefix> - <file name>' (M³'s style)"))
    p.add_argument("--section", metavar="ID",
                   help=_("meeting part on M³ 25+: tgw (Treasures From God's Word), ayfm (Apply Yourself to the "
                          "Field Ministry), lac (Living as Christians), pt (Public Talk) or wt (Watchtower Study); "
                          "the circuit overseer's talk cannot be chosen by name, M³ uses it by itself in his week"))


def add_media_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    ms = p.add_subparsers(dest="media_command", metavar="ACTION", required=True)
    ls = ms.add_parser("ls", help=_("what each date will get"))
    ls.add_argument("date", nargs="?", metavar="DATE", help=_("one date, YYYY-MM-DD"))
    ls.add_argument("--week", action="store_true", help=_("this week, Monday to Sunday"))
    ls.add_argument("--from", dest="start", metavar="DATE")
    ls.add_argument("--to", dest="end", metavar="DATE")
    _json_flag(ls)
    ls.set_defaults(run=run_media_ls)
    add = ms.add_parser("add", help=_("upload files for a date"))
    add.add_argument("date", metavar="DATE", help=_("YYYY-MM-DD, today or tomorrow"))
    add.add_argument("files", nargs="+", metavar="FILE")
    _upload_flags(add)
    _json_flag(add)
    add.set_defaults(run=run_media_add)
    for action, helptext in (
        ("rm", _("remove files from a date")),
        ("hide", _("hide items (congregation or JW.org) on a date")),
        ("unhide", _("show hidden items again on a date")),
    ):
        sp = ms.add_parser(action, help=helptext)
        sp.add_argument("date", metavar="DATE", help=_("YYYY-MM-DD, today or tomorrow"))
        sp.add_argument("names", nargs="+", metavar="NAME")
        _json_flag(sp)
        sp.set_defaults(run=run_media_names)
    pr = ms.add_parser("prune", help=_("remove past date folders from the server"))
    pr.add_argument("--before", metavar="DATE", help=_("remove folders dated before this (default: today)"))
    pr.add_argument("--dry-run", action="store_true", help=_("only list what would be removed"))
    pr.add_argument("--yes", action="store_true", help=_("remove without asking"))
    _json_flag(pr)
    pr.set_defaults(run=run_media_prune)


def add_recurring_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    rs = p.add_subparsers(dest="recurring_command", metavar="ACTION", required=True)
    ls = rs.add_parser("ls", help=_("list the recurring media"))
    _json_flag(ls)
    ls.set_defaults(run=run_recurring_ls)
    add = rs.add_parser("add", help=_("upload files that go into every meeting"))
    add.add_argument("files", nargs="+", metavar="FILE")
    _upload_flags(add)
    _json_flag(add)
    add.set_defaults(run=run_recurring_add)
    rm = rs.add_parser("rm", help=_("remove recurring media"))
    rm.add_argument("names", nargs="+", metavar="NAME")
    _json_flag(rm)
    rm.set_defaults(run=run_recurring_rm)


def add_background_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    bs = p.add_subparsers(dest="background_command", metavar="ACTION", required=True)
    st = bs.add_parser("set", help=_("upload the media window background image"))
    st.add_argument("file", metavar="FILE")
    _json_flag(st)
    st.set_defaults(run=run_background_set)
    rm = bs.add_parser("rm", help=_("remove the background image"))
    _json_flag(rm)
    rm.set_defaults(run=run_background_rm)


def add_settings_parsers(ss: Any) -> None:
    """``settings force|unforce|publish``, added to the ``settings`` group of info_cmds."""
    from m3daemon.core.prefs import FORCABLE

    keys = "\n".join(f"  {k:<36} {spec.kind}" for k, spec in FORCABLE.items())
    epilog = _("Keys a coordinator may force:") + "\n" + keys
    fmt = argparse.RawDescriptionHelpFormatter
    force = ss.add_parser("force", help=_("force settings on every computer, e.g. meeting.mwDay=2"),
                          epilog=epilog, formatter_class=fmt)
    force.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    _json_flag(force)
    force.set_defaults(run=run_settings_force)
    unforce = ss.add_parser("unforce", help=_("stop forcing settings"), epilog=epilog, formatter_class=fmt)
    unforce.add_argument("keys", nargs="*", metavar="KEY")
    unforce.add_argument("--all", action="store_true", help=_("force nothing (writes {})"))
    _json_flag(unforce)
    unforce.set_defaults(run=run_settings_unforce)
    publish = ss.add_parser("publish", help=_("force this computer's own values of settings"),
                            epilog=epilog, formatter_class=fmt)
    publish.add_argument("keys", nargs="+", metavar="KEY")
    _json_flag(publish)
    publish.set_defaults(run=run_settings_publish)


# --- shared ---------------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> Config:
    from m3daemon.cli.main import config_path_from
    from m3daemon.settings.config import load_config

    cfg = load_config(Path(config_path_from(args)))
    if cfg.connection is None:
        raise UsageError(_("Congregation sync is not set up."), _("Run `m3daemon setup` first."))
    return cfg


def _today(cfg: Config) -> date:
    """The congregation's today, from its clock (its ``[schedule] timezone``)."""
    from m3daemon.engine.context import clock_for

    return clock_for(cfg).today()


@contextmanager
def _coordinator(cfg: Config, today: date | None = None) -> Iterator[Coordinator]:
    """A coordinator session; ``today`` is the date the command checked its arguments against."""
    from m3daemon.coordinator.context import Coordinator

    with Coordinator.open(cfg, today=today) as coord:
        yield coord


class _Bar:
    """Upload progress with rich, on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), transient=True, console=Console(stderr=True))
        self.task: Any = None

    def start_file(self, name: str, size: int) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(name, total=size)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, n)


@contextmanager
def _progress(args: argparse.Namespace) -> Iterator[_Bar | None]:
    if args.json or not sys.stderr.isatty():
        yield None
        return
    bar = _Bar()
    with bar.bar:
        yield bar


def _warn(warnings: list[str]) -> None:
    for w in dict.fromkeys(warnings):
        print(_("Warning: {message}").format(message=w), file=sys.stderr)


def _finish(result: BatchResult, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return result.exit_code
    _warn(result.warnings)
    for item in result.items:
        if item.done:
            print(f"  {_('done'):<8} {item.item}: {item.detail}")
        else:
            why = item.error.message if item.error is not None else item.detail
            print(f"  {_('NOT DONE'):<8} {item.item}: {why}")
    print(_("{done} done, {failed} not done.").format(done=len(result.done), failed=len(result.failed)))
    remedies = dict.fromkeys(i.error.remedy for i in result.failed if i.error is not None and i.error.remedy)
    if result.fatal is not None:
        print(_("Error: {message}").format(message=result.fatal.message), file=sys.stderr)
    for remedy in remedies:
        print(_("What to do: {remedy}").format(remedy=remedy), file=sys.stderr)
    return result.exit_code


# --- media ----------------------------------------------------------------------------------------


def run_media_ls(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import check_date
    from m3daemon.coordinator.overview import overview

    cfg = _config(args)
    today = _today(cfg)
    chosen = [bool(args.date), args.week, bool(args.start or args.end)]
    if sum(chosen) > 1:
        raise UsageError(_("Give one date, --week, or --from/--to, not several."), _("See m3daemon media ls --help."))
    extend = False
    if args.date:
        start = end = check_date(args.date, today, allow_past=True)
    elif args.week:
        start = today - timedelta(days=today.weekday())
        end = start + timedelta(days=6)
    elif args.start or args.end:
        start = check_date(args.start, today, allow_past=True) if args.start else today
        end = check_date(args.end, today, allow_past=True) if args.end else start + timedelta(days=6)
        if end < start:
            raise UsageError(_("--to is before --from."), _("Swap the two dates."))
    else:
        start, end, extend = today, today + timedelta(days=cfg.local.days_ahead), True
    with _coordinator(cfg, today) as coord:
        view = overview(coord, start, end, extend=extend)
    if args.json:
        print(json.dumps(view.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_overview(view)
    return int(ExitCode.OK)


def _print_overview(view: Overview) -> None:
    from m3daemon.coordinator.media import human_size

    _warn(view.warnings)
    if not view.meeting_days_known:
        print(_("Meeting days are not set: recurring media go only into dates with media of their own."))
    if not view.dates:
        print(_("Nothing from {start} to {end}.").format(start=view.start, end=view.end))
    yes, no = _("yes"), _("no")
    for dv in view.dates:
        kind = _("meeting") if dv.meeting else ""
        print(f"{dv.date.isoformat()} {weekday_name(dv.date)} {kind}  {' '.join(dv.folders)}".rstrip())
        if not dv.entries:
            print("    " + _("(nothing)"))
            continue
        print(f"    {_('NAME'):<44} {_('ORIGIN'):<20} {_('SECTION'):<16} {_('SIZE'):>9}  {_('HERE'):<5} M³")
        for e in dv.entries:
            origin = _("hidden ({origin})").format(origin=e.origin) if e.hidden and e.origin != "marker" else (
                _("hidden by a marker") if e.origin == "marker" else e.origin)
            size = human_size(e.size) if e.size is not None else "-"
            here = "-" if e.here is None else (yes if e.here else no)
            m3 = {"shows": yes, "converted": _("as images"), "never": _("never")}[e.m3]
            print(f"    {e.name:<44} {origin:<20} {e.section or '-':<16} {size:>9}  {here:<5} {m3}")


def run_media_add(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import add_media, check_date, m3_warnings, plan_uploads

    cfg = _config(args)
    today = _today(cfg)
    d = check_date(args.date, today)
    uploads = plan_uploads(args.files, args.prefix, args.section)
    _warn(m3_warnings(uploads))  # before anything is sent
    with _coordinator(cfg, today) as coord, _progress(args) as bar:
        result = add_media(coord, d, uploads, bar)
    return _finish(result, args)


def run_media_names(args: argparse.Namespace) -> int:
    """``media rm|hide|unhide DATE NAME...``: hiding is for coming dates; removing works on any."""
    from m3daemon.coordinator import media as ops

    cfg = _config(args)
    today = _today(cfg)
    d = ops.check_date(args.date, today, allow_past=args.media_command != "hide")
    names = ops.check_names(args.names)
    operation = {"rm": ops.remove_media, "hide": ops.hide, "unhide": ops.unhide}[args.media_command]
    with _coordinator(cfg, today) as coord:
        return _finish(operation(coord, d, names), args)


def run_media_prune(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import check_date, prune, prune_candidates

    cfg = _config(args)
    today = _today(cfg)
    before = check_date(args.before, today, allow_past=True) if args.before else today
    if before > today:
        raise UsageError(
            _("--before {date} is after today: prune removes past dates only.").format(date=before),
            _("Use m3daemon media rm to remove media of a coming date."),
        )
    with _coordinator(cfg, today) as coord:
        folders = prune_candidates(coord, before)
        # On a terminal the list is shown and confirmed first (with --json: only shown).
        interactive = sys.stdin.isatty() and not args.yes
        dry = args.dry_run or not folders or (interactive and args.json)
        if dry or interactive:
            listed = ["/".join(p) for p in folders]
            if args.json:
                print(json.dumps({"action": "prune", "dry_run": True, "folders": listed}, indent=2,
                                 ensure_ascii=False))
                return int(ExitCode.OK)
            for f in listed:
                print(f"  {f}")
            if not folders:
                print(_("No date folders before {date}.").format(date=before))
                return int(ExitCode.OK)
            if dry:
                print(ngettext("Dry run: {n} folder would be removed.", "Dry run: {n} folders would be removed.",
                               len(folders)).format(n=len(folders)))
                return int(ExitCode.OK)
            answer = input(ngettext("Remove {n} folder? [y/N] ", "Remove {n} folders? [y/N] ", len(folders)).format(
                n=len(folders)))
            if answer.strip().lower() not in ("y", "yes", _("y"), _("yes")):
                print(_("Nothing was removed."))
                return int(ExitCode.OK)
        return _finish(prune(coord, folders), args)


# --- recurring, background ------------------------------------------------------------------------


def run_recurring_ls(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import human_size, list_recurring, section_of

    cfg = _config(args)
    with _coordinator(cfg) as coord:
        entries = list_recurring(coord)
    rows: list[dict[str, Any]] = [
        {"name": e.name, "size": e.size, "section": section_of(e.name)} for e in entries
    ]
    if args.json:
        print(json.dumps({"recurring": rows}, ensure_ascii=False, indent=2))
        return int(ExitCode.OK)
    if not rows:
        print(_("No recurring media."))
    for r in rows:
        size = human_size(r["size"]) if r["size"] is not None else "-"
        print(f"  {r['name']:<50} {r['section'] or '-':<16} {size:>9}")
    return int(ExitCode.OK)


def run_recurring_add(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import add_recurring, plan_uploads

    cfg = _config(args)
    uploads = plan_uploads(args.files, args.prefix, args.section)
    with _coordinator(cfg) as coord, _progress(args) as bar:
        return _finish(add_recurring(coord, uploads, bar), args)


def run_recurring_rm(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import check_names, remove_recurring

    cfg = _config(args)
    names = check_names(args.names)
    with _coordinator(cfg) as coord:
        return _finish(remove_recurring(coord, names), args)


def run_background_set(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import background_name, local_size, set_background

    cfg = _config(args)
    source = Path(args.file)
    local_size(source)
    background_name("-", source)  # the extension, before any request (the name needs forcedPrefs.json)
    with _coordinator(cfg) as coord, _progress(args) as bar:
        return _finish(set_background(coord, source, bar), args)


def run_background_rm(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.media import remove_background

    cfg = _config(args)
    with _coordinator(cfg) as coord:
        return _finish(remove_background(coord), args)


# --- settings force / unforce / publish -----------------------------------------------------------


def run_settings_force(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.forced import forcing, parse_assignments

    values = parse_assignments(args.assignments)
    return _edit(args, forcing(values))


def run_settings_unforce(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.forced import check_keys, unforcing

    if not args.keys and not args.all:
        raise UsageError(_("Name the settings to stop forcing, or give --all."), _("Example: meeting.mwDay"))
    return _edit(args, unforcing(check_keys(args.keys), everything=args.all))


def run_settings_publish(args: argparse.Namespace) -> int:
    from m3daemon.coordinator.forced import forcing, publish_values

    cfg = _config(args)
    return _edit(args, forcing(publish_values(cfg, args.keys)), cfg)


def _edit(args: argparse.Namespace, change: Any, cfg: Config | None = None) -> int:
    from m3daemon.coordinator.forced import edit_forced

    cfg = cfg or _config(args)
    with _coordinator(cfg) as coord:
        outcome = edit_forced(coord.writer, change)
    if args.json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False, indent=2, default=str))
        return int(ExitCode.OK)
    _print_change(outcome)
    return int(ExitCode.OK)


def _print_change(outcome: ForcedChange) -> None:
    _warn(outcome.warnings)
    before, after = outcome.before, outcome.after
    if not outcome.written:
        print(_("forcedPrefs.json already says that; nothing was written."))
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, "<unset>"), after.get(key, "<unset>")
        if key not in after:
            print(_("  {key}: no longer forced (was {old})").format(key=key, old=json.dumps(old)))
        elif key not in before or old != new:
            print(_("  {key} = {new}").format(key=key, new=json.dumps(new, ensure_ascii=False)))
    if outcome.written:
        print(_("forcedPrefs.json updated; every computer applies it at its next update."))
