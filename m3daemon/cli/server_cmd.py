"""``m3daemon server``: the congregation's own WebDAV server.

``init`` makes the server folder (and a CA), ``user`` manages the accounts, ``run`` serves, ``info``
shows what members need (address, CA fingerprint), ``cert`` re-issues the server certificate.
The work is done by :mod:`m3daemon.server`; this module parses, asks and prints.
"""

from __future__ import annotations

import argparse
import getpass
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from m3daemon.errors import ExitCode, UsageError
from m3daemon.i18n import _


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text + ". " + _(
            "Coordinators read and write; members only read. Start with `m3daemon server init DIR`."))
    ss = p.add_subparsers(dest="server_command", metavar="ACTION")

    init = ss.add_parser("init", help=_("create the server folder, a CA and a server certificate"),
                         description=_("Create the server folder DIR: the congregation folder (DIR/data), a "
                                       "certificate authority (DIR/ca.pem, for the members) and a server "
                                       "certificate, the settings (DIR/server.toml) and the account file."))
    init.add_argument("dir", metavar="DIR")
    init.add_argument("--host-name", action="append", default=[], metavar="NAME",
                      help=_("a name or IP address members use to reach the server (repeat it); localhost, "
                             "127.0.0.1, this computer's name and LAN address are always included"))
    init.add_argument("--cert", type=Path, metavar="FILE", help=_("use your own certificate chain (PEM)"))
    init.add_argument("--key", type=Path, metavar="FILE", help=_("the private key of --cert (PEM)"))
    init.add_argument("--ca", type=Path, metavar="FILE", help=_("with --cert: the CA members should pin"))
    init.add_argument("--port", type=int, help=_("port to listen on (default 8443)"))
    init.add_argument("--path", help=_("URL path of the congregation folder (default /)"))
    init.set_defaults(run=run_init)

    info = ss.add_parser("info", help=_("show the address, the CA fingerprint and the accounts"))
    info.add_argument("dir", metavar="DIR")
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=run_info)

    cert = ss.add_parser("cert", help=_("make a new server certificate from the folder's CA (e.g. new names)"))
    cert.add_argument("dir", metavar="DIR")
    cert.add_argument("--host-name", action="append", default=[], metavar="NAME",
                      help=_("a name or IP address to add (repeat it); the current names are kept"))
    cert.set_defaults(run=run_cert)

    user = ss.add_parser("user", help=_("manage accounts: add, rm, list, passwd, role"))
    us = user.add_subparsers(dest="user_command", metavar="ACTION")
    add = us.add_parser("add", help=_("add an account (the password is asked, or read from standard input)"))
    add.add_argument("dir", metavar="DIR")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=("coordinator", "member"),
                     help=_("coordinator: read and write; member: read only"))
    add.set_defaults(run=run_user_add)
    rm = us.add_parser("rm", help=_("remove an account"))
    rm.add_argument("dir", metavar="DIR")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(run=run_user_rm)
    ls = us.add_parser("list", help=_("list the accounts"))
    ls.add_argument("dir", metavar="DIR")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=run_user_list)
    pw = us.add_parser("passwd", help=_("change an account's password"))
    pw.add_argument("dir", metavar="DIR")
    pw.add_argument("name", metavar="NAME")
    pw.set_defaults(run=run_user_passwd)
    role = us.add_parser("role", help=_("change an account's role"))
    role.add_argument("dir", metavar="DIR")
    role.add_argument("name", metavar="NAME")
    role.add_argument("role", choices=("coordinator", "member"))
    role.set_defaults(run=run_user_role)
    user.set_defaults(run=_usage(user))

    run = ss.add_parser("run", help=_("serve the congregation folder over HTTPS (until stopped)"),
                        description=_("Serve DIR/data over HTTPS. By default only this computer can connect "
                                      "(127.0.0.1); give --host to serve the other computers."))
    run.add_argument("dir", metavar="DIR")
    run.add_argument("--host", help=_("address to listen on: 127.0.0.1 (default), this computer's LAN "
                                      "address, or 0.0.0.0 for every network"))
    run.add_argument("--port", type=int, help=_("port (default from server.toml: 8443)"))
    run.set_defaults(run=run_run)
    p.set_defaults(run=_usage(p))


def _usage(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return int(ExitCode.USAGE)
    return show


# --- init, info, cert ------------------------------------------------------------------------------


def run_init(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from m3daemon.server import ServerLayout, ServerSettings, init_server
    from m3daemon.server.settings import normalize_url_path

    settings = None
    if args.port is not None or args.path is not None:
        if args.port is not None and not 1 <= args.port <= 65535:
            raise UsageError(_("The port must be between 1 and 65535."))
        existing = ServerLayout(Path(args.dir).expanduser().absolute())
        base = existing.settings() if existing.settings_file.is_file() else ServerSettings()
        settings = replace(base, port=args.port if args.port is not None else base.port,
                           path=normalize_url_path(args.path) if args.path is not None else base.path)
    if args.ca is not None and args.cert is None:
        raise UsageError(_("--ca goes with --cert and --key."))
    result = init_server(Path(args.dir), args.host_name, cert=args.cert, key=args.key, ca=args.ca,
                         settings=settings)
    layout = result.layout
    s = layout.settings()
    if result.created:
        print(_("Server folder {path} is ready.").format(path=layout.root))
    else:
        print(_("Server folder {path} was already set up; nothing was replaced.").format(path=layout.root))
    print(_("  congregation folder: {path} (served at {url_path})").format(path=layout.data_dir, url_path=s.path))
    if result.names:
        print(_("  certificate names:   {names}").format(names=", ".join(result.names)))
    if result.fingerprint:
        print(_("  CA for the members:  {path}").format(path=layout.ca_file))
        print()
        print(_("CA fingerprint (SHA-256) - members compare it when `m3daemon setup` asks:"))
        print("  " + result.fingerprint)
    elif result.own_cert:
        print(_("  using your certificate {cert}; members need no CA file if a public CA issued it.").format(
            cert=s.cert))
    print()
    print(_("Next:"))
    print(f"  m3daemon server user add {_quoted(layout.root)} NAME --role coordinator")
    print(f"  m3daemon server user add {_quoted(layout.root)} NAME --role member")
    print(f"  m3daemon server run {_quoted(layout.root)} --host 0.0.0.0    " +
          _("(serve the LAN; without --host only this computer can connect)"))
    return int(ExitCode.OK)


def _quoted(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def run_info(args: argparse.Namespace) -> int:
    from m3daemon.server import UserStore, open_layout, server_running
    from m3daemon.server import tls as tlsmod

    layout = open_layout(args.dir)
    s = layout.settings()
    cert = s.cert_path(layout.root)
    names: list[str] = []
    days: float | None = None
    try:
        data = cert.read_bytes()
        names, days = tlsmod.cert_names(data), tlsmod.days_left(data)
    except (OSError, ValueError):
        pass
    accounts = UserStore(layout.users_file).accounts()
    info = {
        "folder": str(layout.root),
        "data": str(layout.data_dir),
        "listen": f"{s.host}:{s.port}",
        "url_path": s.path,
        "ca_file": str(layout.ca_file) if layout.ca_file.exists() else None,
        "ca_fingerprint_sha256": layout.ca_fingerprint(),
        "certificate": str(cert),
        "certificate_names": names,
        "certificate_days_left": int(days) if days is not None else None,
        "coordinators": sorted(a.name for a in accounts.values() if a.role.can_write),
        "members": sorted(a.name for a in accounts.values() if not a.role.can_write),
        "running": server_running(layout.root),
    }
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    for key, value in info.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key:<24} {shown if shown not in (None, '') else '-'}")
    return int(ExitCode.OK)


def run_cert(args: argparse.Namespace) -> int:
    from m3daemon.server import open_layout, reissue_server_cert

    layout = open_layout(args.dir)
    names = reissue_server_cert(layout, args.host_name, keep_existing=True)
    print(_("New server certificate for: {names}").format(names=", ".join(names)))
    print(_("The CA is unchanged: members need not do anything. Restart the server to use it."))
    return int(ExitCode.OK)


# --- accounts -------------------------------------------------------------------------------------


def read_new_password(name: str) -> str:
    """Asked twice in a terminal; otherwise the first line of standard input."""
    if sys.stdin is not None and sys.stdin.isatty():
        from m3daemon.server.users import check_password_policy

        for _attempt in range(3):  # a wrong answer is asked again on the spot, checked as typed
            first = getpass.getpass(_("New password for {name}: ").format(name=name))
            try:
                check_password_policy(first)
            except UsageError as err:
                print(err.message, err.remedy or "", file=sys.stderr)
                continue
            second = getpass.getpass(_("The same password again: "))
            if first == second:
                return first
            print(_("The two passwords differ; type them again."), file=sys.stderr)
        raise UsageError(_("No password was set."), _("Run the command again."))
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise UsageError(_("No password on standard input."),
                         _("Run the command in a terminal, or pipe the password into it."))
    return line.rstrip("\r\n")


def _store(args: argparse.Namespace) -> Any:
    from m3daemon.server import UserStore, open_layout

    return UserStore(open_layout(args.dir).users_file)


def run_user_add(args: argparse.Namespace) -> int:
    from m3daemon.server import Role
    from m3daemon.server.users import check_user_name

    store = _store(args)
    check_user_name(args.name)
    if store.get(args.name) is not None:
        raise UsageError(_("There is already an account {name!r}.").format(name=args.name),
                         _("Use `m3daemon server user passwd` to change its password."))
    store.add(args.name, Role(args.role), read_new_password(args.name))
    print(_("Added {name} ({role}).").format(name=args.name, role=_role_text(Role(args.role))))
    return int(ExitCode.OK)


def _role_text(role: Any) -> str:
    return _("coordinator: reads and writes") if role.can_write else _("member: reads only")


def run_user_rm(args: argparse.Namespace) -> int:
    _store(args).remove(args.name)
    print(_("Removed {name}. A running server refuses it from now on.").format(name=args.name))
    return int(ExitCode.OK)


def run_user_passwd(args: argparse.Namespace) -> int:
    store = _store(args)
    if store.get(args.name) is None:
        raise UsageError(_("There is no account {name!r}.").format(name=args.name),
                         _("`m3daemon server user list` shows the accounts."))
    store.set_password(args.name, read_new_password(args.name))
    print(_("Changed the password of {name}.").format(name=args.name))
    return int(ExitCode.OK)


def run_user_role(args: argparse.Namespace) -> int:
    from m3daemon.server import Role

    _store(args).set_role(args.name, Role(args.role))
    print(_("{name} is now a {role}.").format(name=args.name, role=_role_text(Role(args.role))))
    return int(ExitCode.OK)


def run_user_list(args: argparse.Namespace) -> int:
    accounts = sorted(_store(args).accounts().values(), key=lambda a: (not a.role.can_write, a.name))
    if args.json:
        print(json.dumps([{"name": a.name, "role": a.role.value, "created": a.created, "changed": a.changed}
                          for a in accounts], indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    if not accounts:
        print(_("No accounts yet. Add one with `m3daemon server user add DIR NAME --role coordinator`."))
    for a in accounts:
        print(f"{a.name:<24} {a.role.value:<12} {a.changed}")
    return int(ExitCode.OK)


# --- run ------------------------------------------------------------------------------------------


def run_run(args: argparse.Namespace) -> int:
    from m3daemon.daemon import sdnotify
    from m3daemon.server import ServerHandle, UserStore, exposure_warning

    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(_("The port must be between 1 and 65535."))
    handle = ServerHandle(Path(args.dir), host=args.host, port=args.port)
    warning = exposure_warning(handle.settings.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if not UserStore(handle.layout.users_file).accounts():
        print(_("No accounts yet: nobody can log in. Add one with `m3daemon server user add`."),
              file=sys.stderr, flush=True)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_a: stop.set()) if hasattr(signal, "SIGTERM") else None
    handle.start()
    try:
        print(_("Serving {data} at {url} (listening on {host} port {port}).").format(
            data=handle.data_dir, url=handle.folder_url, host=handle.address[0], port=handle.port), flush=True)
        fp = handle.layout.ca_fingerprint()
        if fp:
            print(_("CA fingerprint (SHA-256): {fp}").format(fp=fp), flush=True)
        print(_("Press Ctrl+C to stop."), flush=True)
        sdnotify.status(f"serving {handle.folder_url}")
        sdnotify.ready()
        interval = sdnotify.watchdog_interval()
        tick = min(interval, 1.0) if interval else 1.0
        while not stop.wait(tick):
            if not handle.running:
                print(_("The server stopped unexpectedly."), file=sys.stderr)
                return int(ExitCode.PARTIAL)
            if interval:
                sdnotify.watchdog()
    except KeyboardInterrupt:
        pass
    finally:
        sdnotify.stopping()
        handle.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(_("Stopped."), flush=True)
    return int(ExitCode.OK)
