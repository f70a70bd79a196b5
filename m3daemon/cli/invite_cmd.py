"""``m3daemon invite create``: the coordinator hands every new computer the same connection.

The invitation is made from this computer's own configuration (which works: it was tested when it
was saved), so it carries exactly the address, folder, name, layout and pinned CA that this
computer uses. ``setup --invite`` reads it on the new computer.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from m3daemon.errors import ExitCode, UsageError
from m3daemon.i18n import _


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    ss = p.add_subparsers(dest="invite_command", metavar="ACTION", required=True)
    create = ss.add_parser("create", help=_("make an invitation (a file, a text code and a QR code)"))
    create.add_argument("--username", help=_("the account the new computer signs in with (optional)"))
    create.add_argument("--include-password", action="store_true",
                        help=_("also put that account's password into the invitation (anyone who has the "
                               "invitation can then sign in: hand it over in person)"))
    create.add_argument("--password-stdin", action="store_true", help=_("read that password from standard input"))
    create.add_argument("--out", metavar="FILE",
                        help=_("where to write the invitation file (default: <congregation>.m3invite here)"))
    create.add_argument("--qr", metavar="FILE.png|FILE.svg", help=_("also write the QR code as an image"))
    create.add_argument("--no-terminal-qr", action="store_true", help=_("do not print the QR code"))
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=run_create)
    show = ss.add_parser("show", help=_("show what an invitation holds (a file or a code)"))
    show.add_argument("invitation", metavar="FILE|CODE")
    show.set_defaults(run=run_show)


def run_create(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.local.paths import write_private_file
    from m3daemon.settings.config import load_config
    from m3daemon.settings.invite import FILE_SUFFIX, invitation_for, qr_code

    cfg = load_config(Path(config_path_from(args)))
    password = None
    if args.include_password:
        if not args.username:
            raise UsageError(_("A password can only go with a user name."), _("Give --username too."))
        print(_("Warning: the invitation will hold the password of {user}. Anyone who gets it can sign in "
                "as {user}: hand it over in person and delete it afterwards.").format(user=args.username),
              file=sys.stderr)
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(_("Password of {user}: ").format(user=args.username))
        if not password:
            raise UsageError(_("No password was given."), _("Leave out --include-password to invite without one."))
    invitation = invitation_for(cfg, args.username, password)
    code = invitation.code()
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in cfg.name).strip("-") or "congregation"
    out = Path(args.out).expanduser() if args.out else Path.cwd() / f"{safe}{FILE_SUFFIX}"
    # 0600: an invitation names the server and may hold a password.
    write_private_file(out, invitation.file_text().encode("utf-8"))
    qr = qr_code(code)
    if args.qr:
        qr.save(str(Path(args.qr).expanduser()), scale=6, border=4)
    if args.json:
        print(json.dumps({"code": code, "file": str(out), "qr": args.qr, **invitation.to_document(),
                          "password": bool(password)}, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    print(_("Invitation to {name} written to {path}.").format(name=cfg.name, path=out))
    print(_("On the new computer: `m3daemon setup --invite {file}`, or paste this code on the dashboard's "
            "Connection page:").format(file=out.name))
    print()
    print(code)
    print()
    if not args.no_terminal_qr and sys.stdout.isatty():
        qr.terminal(compact=True)
    if args.qr:
        print(_("QR code: {path}").format(path=args.qr))
    if password is None:
        print(_("It holds no password: the new computer asks for it."))
    return int(ExitCode.OK)


def run_show(args: argparse.Namespace) -> int:
    from m3daemon.settings.invite import read_invitation

    inv = read_invitation(args.invitation)
    rows = [(_("Congregation"), inv.name), (_("Server address"), inv.url), (_("Congregation sync folder"), inv.folder),
            (_("Layout"), inv.layout), (_("Certificate authority (SHA-256)"), inv.ca_sha256 or _("public")),
            (_("User name"), inv.username or _("asked")),
            (_("Password"), _("included") if inv.password else _("asked"))]
    width = max(len(k) for k, _v in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return int(ExitCode.OK)
