"""``m3daemon history`` (what the last syncs changed) and ``m3daemon forget`` (remove a congregation
from this computer)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from m3daemon.errors import ExitCode, UsageError
from m3daemon.i18n import _, day_text


def add_history_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("-n", "--last", type=int, default=10, metavar="N", help=_("how many syncs (default 10)"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_history)


def when_text(iso: str) -> str:
    from m3daemon.engine.wording import long_time

    return long_time(iso) or iso


def run_history(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.engine.context import record_path
    from m3daemon.engine.history import entry_lines
    from m3daemon.local.record import Record
    from m3daemon.settings.config import load_config

    cfg = load_config(Path(config_path_from(args)))
    path = record_path(cfg)
    entries: list[dict[str, Any]] = []
    if path.exists():
        rec = Record(path, readonly=True)
        try:
            entries = rec.history(max(1, args.last))
        finally:
            rec.close()
    if args.json:
        print(json.dumps({"congregation": cfg.name, "history": entries}, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    if not entries:
        print(_("No sync of {name} has changed anything on this computer yet.").format(name=cfg.name))
        return int(ExitCode.OK)
    for entry in entries:
        dates = ", ".join(day_text(datetime.fromisoformat(d), "medium") for d in entry.get("dates", []))
        head = when_text(str(entry.get("at", "")))
        print(_("{when} (for {dates})").format(when=head, dates=dates) if dates else head)
        for line in entry_lines(entry):
            print("  " + line)
        print()
    return int(ExitCode.OK)


def add_forget_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--delete-media", action="store_true",
                   help=_("also move the media folder to the trash (asked first in a terminal)"))
    p.add_argument("--yes", action="store_true", help=_("do not ask"))
    p.set_defaults(run=run_forget)


def run_forget(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.engine.forget import forget
    from m3daemon.settings.config import load_config

    path = Path(config_path_from(args))
    if not path.exists():
        raise UsageError(_("There is no congregation set up in {path}.").format(path=path),
                         _("Name the configuration with --config."))
    cfg = load_config(path)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(_("Forgetting {name} needs a confirmation.").format(name=cfg.name),
                             _("Run it in a terminal, or add --yes."))
        question = (_("Remove {name} from this computer, with its record and password, and move its media folder "
                      "{dir} to the trash? [y/N] ") if args.delete_media else
                    _("Remove {name} from this computer, with its record and password? Its media folder {dir} "
                      "stays. [y/N] ")).format(name=cfg.name, dir=cfg.local.media_dir)
        if input(question).strip().lower() not in ("y", "yes", _("y"), _("yes")):
            print(_("Nothing was changed."))
            return int(ExitCode.OK)
    done = forget(cfg, media=args.delete_media)
    print(_("{name} is no longer set up on this computer (configuration, record and password removed).").format(
        name=cfg.name))
    if done.media_trashed:
        print(_("The media folder {dir} is in the trash.").format(dir=done.media_trashed))
    elif done.media_kept:
        print(_("The media folder {dir} was kept; delete it yourself if it is no longer needed.").format(
            dir=done.media_kept))
    print(_("A running m3daemon stops syncing it at its next restart (`m3daemon quit`, then start it again)."))
    return int(ExitCode.OK)
