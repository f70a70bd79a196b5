"""``m3daemon update``: one sync now, with progress on a terminal and a summary at the end."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from m3daemon.errors import ExitCode
from m3daemon.i18n import _


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true", help=_("print the result as one JSON object"))
    p.add_argument("--dry-run", action="store_true", help=_("show what would change, change nothing"))
    p.add_argument(
        "--allow-deletions", action="store_true",
        help=_("apply removals that the mass-deletion guard held back"),
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.config import load_config
    from m3daemon.executor import Progress
    from m3daemon.sync import update

    cfg = load_config(config_path_from(args))  # type: ignore[arg-type]
    progress = Progress()
    show = sys.stderr.isatty() and not args.json
    stop = threading.Event()
    ticker = _start_progress(progress, stop) if show else None
    try:
        report = update(cfg, dry_run=args.dry_run, progress=progress, allow_deletions=args.allow_deletions)
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print_summary(report)
    return int(ExitCode.OK if report.ok else ExitCode.PARTIAL)


def print_summary(report: Any) -> None:
    if report.dry_run:
        print(_("Dry run: nothing was changed."))
        for item in report.planned:
            target = item.get("target") or item.get("path") or ""
            print(f"  {item['action']:<10} {target}")
    print(
        _("{downloaded} downloaded, {copied} copied, {removed} removed, {unchanged} unchanged, "
          "{hidden} hidden, {failed} failed ({seconds:.1f} s, {requests} requests).").format(**report.to_json())
    )
    for err in report.errors:
        where = f"{err['path']}: " if err["path"] else ""
        print(_("Problem: {where}{message}").format(where=where, message=err["message"]), file=sys.stderr)
        if err["remedy"]:
            print(_("  What to do: {remedy}").format(remedy=err["remedy"]), file=sys.stderr)
    if report.ok and not report.dry_run:
        print(_("The media folder {path} is up to date.").format(path=report.media_dir))


def _start_progress(progress: Any, stop: threading.Event) -> threading.Thread:
    """A rich progress bar fed from the executor's counters (rich is imported only here)."""

    def loop() -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task(_("Updating"), total=None)
            while not stop.wait(0.1):
                if progress.total_files:
                    bar.update(
                        task, total=progress.total_bytes or None, completed=progress.done_bytes,
                        description=_("{done}/{total} files").format(
                            done=progress.done_files, total=progress.total_files
                        ),
                    )

    t = threading.Thread(target=loop, name="progress", daemon=True)
    t.start()
    return t
