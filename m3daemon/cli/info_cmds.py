"""Read-only commands: ``status``, ``settings``, ``providers``, ``browse``."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from m3daemon.engine.context import Context
from m3daemon.engine.wording import long_time
from m3daemon.errors import ExitCode, LockedSettingError, UsageError
from m3daemon.i18n import _, ngettext


def _cfg(args: argparse.Namespace) -> Any:
    from m3daemon.cli.main import config_path_from
    from m3daemon.settings.config import load_config

    return load_config(Path(config_path_from(args)))


def _meta(cfg: Any) -> dict[str, Any]:
    """What the last update recorded (no network)."""
    return Context.of(cfg).recorded()


# --- status ----------------------------------------------------------------------------------


def add_status_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_status)


def run_status(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.core.meetings import MeetingDays, meetings_between
    from m3daemon.daemon.control import ControlClient
    from m3daemon.engine.readiness import readiness
    from m3daemon.settings.config import load_config_or_default

    cfg = load_config_or_default(Path(config_path_from(args)))
    client = ControlClient.connect(cfg.state_dir)
    if client is not None:
        try:
            live = client.call("GET", "status")
        finally:
            client.close()
        return _print_daemon_status(live, cfg, args.json)
    ctx = Context.of(cfg)
    meta = ctx.recorded()
    days = MeetingDays.from_prefs(ctx.planned_effective(meta))
    tz = ctx.tz
    now = ctx.clock.now()
    upcoming = [m for m in meetings_between(days, now, now + timedelta(days=8), tz) if m.start >= now]
    ready = readiness(cfg.local.media_dir, ctx.planned_effective(meta), meta.get("readiness"), now,
                      length=timedelta(minutes=cfg.schedule.meeting_minutes))
    info = {
        "congregation": cfg.name,
        "config": str(cfg.path),
        "server": cfg.connection.url if cfg.connection else None,
        "folder": cfg.connection.folder if cfg.connection else None,
        "media_dir": str(cfg.local.media_dir),
        "layout": cfg.local.layout,
        "last_sync": meta.get("last_sync"),
        "last_result": meta.get("last_result"),
        "meeting_days_known": days.known,
        "next_meeting": upcoming[0].start.isoformat() if upcoming else None,
        "readiness": [r.to_json() for r in ready],
        "daemon": False,
    }
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    if cfg.connection is None:
        print(_("Congregation sync is not set up. Run `m3daemon setup`."))
    last = meta.get("last_result")
    rows = [
        (_("Congregation"), cfg.name),
        (_("Server"), f"{cfg.connection.url}{cfg.connection.folder}" if cfg.connection else None),
        (_("Media folder"), str(cfg.local.media_dir)),
        (_("Layout"), _("M³ 25+ Folder to Watch") if cfg.local.layout == "watch" else _("M³ 22–24 (classic)")),
        (_("Last sync"), long_time(meta.get("last_sync")) or _("not yet")),
        (_("Result"), {"ok": _("everything in place"), "partial": _("some files are missing")}.get(str(last), last)),
        (_("Next meeting"), long_time(upcoming[0].start.isoformat()) if upcoming else None),
        (_("m3daemon in the background"), _("not running")),
    ]
    _print_rows(rows)
    _print_readiness([r.to_json() for r in ready], [])
    if not days.known:
        print(_("Meeting days are not set: recurring media go only into dates with their own media."))
    return int(ExitCode.OK)


def _print_daemon_status(live: dict[str, Any], cfg: Any, as_json: bool) -> int:
    """What the running daemon says, for this configuration (or every one it serves)."""
    from m3daemon.engine.status import SyncState
    from m3daemon.engine.wording import files_text, state_label, waiting_text

    congs = live["congregations"]
    if as_json:
        mine = next((c for c in congs if c["config"] == str(cfg.path)), None)
        print(json.dumps({**(mine or {}), "daemon": True, "pid": live["pid"], "watcher": live["watcher"],
                          "congregations": congs}, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    print(_("m3daemon is running (process {pid}).").format(pid=live["pid"]))
    for c in congs:
        print()
        try:
            state = state_label(SyncState(c["state"]))
        except ValueError:
            state = c["state"]
        print(_("{name}: {state}").format(name=c["name"], state=state))
        rows = [(_("Media folder"), c["media_dir"]), (_("Last sync"), long_time(c["last_sync"]) or _("not yet")),
                (_("Next sync"), long_time(c["next_sync"])), (_("Next meeting"), long_time(c["next_meeting"]))]
        if c["state"] == "syncing":
            p = c["progress"]
            rows.append((_("Progress"), files_text(p["done_files"], p["total_files"])))
        if c.get("last_error"):
            rows.append((_("Problem"), c["last_error"]["message"]))
            rows.append((_("What to do"), c["last_error"]["remedy"]))
        if c.get("waiting"):  # files another program (M³ showing them) holds open
            rows.append((_("In use"), waiting_text(c["waiting"])))
        _print_rows(rows, indent="  ")
        _print_readiness(c.get("readiness") or [], c.get("held_for_meeting") or [], indent="  ")
    return int(ExitCode.OK)


def _print_rows(rows: list[tuple[str, Any]], indent: str = "") -> None:
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        print(f"{indent}{label:<{width}}  {value if value not in (None, '') else '-'}")


def _print_readiness(ready: list[dict[str, Any]], held: list[dict[str, str]], indent: str = "") -> None:
    """"Thursday 19:00 — 12 of 12 files ready" per coming meeting, and what a running one holds back."""
    for r in ready:
        missing = _(" (missing: {names})").format(names=", ".join(r["missing"])) if r.get("missing") else ""
        print(f"{indent}{r['text']}{missing}")
    if held:
        print(indent + ngettext("{n} change waits until the meeting ends; `m3daemon update --during-meeting` "
                                "applies it now.",
                                "{n} changes wait until the meeting ends; `m3daemon update --during-meeting` "
                                "applies them now.", len(held)).format(n=len(held)))


# --- settings --------------------------------------------------------------------------------


def add_settings_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    ss = p.add_subparsers(dest="settings_command", metavar="ACTION")
    show = ss.add_parser("show", help=_("effective settings; locked ones are forced by the coordinator"))
    show.add_argument("--refresh", action="store_true", help=_("fetch the congregation settings now"))
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_settings_show)
    st = ss.add_parser("set", help=_("change a local setting, e.g. meeting.mwDay=2"))
    st.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    st.set_defaults(run=run_settings_set)
    from m3daemon.cli.coord_cmds import add_settings_parsers

    add_settings_parsers(ss)  # force, unforce, publish (coordinator)
    p.set_defaults(run=run_settings_show, refresh=False, json=False)


def _settings_now(cfg: Any, refresh: bool) -> tuple[dict[str, Any], list[str], str | None]:
    from m3daemon.core import prefs as m3prefs

    ctx = Context.of(cfg)
    if refresh:
        from m3daemon.engine.sync import read_congregation
        from m3daemon.local.record import Record

        rec = Record(ctx.record_path)
        try:
            with ctx:
                cong = read_congregation(ctx.session, cfg, rec)
            rec.set_meta(effective_prefs=cong.effective,
                         locked_keys=sorted(m3prefs.locked_keys(cong.forced.values)))
        finally:
            rec.close()
    prefs = ctx.recorded_prefs()
    return prefs.effective, list(prefs.locked), prefs.fetched_at


def run_settings_show(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    effective, locked, fetched = _settings_now(cfg, getattr(args, "refresh", False))
    if getattr(args, "json", False):
        print(json.dumps({"settings": effective, "locked": locked, "fetched_at": fetched}, indent=2,
                         ensure_ascii=False, default=str))
        return int(ExitCode.OK)
    if fetched:
        print(_("Congregation settings fetched {when}.").format(when=fetched))
    else:
        print(_("No congregation settings fetched yet (run `m3daemon update`)."))
    for key in sorted(effective):
        mark = _("locked") if key in locked else ""
        print(f"{key:<40} {json.dumps(effective[key], ensure_ascii=False):<24} {mark}")
    return int(ExitCode.OK)


def run_settings_set(args: argparse.Namespace) -> int:
    from m3daemon.core import prefs as m3prefs
    from m3daemon.settings.config import Config, save_config

    cfg: Config = _cfg(args)
    locked = set(_meta(cfg).get("locked_keys") or [])
    new_prefs = dict(cfg.prefs)
    for item in args.assignments:
        key, sep, text = item.partition("=")
        if not sep:
            raise UsageError(_("{item!r} is not KEY=VALUE.").format(item=item), _("Example: meeting.mwDay=2"))
        key = key.strip()
        if key in locked:
            raise LockedSettingError(
                _("{key} is set by the congregation coordinator and cannot be changed here.").format(key=key),
                _("Ask the coordinator to change it for the whole congregation."),
            )
        try:
            new_prefs[key] = m3prefs.parse_pref_text(key, text.strip())
        except ValueError as exc:
            raise UsageError(str(exc), _("See `m3daemon settings show` for the current values.")) from exc
    from dataclasses import replace

    save_config(replace(cfg, prefs=new_prefs))
    print(_("Saved."))
    return int(ExitCode.OK)


# --- providers -------------------------------------------------------------------------------


def add_providers_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_providers)


def run_providers(args: argparse.Namespace) -> int:
    from m3daemon.settings.providers import PROVIDERS

    if args.json:
        print(json.dumps([{"id": p.id, "name": p.name, "url": p.url, "folder": p.folder, "note": p.note}
                          for p in PROVIDERS], indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    for p in PROVIDERS:
        print(f"{p.id:<14} {p.name:<14} {p.url:<34} {p.folder}")
        if p.note:
            print(f"{'':<14} {p.note}")
    return int(ExitCode.OK)


# --- browse ----------------------------------------------------------------------------------


def add_browse_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("path", nargs="?", help=_("absolute folder path on the server (default: the sync folder)"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_browse)


def run_browse(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from m3daemon.engine.context import open_session
    from m3daemon.remote.listing import list_children

    cfg = _cfg(args)
    if cfg.connection is None:
        raise UsageError(_("Congregation sync is not set up."), _("Run `m3daemon setup` first."))
    folder = args.path or cfg.connection.folder
    cfg = replace(cfg, connection=replace(cfg.connection, folder=folder))
    with open_session(cfg) as session:
        entries = list_children(session, ())
    dirs = sorted(e.name for e in entries if e.is_dir)
    files = sorted(e.name for e in entries if not e.is_dir)
    if args.json:
        print(json.dumps({"folder": folder, "folders": dirs, "files": files}, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    base = folder.rstrip("/")
    print(folder)
    for d in dirs:
        print(f"  {base}/{d}/")
    if files:
        print(ngettext("  ({n} file)", "  ({n} files)", len(files)).format(n=len(files)))
    return int(ExitCode.OK)

