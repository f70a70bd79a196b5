"""``m3daemon update``: one sync now, with progress on a terminal and a summary at the end."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from datetime import datetime
from typing import Any

from m3daemon.daemon import CONTROL_FILE
from m3daemon.errors import ErrorInfo, ExitCode, M3Error
from m3daemon.i18n import _, ngettext, time_text


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true", help=_("print the result as one JSON object"))
    p.add_argument("--dry-run", action="store_true", help=_("show what would change, change nothing"))
    p.add_argument(
        "--allow-deletions", action="store_true",
        help=_("apply removals that the mass-deletion guard held back"),
    )
    p.add_argument(
        "--during-meeting", action="store_true",
        help=_("while a meeting runs, also delete and replace files in its folder now (otherwise they "
               "wait for its end; on a terminal you are asked)"),
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.settings.config import load_config

    cfg = load_config(config_path_from(args))  # type: ignore[arg-type]
    if not args.dry_run and not args.allow_deletions and (cfg.state_dir / CONTROL_FILE).is_file():
        # The daemon's sync: this process imports nothing of the engine, and the daemon has its
        # last listing and its connections at hand.
        from m3daemon.daemon.control import ControlClient

        client = ControlClient.connect(cfg.state_dir)
        if client is not None:
            try:
                code, result = _through_daemon(client, cfg, args)
                if result is not None and _confirm_held(result, args):
                    args.during_meeting = True
                    code, _result = _through_daemon(client, cfg, args)
                return code
            finally:
                client.close()
    from m3daemon.engine.results import Progress
    from m3daemon.engine.sync import update

    progress = Progress()
    show = sys.stderr.isatty() and not args.json
    stop = threading.Event()
    ticker = _start_progress(progress, stop) if show else None
    try:
        report = update(cfg, dry_run=args.dry_run, progress=progress, allow_deletions=args.allow_deletions,
                        during_meeting=args.during_meeting)
        if _confirm_held(report.to_json(), args):
            report = update(cfg, progress=progress, allow_deletions=args.allow_deletions, during_meeting=True)
    except M3Error as err:
        if not args.json:
            raise
        # The sync stopped as a whole: still the documented fields, with the error in `errors`.
        from m3daemon.cli.main import report_error

        report_error(err)
        print(json.dumps(failed_result(err, str(cfg.local.media_dir), args.dry_run), ensure_ascii=False, indent=2))
        return int(err.exit_code)
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print_summary(report.to_json())
    return int(ExitCode.OK if report.ok else ExitCode.PARTIAL)


def failed_result(err: M3Error | ErrorInfo, media_dir: str, dry_run: bool = False) -> dict[str, Any]:
    """``update --json`` of a sync that stopped as a whole: every field, nothing done, the error
    as the one item of ``errors``."""
    from m3daemon.engine.sync import SyncReport

    report = SyncReport(media_dir=media_dir, dry_run=dry_run)
    report.errors.append((err.info() if isinstance(err, M3Error) else err).to_dict())
    return report.to_json()


def print_summary(result: dict[str, Any]) -> None:
    """The end-of-update summary, from the ``update --json`` fields."""
    if result.get("dry_run"):
        print(_("Dry run: nothing was changed."))
        for item in result.get("planned", []):
            target = item.get("target") or item.get("path") or ""
            print(f"  {item['action']:<10} {target}")
    print(
        _("{downloaded} downloaded, {copied} copied, {removed} removed, {unchanged} unchanged, "
          "{hidden} hidden, {failed} failed ({seconds:.1f} s, {requests} requests).").format(**result)
    )
    if result.get("moved"):
        from m3daemon.engine.wording import moved_sentence

        print(moved_sentence(result["moved"]))
    for err in result.get("errors", []):
        where = f"{err['path']}: " if err["path"] else ""
        print(_("Problem: {where}{message}").format(where=where, message=err["message"]), file=sys.stderr)
        if err["remedy"]:
            print(_("  What to do: {remedy}").format(remedy=err["remedy"]), file=sys.stderr)
    if _ok(result) and not result.get("dry_run"):
        print(_("The media folder {path} is up to date.").format(path=result.get("media_dir", "")))


def _confirm_held(result: dict[str, Any], args: argparse.Namespace) -> bool:
    """Changes a running meeting holds back: say so; on a terminal, ask whether to apply them now."""
    held = result.get("held_for_meeting") or []
    if not held or args.json or args.dry_run:
        return False
    until = datetime.fromisoformat(held[0]["until"]).astimezone()
    print(ngettext("A meeting is running: {n} change in its folder waits until it ends at {until}:",
                   "A meeting is running: {n} changes in its folder wait until it ends at {until}:",
                   len(held)).format(n=len(held), until=time_text(until)))
    for h in held:
        kind = _("replace") if h["change"] == "replace" else _("remove")
        print(f"  {kind:<8} {h['path']}")
    if not sys.stdin.isatty():
        print(_("To apply them now: m3daemon update --during-meeting"))
        return False
    answer = input(_("M³ is showing this folder. Apply the changes now anyway? [y/N] ")).strip().lower()
    return answer in (_("y"), _("yes"), "y", "yes")


def _ok(result: dict[str, Any]) -> bool:
    return not result.get("failed") and not result.get("held_deletions")


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


def _wait_for(client: Any, key: str, seq: int) -> dict[str, Any]:
    """The congregation's status once the daemon's sync ``seq`` has ended: the daemon answers
    when it ends (``/api/wait``); a daemon older than that is asked every 0.2 s."""
    import time

    from m3daemon.daemon.control import WAIT_MAX
    from m3daemon.errors import DaemonRequestError

    while True:
        try:
            answer = client.call("POST", "wait", {"config": key, "seq": seq, "timeout": WAIT_MAX},
                                 timeout=WAIT_MAX + 10)
        except DaemonRequestError as err:
            if err.status != 404:
                raise
            break
        if answer["done"]:
            return dict(answer["congregation"])
    while True:
        status = next(c for c in client.call("GET", "status")["congregations"] if c["config"] == key)
        if status["completed_seq"] >= seq:
            return dict(status)
        time.sleep(0.2)


def _through_daemon(client: Any, cfg: Any, args: argparse.Namespace) -> tuple[int, dict[str, Any] | None]:
    """The daemon runs the sync (never two at once); we wait for it and report its result
    (the exit code, and the sync's result when it ran)."""
    from m3daemon.errors import ErrorInfo

    key = str(cfg.path)
    body: dict[str, Any] = {"config": key}
    if args.during_meeting:
        body["during_meeting"] = True
    seq = client.call("POST", "update", body)["seq"][key]
    if not args.json:
        print(_("The running m3daemon is updating the media folders..."), file=sys.stderr)
    status = _wait_for(client, key, seq)
    if status["state"] in ("offline", "error") and status.get("last_error"):
        err = ErrorInfo.from_dict(status["last_error"])
        if args.json:
            print(json.dumps(failed_result(err, str(cfg.local.media_dir)), ensure_ascii=False, indent=2))
        else:
            print(_("Error: {message}").format(message=err.message), file=sys.stderr)
            if err.remedy:
                print(_("What to do: {remedy}").format(remedy=err.remedy), file=sys.stderr)
        return int(err.exit_code), None
    result = status.get("last_result") or {}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_summary(result)
    return int(ExitCode.OK if _ok(result) else ExitCode.PARTIAL), result
