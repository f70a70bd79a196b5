"""A member sets up once (`m3daemon setup`), then updates; setup says exactly what is wrong."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from servers import DavServer, ServerPool, make_tree
from terminal import Terminal

from m3daemon.local.paths import config_dir


def m3(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "m3daemon", *args], input=stdin, capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})}, check=False,
    )


def setup_args(server: DavServer, home: Path, folder: str = "/dav/Cong") -> list[str]:
    return ["setup", "--url", server.url, "--username", server.username, "--folder", folder,
            "--ca-file", str(server.ca_file), "--media-dir", str(home / "media"), "--password-stdin"]


def test_setup_without_a_terminal_tests_saves_and_then_update_needs_no_password(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(wsgidav_server.root / "Cong", {"Media/Recurring/y.jpg": b"y", "forcedPrefs.json": "{}"})
    proc = m3(*setup_args(wsgidav_server, isolated_env), stdin=wsgidav_server.password + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "Connected" in proc.stdout and "Congregation settings: yes" in proc.stdout
    assert "No system keyring" in proc.stderr  # tests force keyring's fail backend
    cfg_file = config_dir() / "config.toml"
    text = cfg_file.read_text()
    assert wsgidav_server.password not in text and "password" not in text
    assert stat.S_IMODE(cfg_file.stat().st_mode) == 0o600
    secrets = config_dir() / "secrets.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    done = m3("update", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["failed"] == 0


def test_setup_with_a_wrong_password_says_so_and_saves_nothing(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    (wsgidav_server.root / "Cong").mkdir()
    proc = m3(*setup_args(wsgidav_server, isolated_env), stdin="not-the-password\n")
    assert proc.returncode == 3
    assert "user name or password" in proc.stderr and "Nothing was saved" in proc.stderr
    assert "not-the-password" not in proc.stderr + proc.stdout
    assert not (config_dir() / "config.toml").exists()


def test_setup_with_a_wrong_folder_says_the_folder_is_missing(wsgidav_server: DavServer, isolated_env: Path) -> None:
    proc = m3(*setup_args(wsgidav_server, isolated_env, "/dav/Nope"), stdin=wsgidav_server.password + "\n")
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "m3daemon browse" in proc.stderr


def test_setup_against_something_that_is_not_webdav(dav_server_pool: ServerPool, isolated_env: Path) -> None:
    nginx = dav_server_pool.fresh("nginx")
    proc = m3(*setup_args(nginx, isolated_env, "/"), stdin=nginx.password + "\n")
    assert proc.returncode == 4, proc.stderr
    assert "not a WebDAV server" in proc.stderr


def test_setup_with_a_certificate_the_computer_does_not_trust(wsgidav_server: DavServer, isolated_env: Path) -> None:
    args = setup_args(wsgidav_server, isolated_env)
    i = args.index("--ca-file")
    del args[i:i + 2]
    proc = m3(*args, stdin=wsgidav_server.password + "\n")
    assert proc.returncode == 4
    assert "certificate" in proc.stderr and "ca_file" in proc.stderr


def test_setup_refuses_plain_http(isolated_env: Path) -> None:
    proc = m3("setup", "--url", "http://dav.example.org", "--username", "u", "--folder", "/x",
              "--password-stdin", stdin="pw\n")
    assert proc.returncode == 2
    assert "https://" in proc.stderr


def test_setup_in_a_terminal_asks_again_for_each_wrong_answer(wsgidav_server: DavServer, isolated_env: Path) -> None:
    """Each wrong answer is asked again on the spot, the others kept; a wrong folder opens a browser
    on the connection being typed; a folder one level too deep is flagged with the right one."""
    make_tree(wsgidav_server.root, {"Cong/Media/Recurring/y.jpg": b"y", "Other/readme.txt": b"r"})
    host_port = wsgidav_server.url.removeprefix("https://")
    term = Terminal(["setup", "--ca-file", str(wsgidav_server.ca_file)])
    term.ask("Provider (number", "")
    term.ask("Server address:", "http://" + host_port)
    assert "https://" in term.ask("Server address:", host_port)  # said why, asked again; https:// is added
    term.ask("User name:", "nobody")
    term.ask("Congregation sync folder on the server:", "/dav/Nope")
    term.ask("The congregation's name", "")
    assert "This is needed." in term.ask("The congregation's name", "Springfield North")
    term.ask("Local media folder", str(isolated_env / "media"))
    term.ask("Password", "wrong-password")
    said = term.ask("User name [nobody]:", wsgidav_server.username)  # the wrong account: name kept as default
    assert "user name or password" in said
    term.ask("Password", wsgidav_server.password)
    listing = term.expect("Number to open")
    assert "/dav/Nope" in listing and "Folders in /dav:" in listing  # the browser starts where it can
    number = next(line.split(".")[0].strip() for line in listing.splitlines() if line.strip().endswith(". Cong"))
    term.answer(number)
    inside = term.expect("Number to open")
    assert "Folders in /dav/Cong:" in inside and "Media" in inside
    term.answer("1")  # into Media: one level too deep
    term.ask("Enter to choose /dav/Cong/Media", "")
    hint = term.ask("Use /dav/Cong instead? [Y/n]", "")
    assert "the Media folder itself" in hint
    term.ask("Language of weekday names", "")
    term.expect("Saved")
    rest = term.seen[term.pos:]
    status = term.finish()
    out = term.seen
    assert status == 0, out
    assert wsgidav_server.password not in out
    assert "Folder to Watch" in out + rest and str(isolated_env / "media") in out
    saved = (config_dir() / "config.toml").read_text()
    assert 'folder = "/dav/Cong"' in saved and 'name = "Springfield North"' in saved


def test_providers_lists_the_presets_with_app_password_notes() -> None:
    proc = m3("providers", "--json")
    presets = {p["id"]: p for p in json.loads(proc.stdout)}
    assert {"box", "koofr", "4shared", "powerfolder", "nextcloud", "owncloud", "self-hosted"} <= set(presets)
    assert presets["koofr"]["folder"] == "/dav/Koofr/" and "app" in presets["koofr"]["note"].lower()


def test_browse_lists_the_servers_folders(dav_server: DavServer, isolated_env: Path) -> None:
    make_tree(dav_server.root, {"Cong/Media/x.jpg": b"x", "Other/readme.txt": b"r"})
    proc = m3(*setup_args(dav_server, isolated_env, "/dav/Cong"), stdin=dav_server.password + "\n")
    assert proc.returncode == 0, proc.stderr
    out = m3("browse", "/dav/", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["folders"] == ["Cong", "Other"]


def test_every_command_has_help() -> None:
    """Each sub-command module imports and builds its parser (a missing module breaks them all)."""
    assert m3("--help").returncode == 0
    from m3daemon.cli.main import COMMANDS

    for name in COMMANDS:
        proc = m3(name, "--help")
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
