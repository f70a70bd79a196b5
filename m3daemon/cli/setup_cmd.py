"""``m3daemon setup``: connect once, test the connection, store the password in the keyring.

With a terminal it asks; without one it takes flags. Either way it tests the connection before
saving and says exactly what is wrong.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from m3daemon.errors import ExitCode, M3Error, TLSError, UsageError
from m3daemon.i18n import _


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--provider", help=_("a preset from `m3daemon providers` (fills the address and folder)"))
    p.add_argument("--url", help=_("server address, https://host[:port]"))
    p.add_argument("--username")
    p.add_argument("--folder", help=_("congregation sync folder: an absolute path on the server"))
    p.add_argument("--ca-file", help=_("CA certificate (PEM) of a self-hosted server"))
    p.add_argument("--ca-fingerprint", metavar="SHA256",
                   help=_("pin the CA that a self-hosted server presents, if it has this fingerprint "
                          "(as `m3daemon server init` printed it)"))
    p.add_argument("--media-dir", help=_("local media folder (M³'s folder to watch)"))
    p.add_argument("--layout", choices=("watch", "classic"))
    p.add_argument("--days-ahead", type=int)
    p.add_argument("--name", help=_("a name for this congregation (shown in the tray and status)"))
    p.add_argument("--weekday-language", metavar="LANG",
                   help=_("language of weekday names in date folder names such as '06-12-2026 - dimanche' "
                          "(app.localAppLang; default: the language of the server's folders)"))
    p.add_argument("--password-stdin", action="store_true", help=_("read the password from standard input"))
    p.add_argument("--no-test", action="store_true", help=_("save without testing the connection"))
    p.add_argument("--allow-insecure-loopback", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from m3daemon.cli.main import config_path_from
    from m3daemon.engine.connection import check_connection
    from m3daemon.settings import config as cfgmod
    from m3daemon.settings import registry
    from m3daemon.settings.credentials import StoredWhere, file_storage_notice, get_password, store_password
    from m3daemon.settings.providers import get_provider

    path = Path(config_path_from(args))
    current = cfgmod.load_config_or_default(path)
    interactive = sys.stdin.isatty() and not args.password_stdin
    provider = get_provider(args.provider) if args.provider else None
    if interactive and provider is None and not args.url:
        provider = _pick_provider()

    conn = current.connection
    url = args.url or (provider.url if provider and "<" not in provider.url else None) or (conn.url if conn else None)
    username = args.username or (conn.username if conn else None)
    if interactive:
        url = _ask(_("Server address"), url)
        username = _ask(_("User name"), username)
    folder_default = provider.folder_for(username or "") if provider else (conn.folder if conn else None)
    folder = args.folder or folder_default
    if interactive:
        if provider and provider.note:
            print(provider.note)
        folder = _ask(_("Congregation sync folder on the server"), folder)
    if not url or not username or not folder:
        raise UsageError(
            _("The server address, user name and folder are all needed."),
            _("Give --url, --username and --folder (or run setup in a terminal to be asked)."),
        )
    # A path typed on the command line is relative to where the person is, not to the config file.
    ca_file = str(Path(args.ca_file).expanduser().resolve()) if args.ca_file else (
        str(conn.ca_file) if conn and conn.ca_file else None)
    if ca_file is None and (args.ca_fingerprint or (interactive and provider is not None
                                                    and provider.id == "self-hosted")):
        ca_file = _pin(url, args.ca_fingerprint)
    media_dir = str(Path(args.media_dir).expanduser().resolve()) if args.media_dir else str(current.local.media_dir)
    if interactive:
        media_dir = _ask(_("Local media folder (M³'s folder to watch)"), media_dir) or media_dir

    doc = cfgmod.config_to_dict(current)
    doc["connection"] = {k: v for k, v in {
        "url": url, "username": username, "folder": folder, "ca_file": ca_file,
        "allow_insecure_loopback": True if args.allow_insecure_loopback else None,
    }.items() if v is not None}
    doc.setdefault("local", {})["media_dir"] = media_dir
    if args.layout:
        doc["local"]["layout"] = args.layout
    if args.days_ahead is not None:
        doc["local"]["days_ahead"] = args.days_ahead
    if args.name:
        doc.setdefault("congregation", {})["name"] = args.name
    if args.weekday_language:
        doc.setdefault("prefs", {})["app.localAppLang"] = args.weekday_language
    new = cfgmod.config_from_document(doc, path)
    assert new.connection is not None

    password = _read_password(args, interactive) or get_password(new.connection)
    if not password:
        raise UsageError(_("No password was given."), _("Give it with --password-stdin or run setup in a terminal."))

    if not args.no_test:
        print(_("Testing the connection to {url}{folder} ...").format(url=url, folder=folder))
        try:
            try:
                summary = check_connection(new, password)
            except TLSError:
                # A self-hosted server with its own CA: pinning it is one question, not a manual step.
                if not interactive or ca_file is not None:
                    raise
                pinned = _pin(url, None)
                if pinned is None:
                    raise
                doc["connection"]["ca_file"] = pinned
                new = cfgmod.config_from_document(doc, path)
                summary = check_connection(new, password)
        except M3Error as err:
            from m3daemon.cli.main import report_error

            report_error(err)
            print(_("Nothing was saved."), file=sys.stderr)
            return int(err.exit_code)
        print(summary)
        if not args.weekday_language:
            new = _weekday_language(new, doc, path, password, interactive)

    assert new.connection is not None
    registry.check_media_dir_unique(new)
    cfgmod.save_config(new)
    registry.register_config(new)
    where = store_password(new.connection, password)
    print(_("Saved {path}.").format(path=path))
    if where is StoredWhere.FILE:
        print(file_storage_notice(), file=sys.stderr)
    print(_("Next: run `m3daemon update`."))
    return int(ExitCode.OK)


def _weekday_language(new: Any, doc: dict[str, Any], path: Path, password: str, interactive: bool) -> Any:
    """Read ``app.localAppLang`` from the server's date folder names, or ask when none tells."""
    from m3daemon.engine.connection import server_weekday_language
    from m3daemon.settings import config as cfgmod

    lang = server_weekday_language(new, password)
    if lang is None and interactive:
        lang = _ask(_("Language of weekday names in folder names (en, fr, de, es …)"),
                    str(new.prefs.get("app.localAppLang") or "en"))
    elif lang is not None:
        print(_("Weekday names in folder names: {lang} (as in the server's date folders).").format(lang=lang))
    if not lang or lang == new.prefs.get("app.localAppLang"):
        return new
    doc.setdefault("prefs", {})["app.localAppLang"] = lang
    return cfgmod.config_from_document(doc, path)


def _pin(url: str, expected: str | None) -> str | None:
    """Show the CA a self-hosted server presents and pin it when the person (or the given
    fingerprint) confirms it."""
    from m3daemon.server.tls import offer_to_pin

    path = offer_to_pin(url, expected=expected)
    return str(path) if path is not None else None


def _read_password(args: argparse.Namespace, interactive: bool) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n") or None
    if interactive:
        return getpass.getpass(_("Password (app password for Box and Koofr): ")) or None
    return None


def _ask(question: str, default: str | None) -> str | None:
    suffix = f" [{default}]" if default else ""
    answer = input(f"{question}{suffix}: ").strip()
    return answer or default


def _pick_provider() -> Any:
    from m3daemon.settings.providers import PROVIDERS

    for i, p in enumerate(PROVIDERS, 1):
        print(f"  {i}. {p.name}")
    choice = input(_("Provider (number, or Enter to type the address yourself): ")).strip()
    if choice.isdigit() and 1 <= int(choice) <= len(PROVIDERS):
        return PROVIDERS[int(choice) - 1]
    return None
