"""``m3daemon setup``: connect once, test the connection, store the password in the keyring.

With a terminal it asks, and never dead-ends: an answer that is wrong (an address that is not
https://, a server that does not answer, a wrong password, a folder that is not there or one level
off) is asked again on the spot, with the other answers kept, and a wrong folder opens a folder
browser on the connection being typed. Without a terminal it takes flags and stops at the first
problem. Either way it tests the connection before saving and says exactly what is wrong.

``--invite FILE|CODE`` takes the address, folder, name, layout and CA fingerprint from the
coordinator's invitation (:mod:`m3daemon.settings.invite`) and asks only for the password.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m3daemon.errors import (
    AuthError,
    ConfigError,
    ExitCode,
    FolderNotFoundError,
    M3Error,
    NotWebDAVError,
    ServerUnreachableError,
    TLSError,
    UsageError,
)
from m3daemon.i18n import _

YES = ("y", "yes")


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--invite", metavar="FILE|CODE",
                   help=_("set up from the coordinator's invitation (an .m3invite file or its code)"))
    p.add_argument("--provider", help=_("a preset from `m3daemon providers` (fills the address and folder)"))
    p.add_argument("--url", help=_("server address, https://host[:port]"))
    p.add_argument("--username")
    p.add_argument("--folder", help=_("congregation sync folder: an absolute path on the server"))
    p.add_argument("--ca-file", help=_("CA certificate (PEM) of a self-hosted server"))
    p.add_argument("--ca-fingerprint", metavar="SHA256",
                   help=_("pin the CA that a self-hosted server presents, if it has this fingerprint "
                          "(as `m3daemon server init` printed it)"))
    p.add_argument("--weekday-language", metavar="LANG",
                   help=_("language of weekday names in date folder names such as '06-12-2026 - dimanche' "
                          "(app.localAppLang; default: the language of the server's folders)"))
    p.add_argument("--media-dir", help=_("local media folder (M³'s folder to watch)"))
    p.add_argument("--layout", choices=("watch", "classic"))
    p.add_argument("--days-ahead", type=int)
    p.add_argument("--name", help=_("the congregation's name (shown in the tray and the dashboard)"))
    p.add_argument("--password-stdin", action="store_true", help=_("read the password from standard input"))
    p.add_argument("--no-test", action="store_true", help=_("save without testing the connection"))
    p.add_argument("--allow-insecure-loopback", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run)


@dataclass
class Answers:
    """What setup has been told so far; a wrong one is replaced, the others stay."""

    url: str | None = None
    username: str | None = None
    folder: str | None = None
    name: str | None = None
    media_dir: str | None = None
    layout: str | None = None
    ca_file: str | None = None
    ca_fingerprint: str | None = None
    password: str | None = None
    weekday_language: str | None = None


def run(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.settings import config as cfgmod
    from m3daemon.settings.providers import get_provider

    path = Path(config_path_from(args))
    current = cfgmod.load_config_or_default(path)
    interactive = sys.stdin.isatty() and not args.password_stdin
    provider = get_provider(args.provider) if args.provider else None
    conn = current.connection
    a = Answers(
        url=args.url or (provider.url if provider and not provider.needs_host else None) or (conn.url if conn else None),
        username=args.username or (conn.username if conn else None),
        folder=args.folder,
        name=args.name or (current.name if path.exists() and current.name != path.stem else None),
        media_dir=str(Path(args.media_dir).expanduser().resolve()) if args.media_dir else str(current.local.media_dir),
        layout=args.layout,
        # A path typed on the command line is relative to where the person is, not to the config file.
        ca_file=str(Path(args.ca_file).expanduser().resolve()) if args.ca_file else (
            str(conn.ca_file) if conn and conn.ca_file else None),
        ca_fingerprint=args.ca_fingerprint,
    )
    invitation = None
    if args.invite:
        from m3daemon.settings.invite import read_invitation

        invitation = read_invitation(args.invite)
        print(_("Invitation to {name}: {url}{folder}").format(name=invitation.name, url=invitation.url,
                                                             folder=invitation.folder))
        a.url, a.folder, a.name = invitation.url, invitation.folder, args.name or invitation.name
        a.layout = args.layout or invitation.layout
        a.username = args.username or invitation.username or a.username
        a.password = invitation.password
        if invitation.ca_sha256 and not args.ca_file:
            a.ca_file, a.ca_fingerprint = None, invitation.ca_sha256
    elif provider is not None and a.folder is None:
        a.folder = None  # filled from the preset once the user name is known
    if a.folder is None and conn is not None and provider is None:
        a.folder = conn.folder

    if interactive:
        return _interactive(args, path, current, a, provider, invitation is not None)
    return _unattended(args, path, current, a, provider)


# --- without a terminal: flags, first problem stops --------------------------------------------


def _unattended(args: argparse.Namespace, path: Path, current: Any, a: Answers, provider: Any) -> int:
    from m3daemon.engine.connection import check_connection

    if a.folder is None and provider is not None:
        a.folder = provider.folder_for(a.username or "")
    if not a.url or not a.username or not a.folder:
        raise UsageError(
            _("The server address, user name and folder are all needed."),
            _("Give --url, --username and --folder (or run setup in a terminal to be asked)."),
        )
    if a.ca_file is None and a.ca_fingerprint:
        a.ca_file = _pin(a.url, a.ca_fingerprint)
    new = _config(args, path, current, a)
    if a.password is None and args.password_stdin:
        a.password = sys.stdin.readline().rstrip("\r\n") or None
    password = a.password or _stored_password(new)
    if not password:
        raise UsageError(_("No password was given."), _("Give it with --password-stdin or run setup in a terminal."))
    if not args.no_test:
        print(_("Testing the connection to {url}{folder} ...").format(url=a.url, folder=a.folder))
        try:
            summary = check_connection(new, password)
        except M3Error as err:
            _report(err)
            print(_("Nothing was saved."), file=sys.stderr)
            return int(err.exit_code)
        print(summary)
        if not args.weekday_language:
            new = _weekday_language(args, path, current, a, new, password, interactive=False)
    return _save(new, password)


# --- in a terminal: ask, check each answer, ask again ------------------------------------------


def _interactive(args: argparse.Namespace, path: Path, current: Any, a: Answers, provider: Any,
                 invited: bool) -> int:
    from m3daemon.engine.connection import check_connection, level_hint

    if not invited:
        if provider is None and not args.url:
            provider = _pick_provider()
        if provider is not None and provider.note:
            print(provider.note)
        a.url = _ask_url(a.url, provider, args)
        a.username = _ask_needed(_("User name"), a.username)
        if a.folder is None and provider is not None:
            a.folder = provider.folder_for(a.username)
        a.folder = _ask_needed(_("Congregation sync folder on the server"), a.folder)
        a.name = _ask_needed(_("The congregation's name (shown in the tray and the dashboard)"), a.name)
        a.media_dir = _ask(_("Local media folder (M³'s Folder to Watch)"), a.media_dir) or a.media_dir
    else:
        if not a.username:
            a.username = _ask_needed(_("User name"), None)
        print(_("Media folder on this computer: {dir}").format(dir=a.media_dir))
    if a.password is None:
        a.password = _ask_password()
    if a.ca_file is None and a.ca_fingerprint:
        a.ca_file = _pin(a.url or "", a.ca_fingerprint)
    for _attempt in range(12):
        try:
            new = _config(args, path, current, a)
        except ConfigError as err:  # an address or folder the file would refuse
            _report(err)
            a.url = _ask_url(None, provider, args)
            continue
        if args.no_test:
            break
        print(_("Testing the connection to {url}{folder} ...").format(url=a.url, folder=a.folder))
        try:
            summary = check_connection(new, a.password)
        except TLSError as err:
            if a.ca_file is None:
                pinned = _pin(a.url or "", a.ca_fingerprint)  # a self-hosted server: pin its CA, one question
                if pinned is not None:
                    a.ca_file = pinned
                    continue
            _report(err)
            a.url = _ask_url(a.url, provider, args)
            continue
        except (ServerUnreachableError, NotWebDAVError) as err:
            _report(err)
            a.url = _ask_url(a.url, provider, args)
            continue
        except AuthError as err:
            _report(err)
            a.username = _ask_needed(_("User name"), a.username)
            a.password = _ask_password()
            continue
        except FolderNotFoundError as err:
            _report(err)
            a.folder = _browse_for_folder(new, a.password, a.folder or "/") or _ask_needed(
                _("Congregation sync folder on the server"), None)
            continue
        except M3Error as err:
            _report(err)
            print(_("Nothing was saved."), file=sys.stderr)
            return int(err.exit_code)
        print(summary)
        try:
            hint = level_hint(new, a.password)
        except M3Error:
            hint = None
        if hint is not None:
            print(_("Note: {reason}").format(reason=hint.reason))
            if _yes(_("Use {folder} instead? [Y/n] ").format(folder=hint.suggested), default=True):
                a.folder = hint.suggested
                continue
        if not args.weekday_language:
            new = _weekday_language(args, path, current, a, new, a.password, interactive=not invited)
        break
    else:
        print(_("Nothing was saved."), file=sys.stderr)
        return int(ExitCode.USAGE)
    return _save(new, a.password)


def _ask_url(default: str | None, provider: Any, args: argparse.Namespace) -> str:
    """The address, checked as typed: https:// only, a real host; a preset's own server is filled in."""
    from m3daemon.settings.urls import check_address

    while True:
        answer = _ask_needed(_("Server address"), default)
        try:
            if provider is not None and provider.needs_host and "://" not in answer:
                answer = provider.url_for(answer)
            return check_address(answer, allow_loopback=bool(args.allow_insecure_loopback))
        except M3Error as err:
            _report(err)
            default = None


def _browse_for_folder(cfg: Any, password: str, start: str) -> str | None:
    """A folder browser in the terminal, on the connection being set up (nothing saved yet)."""
    from m3daemon.engine.connection import browse, parent_of

    path: str | None = start
    while path is not None:
        try:
            view = browse(cfg, password, path)
        except FolderNotFoundError:
            path = parent_of(path)
            continue
        except M3Error as err:
            _report(err)
            return None
        print(_("Folders in {path}:").format(path=view.path))
        for i, name in enumerate(view.folders, 1):
            print(f"  {i}. {name}")
        if not view.folders:
            print("  " + _("(no folders)"))
        answer = input(_("Number to open, .. to go up, Enter to choose {path}: ").format(path=view.path)).strip()
        if not answer:
            return view.path
        if answer == "..":
            path = view.parent or view.path
        elif answer.isdigit() and 1 <= int(answer) <= len(view.folders):
            path = view.child(view.folders[int(answer) - 1])
        else:
            print(_("Type one of the numbers, .. or nothing."))
            path = view.path
    return None


# --- shared steps -------------------------------------------------------------------------------


def _config(args: argparse.Namespace, path: Path, current: Any, a: Answers) -> Any:
    from m3daemon.settings import config as cfgmod

    doc = cfgmod.config_to_dict(current)
    doc["connection"] = {k: v for k, v in {
        "url": a.url, "username": a.username, "folder": a.folder, "ca_file": a.ca_file,
        "allow_insecure_loopback": True if args.allow_insecure_loopback else None,
    }.items() if v is not None}
    doc.setdefault("local", {})["media_dir"] = a.media_dir
    if a.layout:
        doc["local"]["layout"] = a.layout
    if args.days_ahead is not None:
        doc["local"]["days_ahead"] = args.days_ahead
    if a.name:
        doc.setdefault("congregation", {})["name"] = a.name
    lang = a.weekday_language or args.weekday_language
    if lang:
        doc.setdefault("prefs", {})["app.localAppLang"] = lang
    return cfgmod.config_from_document(doc, path)


def _weekday_language(args: argparse.Namespace, path: Path, current: Any, a: Answers, new: Any, password: str,
                      *, interactive: bool) -> Any:
    """Read ``app.localAppLang`` from the server's date folder names, or ask when none tells."""
    from m3daemon.engine.connection import server_weekday_language

    lang = server_weekday_language(new, password)
    if lang is None and interactive:
        lang = _ask(_("Language of weekday names in folder names (en, fr, de, es …)"),
                    str(new.prefs.get("app.localAppLang") or "en"))
    elif lang is not None:
        print(_("Weekday names in folder names: {lang} (as in the server's date folders).").format(lang=lang))
    if not lang or lang == new.prefs.get("app.localAppLang"):
        return new
    a.weekday_language = lang
    return _config(args, path, current, a)


def _save(new: Any, password: str) -> int:
    from m3daemon.engine.connection import watch_folder_advice
    from m3daemon.settings import config as cfgmod
    from m3daemon.settings import registry
    from m3daemon.settings.credentials import StoredWhere, file_storage_notice, store_password

    registry.check_media_dir_unique(new)
    cfgmod.save_config(new)
    registry.register_config(new)
    where = store_password(new.connection, password)
    print(_("Saved {path}.").format(path=new.path))
    if where is StoredWhere.FILE:
        print(file_storage_notice(), file=sys.stderr)
    print(_("Next: run `m3daemon update` (or `m3daemon service install` to keep it updated)."))
    print(watch_folder_advice(new))
    return int(ExitCode.OK)


def _stored_password(new: Any) -> str | None:
    from m3daemon.settings.credentials import get_password

    return get_password(new.connection)


def _pin(url: str, expected: str | None) -> str | None:
    """Show the CA a self-hosted server presents and pin it when the person (or the given
    fingerprint) confirms it."""
    from m3daemon.settings.pinning import offer_to_pin

    saved = offer_to_pin(url, expected=expected)
    return str(saved) if saved is not None else None


def _report(err: M3Error) -> None:
    from m3daemon.cli.main import report_error

    report_error(err)


def _ask_password() -> str:
    while True:
        typed = getpass.getpass(_("Password (app password for Box and Koofr): "))
        if typed:
            return typed
        print(_("The password is needed to test the connection."), file=sys.stderr)


def _ask(question: str, default: str | None) -> str | None:
    suffix = f" [{default}]" if default else ""
    answer = input(f"{question}{suffix}: ").strip()
    return answer or default


def _ask_needed(question: str, default: str | None) -> str:
    while True:
        answer = _ask(question, default)
        if answer:
            return answer
        print(_("This is needed."), file=sys.stderr)


def _yes(question: str, *, default: bool) -> bool:
    answer = input(question).strip().lower()
    if not answer:
        return default
    return answer in (*YES, _("y"), _("yes"))


def _pick_provider() -> Any:
    from m3daemon.settings.providers import PROVIDERS

    for i, p in enumerate(PROVIDERS, 1):
        print(f"  {i}. {p.name}")
    while True:
        choice = input(_("Provider (number, or Enter to type the address yourself): ")).strip()
        if not choice:
            return None
        if choice.isdigit() and 1 <= int(choice) <= len(PROVIDERS):
            return PROVIDERS[int(choice) - 1]
        print(_("Type a number from 1 to {n}, or nothing.").format(n=len(PROVIDERS)), file=sys.stderr)
