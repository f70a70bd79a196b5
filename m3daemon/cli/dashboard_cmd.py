"""``m3daemon dashboard``: open the running daemon's dashboard in the default browser.

The daemon makes a login key on request, over its control API (whose token is in a file that only
this user can read); the key works once, within a minute. The browser gets it in a 0600 launch
page (:mod:`m3daemon.dashboard.launch`), so the key is never on its command line, where other
users of the computer could read it. ``--url`` prints ``http://127.0.0.1:PORT/login?key=…`` for a
browser started by hand (it too works once, within a minute).
"""

from __future__ import annotations

import argparse
import sys
import webbrowser
from pathlib import Path
from typing import Any

from m3daemon.errors import ExitCode
from m3daemon.i18n import _


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--url", action="store_true", help=_("only print a login address (it works once, within a minute)"))
    p.set_defaults(run=run)


def _any_daemon() -> Any:
    """The daemon of another configuration of this computer (``m3daemon run --all`` serves several)."""
    from m3daemon.daemon.control import ControlClient
    from m3daemon.settings.config import load_config_or_default
    from m3daemon.settings.registry import all_config_paths

    for path in all_config_paths():
        try:
            client = ControlClient.connect(load_config_or_default(path).state_dir)
        except Exception:  # noqa: BLE001 - a broken configuration has no daemon
            client = None
        if client is not None:
            return client
    return None


def run(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.daemon.control import ControlClient
    from m3daemon.settings.config import load_config_or_default

    cfg = load_config_or_default(Path(config_path_from(args)))
    client = ControlClient.connect(cfg.state_dir) or _any_daemon()
    if client is None:
        print(_("m3daemon is not running, so there is no dashboard."), file=sys.stderr)
        print(_("Start it with `m3daemon run` (or `m3daemon service install` to start it at every login), "
                "then run `m3daemon dashboard` again."), file=sys.stderr)
        return int(ExitCode.USAGE)
    def ask(page: bool) -> str | None:
        try:
            answer = client.call("POST", "dashboard", {"config": str(cfg.path), "page": page})
        except Exception:  # noqa: BLE001 - an older daemon without a dashboard
            return None
        found = answer.get("page" if page else "url") if isinstance(answer, dict) else None
        return str(found) if found else None

    try:
        address = ask(page=not args.url)
        if address is None:
            print(_("The running m3daemon has no dashboard (it listens beyond this computer, or is older)."),
                  file=sys.stderr)
            print(_("Restart it with `m3daemon quit`, then `m3daemon run`."), file=sys.stderr)
            return int(ExitCode.USAGE)
        if args.url:
            print(address)
            print(_("This address logs in once, within a minute; run `m3daemon dashboard --url` again for "
                    "a new one."), file=sys.stderr)
            return int(ExitCode.OK)
        if webbrowser.open(address):
            print(_("The dashboard is open in your browser."))
            return int(ExitCode.OK)
        url = ask(page=False)
    finally:
        client.close()
    print(_("No browser could be started. Open this address in your browser within a minute (it works once):"))
    print(url or address)
    return int(ExitCode.OK)
