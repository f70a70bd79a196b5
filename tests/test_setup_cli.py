"""A member sets up once (`m3daemon setup`), then updates; setup says exactly what is wrong."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

from servers import DavServer, ServerPool, make_tree

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


def test_setup_in_a_terminal_asks_for_everything(wsgidav_server: DavServer, isolated_env: Path) -> None:
    (wsgidav_server.root / "Cong").mkdir()
    answers = {
        "Provider": "",  # type the address ourselves
        "Server address": wsgidav_server.url,
        "User name": wsgidav_server.username,
        "Congregation sync folder": "/dav/Cong",
        "Local media folder": str(isolated_env / "media"),
        "Password": wsgidav_server.password,
        # the server has no date folder to read it from, so setup asks
        "Language of weekday names": "fr",
    }
    env = dict(os.environ)
    pid, fd = pty.fork()
    if pid == 0:  # the child: setup in a terminal
        os.execve(sys.executable, [sys.executable, "-m", "m3daemon", "setup", "--ca-file",
                                   str(wsgidav_server.ca_file)], env)
    seen, pending = b"", dict(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        tail = seen.decode(errors="replace").rsplit("\n", 1)[-1]
        for prompt, answer in list(pending.items()):
            if prompt in tail and tail.rstrip().endswith(":"):
                os.write(fd, answer.encode() + b"\n")
                del pending[prompt]
                seen += b"\n"
                break
    _, status = os.waitpid(pid, 0)
    out = seen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert not pending, f"never asked: {list(pending)}\n{out}"
    assert "Connected" in out
    assert wsgidav_server.password not in out
    assert (config_dir() / "config.toml").exists()
    assert 'app.localAppLang" = "fr"' in (config_dir() / "config.toml").read_text()


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
