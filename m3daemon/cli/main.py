"""The ``m3daemon`` command: argument parsing, logging, and errors turned into exit codes.

Sub-commands live in small modules that are imported only when used, so ``m3daemon update``
does not pay for the tray, the scheduler or the demo server.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from m3daemon import __version__
from m3daemon.errors import ExitCode, M3Error
from m3daemon.i18n import _, _l

# command -> (module, function, help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "setup": ("m3daemon.cli.setup_cmd", "add_parser", _l("connect to the congregation's WebDAV folder")),
    "invite": ("m3daemon.cli.invite_cmd", "add_parser", _l("coordinator: invite a new computer (file, code, QR)")),
    "history": ("m3daemon.cli.local_cmds", "add_history_parser", _l("what the last syncs changed on this computer")),
    "forget": ("m3daemon.cli.local_cmds", "add_forget_parser",
               _l("remove a congregation from this computer (its media stay unless asked)")),
    "update": ("m3daemon.cli.update_cmd", "add_parser", _l("update the media folders now")),
    "status": ("m3daemon.cli.info_cmds", "add_status_parser", _l("show the sync state")),
    "settings": ("m3daemon.cli.info_cmds", "add_settings_parser", _l("show or change M³ settings")),
    "providers": ("m3daemon.cli.info_cmds", "add_providers_parser", _l("list WebDAV provider presets")),
    "browse": ("m3daemon.cli.info_cmds", "add_browse_parser", _l("list folders on the server")),
    "demo": ("m3daemon.demo", "add_parser", _l("run a complete sync against a built-in local server")),
    "media": ("m3daemon.cli.coord_cmds", "add_media_parser", _l("coordinator: media of each meeting date")),
    "recurring": ("m3daemon.cli.coord_cmds", "add_recurring_parser", _l("coordinator: media for every meeting")),
    "background": ("m3daemon.cli.coord_cmds", "add_background_parser", _l("coordinator: the background image")),
    "run": ("m3daemon.cli.daemon_cmds", "add_run_parser", _l("run in the background: schedule, watch, tray")),
    "pause": ("m3daemon.cli.daemon_cmds", "add_control_parser", _l("pause scheduled syncs (kept across restarts)")),
    "resume": ("m3daemon.cli.daemon_cmds", "add_control_parser", _l("resume scheduled syncs")),
    "quit": ("m3daemon.cli.daemon_cmds", "add_control_parser", _l("stop the running daemon")),
    "logs": ("m3daemon.cli.daemon_cmds", "add_logs_parser", _l("show the daemon's log")),
    "dashboard": ("m3daemon.cli.dashboard_cmd", "add_parser", _l("open the dashboard in the browser")),
    "service": ("m3daemon.cli.service_cmd", "add_parser", _l("start m3daemon at login (install, uninstall, status)")),
    "server": ("m3daemon.cli.server_cmd", "add_parser", _l("run the congregation's own WebDAV server")),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m3daemon",
        description=_("Keeps this computer's meeting media folders in step with the congregation's WebDAV folder."),
    )
    parser.add_argument("--version", action="version", version=f"m3daemon {__version__}")
    parser.add_argument(
        "--config", metavar="FILE",
        help=_("configuration file (default: $M3DAEMON_CONFIG, else the user config folder)"),
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_("say more (twice for debug)"))
    parser.add_argument(
        "--lang", metavar="CODE",
        help=_("language of m3daemon's messages, for example fr or pt-BR (default: [congregation] language, "
               "then M³'s own language setting, then the system's)"),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Only the command given is built in full (its module imported): the others, and all of them
    # for `--help` or `--version`, need only their name and help line.
    wanted = command_in(argv)
    for name, (module, func, help_text) in COMMANDS.items():
        if name != wanted:
            sub.add_parser(name, help=str(help_text), add_help=False)
            continue
        mod = importlib.import_module(module)
        getattr(mod, func)(sub, name, str(help_text))
    return parser


def command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: its first word that is neither an option nor the value of
    ``--config`` or ``--lang`` (a configuration file called ``update`` is not the command)."""
    takes_value = {"--config", "--lang"}
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if verbose < 2 else
                                           "%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "urllib3", "wsgidav", "cheroot"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def report_error(err: M3Error) -> None:
    print(_("Error: {message}").format(message=err.message), file=sys.stderr)
    if err.remedy:
        print(_("What to do: {remedy}").format(remedy=err.remedy), file=sys.stderr)


def choose_cli_language(argv: Sequence[str]) -> str:
    """The language of this command, chosen before the parser is built (its help is translated).

    ``--lang`` wins; then the configuration named by ``--config`` or ``M3DAEMON_CONFIG`` (or the
    default one), read without contacting anything; a configuration that cannot be read falls back
    to the system's language (the command itself reports the problem).
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--lang")
    pre.add_argument("--config")
    known, _rest = pre.parse_known_args(list(argv))
    from m3daemon.i18n import choose_language

    logging.disable(logging.WARNING)  # the command itself reports the configuration's warnings, once
    try:
        from m3daemon.engine.language import language_for
        from m3daemon.settings.config import load_config_or_default, resolve_config_path

        cfg = load_config_or_default(resolve_config_path(known.config, os.environ))
        return language_for(cfg, explicit=known.lang)
    except (M3Error, OSError, ValueError):
        return choose_language(known.lang)
    finally:
        logging.disable(logging.NOTSET)


def _freeze_at_exit() -> None:
    """Spare the interpreter's collections at shutdown: after a sync they walk every object left,
    25-35 ms of a 200 MiB ``update`` here (curl takes 0.4 s for the whole file). Objects are
    still freed by their counts and the atexit handlers run (logging's flush among them); only
    cycles are left to the operating system, and every file a command writes is closed before."""
    gc.freeze()


# Commands that keep running (the daemon, the congregation's server) keep the collector as it comes.
LONG_RUNNING = frozenset({"run", "server"})
# A command that ends after its work collects the youngest objects after 50,000 new ones instead
# of 700: a no-op `update` of 2,000 files then spends 3 % fewer instructions (callgrind, 935 M
# against 906 M; the same as no collector at all). Only cycles wait longer to be freed, and a
# sync makes few.
ONE_SHOT_GC_THRESHOLD = 50_000


def main(argv: Sequence[str] | None = None) -> int:
    atexit.unregister(_freeze_at_exit)  # once, however often tests call main() in one process
    atexit.register(_freeze_at_exit)
    args_list = list(sys.argv[1:] if argv is None else argv)
    from m3daemon.i18n import set_language

    # JSON output is for scripts: it stays English whatever the language of the screens.
    set_language("en" if "--json" in args_list else choose_cli_language(args_list))
    from m3daemon.cli import argparse_i18n

    argparse_i18n.install()
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help()
        return ExitCode.USAGE
    setup_logging(args.verbose)
    thresholds = gc.get_threshold()
    if args.command not in LONG_RUNNING:
        gc.set_threshold(ONE_SHOT_GC_THRESHOLD, *thresholds[1:])
    try:
        result: int = args.run(args)
        return result
    except M3Error as err:
        report_error(err)
        if getattr(args, "json", False):
            print(json.dumps({"error": err.info().to_dict()}, ensure_ascii=False))
        return int(err.exit_code)
    except KeyboardInterrupt:
        print(_("Stopped."), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `m3daemon … | head`: the reader left; not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception as exc:
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(_("Error: something unexpected went wrong: {what}").format(what=f"{type(exc).__name__}: {exc}"),
              file=sys.stderr)
        print(_("What to do: try again; if it happens again, run the command with -vv and report the output."),
              file=sys.stderr)
        return int(ExitCode.PARTIAL)
    finally:
        gc.set_threshold(*thresholds)  # (a test's process, which calls main() often, keeps its own)


def config_path_from(args: argparse.Namespace) -> os.PathLike[str]:
    from m3daemon.settings.config import resolve_config_path

    return resolve_config_path(args.config, os.environ)
