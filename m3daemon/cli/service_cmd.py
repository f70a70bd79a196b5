"""``m3daemon service install | uninstall | status``: start the daemon at login.

The work is done by :mod:`m3daemon.service`; this module only parses, prints and picks the
engine's "is a daemon running?" probe when the engine offers one.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any, cast

from m3daemon.errors import ExitCode
from m3daemon.i18n import _


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text + ". " + _(
            "One daemon serves every congregation configured on this computer (`m3daemon run --all`)."))
    ss = p.add_subparsers(dest="service_command", metavar="ACTION")
    inst = ss.add_parser("install", help=_("start m3daemon at login (running it again updates the entry)"))
    inst.add_argument("--dry-run", action="store_true", help=_("show what would be done, change nothing"))
    inst.add_argument("--no-start", action="store_true", help=_("do not start it now, only at the next login"))
    inst.set_defaults(run=run_install)

    uninst = ss.add_parser("uninstall", help=_("stop starting m3daemon at login and remove the entry"))
    uninst.add_argument("--dry-run", action="store_true", help=_("show what would be done, change nothing"))
    uninst.set_defaults(run=run_uninstall)
    st = ss.add_parser("status", help=_("whether the entry is installed and the daemon is running"))
    st.add_argument("--json", action="store_true")
    st.set_defaults(run=run_status)
    for sp in (inst, uninst, st):
        sp.add_argument("--server", metavar="DIR",
                        help=_("the congregation's own server (`m3daemon server run DIR`) instead of the daemon"))
    p.set_defaults(run=run_status, json=False, server=None)


def daemon_probe() -> Callable[[], bool] | None:
    """The engine's ``is_daemon_running()`` if it has one (XDG autostart and Windows cannot ask a
    service manager); ``None`` makes "running" unknown instead of guessed."""
    for module in ("m3daemon.daemon.control", "m3daemon.daemon"):
        try:
            probe = getattr(importlib.import_module(module), "is_daemon_running", None)
        except ImportError:
            continue
        if callable(probe):
            return cast(Callable[[], bool], probe)
    return None


def _configured() -> bool:
    from m3daemon.settings.registry import all_config_paths

    return bool(all_config_paths())


def _host() -> Any:
    from m3daemon.service import Host

    return Host.current(is_daemon_running=daemon_probe())


def _target(args: argparse.Namespace) -> tuple[Any, Any]:
    """The service spec and host for the daemon, or for the server in ``--server DIR``."""
    from m3daemon import service
    from m3daemon.service import Host

    if getattr(args, "server", None):
        from m3daemon.server import open_layout, server_running, server_spec

        root = open_layout(args.server).root
        return server_spec(root), Host.current(is_daemon_running=lambda: server_running(root))
    return service.daemon_spec(), _host()


def _print_plan(plan: Any, dry_run: bool) -> None:
    from m3daemon.service import describe
    from m3daemon.service.core import WriteFile

    if dry_run:
        print(_("Would do ({kind}):").format(kind=plan.kind))
    for step in plan.steps:
        print(("  " if dry_run else "") + describe(step))
        if dry_run and isinstance(step, WriteFile):
            for line in step.content.splitlines():
                print("    | " + line)
    for note in plan.notes:
        print(note)


def run_install(args: argparse.Namespace) -> int:
    from m3daemon import service

    spec, host = _target(args)
    start = not args.no_start
    if not args.server and not _configured():
        # `run --all` would stop at once ("no congregation"), and a service manager that waits for
        # it to start would report a failed install: install now, start after setup
        print(_("No congregation is set up on this computer yet: the daemon is not started now. "
                "Run `m3daemon setup`; it starts at the next login (or run `m3daemon service install` "
                "again after setup)."), file=sys.stderr)
        start = False
    if args.dry_run:
        _print_plan(service.plan_install(spec, host, start=start), dry_run=True)
        return int(ExitCode.OK)
    plan = service.install(spec, host, start=start)
    _print_plan(plan, dry_run=False)
    print(_("{name} starts at login ({kind}).").format(name=spec.name, kind=plan.kind))
    if args.server and sys.platform.startswith("linux"):
        print(_("To start it at boot rather than at login, run: loginctl enable-linger $USER"))
    return int(ExitCode.OK)


def run_uninstall(args: argparse.Namespace) -> int:
    from m3daemon import service

    spec, host = _target(args)
    if args.dry_run:
        _print_plan(service.plan_uninstall(spec, host), dry_run=True)
        return int(ExitCode.OK)
    plan = service.uninstall(spec, host)
    _print_plan(plan, dry_run=False)
    if plan.steps:
        print(_("m3daemon no longer starts at login."))
    else:
        print(_("Nothing to remove: m3daemon was not set to start at login."))
    return int(ExitCode.OK)


def _yes_no(value: bool | None) -> str:
    return _("unknown") if value is None else _("yes") if value else _("no")


def run_status(args: argparse.Namespace) -> int:
    from m3daemon import service

    st = service.status(*_target(args))
    if getattr(args, "json", False):
        print(json.dumps(st.to_json(), indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    print(_("Start at login: {kind}").format(kind=st.kind))
    print(_("Installed:      {value}").format(value=_yes_no(st.installed)))
    print(_("Running:        {value}").format(value=_yes_no(st.running)))
    if st.detail:
        print(_("State:          {value}").format(value=st.detail))
    for path in st.files:
        print(_("Entry:          {path}").format(path=path))
    if st.installed and st.up_to_date is False:
        print(_("The entry is out of date (m3daemon moved or was updated). Run `m3daemon service install`."))
    if not st.installed:
        print(_("Run `m3daemon service install` to start m3daemon at login."))
    return int(ExitCode.OK)
