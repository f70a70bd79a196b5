"""``run``, ``pause``, ``resume``, ``quit`` and ``logs``: the daemon and how to steer it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from m3daemon.errors import ExitCode, UsageError
from m3daemon.i18n import _


def add_run_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--all", action="store_true", help=_("serve every congregation configured on this computer"))
    p.add_argument("--no-tray", action="store_true", help=_("run without a tray icon"))
    p.add_argument("--host", default="127.0.0.1", help=_("address of the control port (default: loopback only)"))
    p.add_argument("--port", type=int, default=0, help=_("control port (default: any free port)"))
    p.set_defaults(run=run_daemon)


def add_control_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(run=run_control, action=name)


def add_logs_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("-f", "--follow", action="store_true", help=_("keep showing new lines"))
    p.add_argument("-n", "--lines", type=int, default=50)
    p.set_defaults(run=run_logs)


def selected_configs(args: argparse.Namespace) -> list[Any]:
    from m3daemon.cli.main import config_path_from
    from m3daemon.settings.config import load_config
    from m3daemon.settings.registry import all_config_paths

    paths = all_config_paths() if args.all else [Path(config_path_from(args))]
    configs = []
    for path in paths:
        if not path.exists():
            continue  # not set up yet: see below
        cfg = load_config(path)
        if cfg.connection is not None:
            configs.append(cfg)
    if not configs:
        # Nothing set up yet: run anyway, so that the dashboard can set up the connection. Nothing
        # is contacted and nothing is written until it is.
        from m3daemon.settings.config import load_config_or_default

        configs.append(load_config_or_default(paths[0] if paths else Path(config_path_from(args))))
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise UsageError(_("Two configurations have the same congregation name."),
                         _("Give each a different [congregation] name so the tray can tell them apart."))
    return configs


def run_daemon(args: argparse.Namespace) -> int:
    from m3daemon.daemon.app import Daemon
    from m3daemon.daemon.logs import setup_daemon_logging
    from m3daemon.settings.registry import check_media_dir_unique

    setup_daemon_logging(args.verbose)
    configs = selected_configs(args)
    if not args.lang and configs:
        # The tray and notifications speak the first congregation's language (one icon for all);
        # each dashboard page speaks its own congregation's.
        from m3daemon.engine.language import language_for
        from m3daemon.i18n import set_language

        set_language(language_for(configs[0]))
    for cfg in configs:
        check_media_dir_unique(cfg)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print(_("Warning: the control port listens on {host}, beyond this computer.").format(host=args.host),
              file=sys.stderr)
    daemon = Daemon(configs, no_tray=args.no_tray, host=args.host, port=args.port)
    stop = daemon.stop_event

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    daemon.start()
    try:
        daemon.wait()
    finally:
        daemon.shutdown()
    return int(ExitCode.OK)


def control_client(args: argparse.Namespace) -> Any:
    """The running daemon for this configuration, or None."""
    from m3daemon.cli.main import config_path_from
    from m3daemon.daemon.control import ControlClient
    from m3daemon.settings.config import load_config_or_default

    cfg = load_config_or_default(Path(config_path_from(args)))
    return ControlClient.connect(cfg.state_dir), cfg


def run_control(args: argparse.Namespace) -> int:
    client, cfg = control_client(args)
    if client is None:
        if args.action in ("pause", "resume"):
            from m3daemon.daemon.runner import write_paused

            write_paused(cfg.state_dir, args.action == "pause")
            print(_("m3daemon is not running; it will start {state}.").format(
                state=_("paused") if args.action == "pause" else _("normally")))
            return int(ExitCode.OK)
        print(_("m3daemon is not running."))
        return int(ExitCode.OK)
    try:
        body = {} if args.action == "quit" else {"config": str(cfg.path)}
        client.call("POST", args.action, body)
    finally:
        client.close()
    print({"pause": _("Paused."), "resume": _("Resumed."), "quit": _("m3daemon is stopping.")}[args.action])
    return int(ExitCode.OK)


def run_logs(args: argparse.Namespace) -> int:
    from m3daemon.daemon.logs import follow, log_file, tail

    lines = tail(args.lines)
    if not lines and not args.follow:
        print(_("No log yet at {path}.").format(path=log_file()))
    for line in lines:
        sys.stdout.write(line)
    if args.follow:
        sys.stdout.flush()
        try:
            for line in follow():
                sys.stdout.write(line)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
    return int(ExitCode.OK)
