"""A congregation's own server, from a member's side: setup pins its CA in one step, the member
syncs with a read-only account, and the coordinator's tools refuse that account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from member import iso

from m3daemon.local.paths import config_dir
from m3daemon.server import Role, ServerHandle, local_server
from m3daemon.server.tls import fingerprint as fingerprint_of
from m3daemon.server.tls import load_pem_certs

COORD, MEMBER = ("coordinator", "c00rd-pass"), ("member", "m3mber-pass")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerHandle]:
    with local_server(tmp_path / "server", {COORD[0]: (COORD[1], Role.COORDINATOR),
                                            MEMBER[0]: (MEMBER[1], Role.MEMBER)}) as srv:
        yield srv


def fingerprint(srv: ServerHandle) -> str:
    [ca] = load_pem_certs(srv.ca_file.read_bytes())
    return fingerprint_of(ca)


def m3(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "m3daemon", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})}, check=False)


def setup(srv: ServerHandle, home: Path, user: tuple[str, str], *extra: str, config: str = "") -> subprocess.CompletedProcess[str]:
    cfg = ["--config", str(home / config)] if config else []
    return m3(*cfg, "setup", "--url", srv.url, "--username", user[0], "--folder", srv.folder,
              "--media-dir", str(home / f"{user[0]}-media"), "--password-stdin", *extra, stdin=user[1] + "\n")


def test_setup_pins_the_servers_ca_by_its_fingerprint(server: ServerHandle, isolated_env: Path) -> None:
    proc = setup(server, isolated_env, MEMBER, "--ca-fingerprint", fingerprint(server))
    assert proc.returncode == 0, proc.stderr
    saved = (config_dir() / "config.toml").read_text()
    pinned = next(line.split("=", 1)[1].strip().strip('"') for line in saved.splitlines()
                  if line.startswith("ca_file"))
    assert (config_dir() / pinned).read_bytes() == server.ca_file.read_bytes()  # relative to the config
    assert m3("update").returncode == 0


def test_a_wrong_fingerprint_is_refused_and_nothing_is_saved(server: ServerHandle, isolated_env: Path) -> None:
    proc = setup(server, isolated_env, MEMBER, "--ca-fingerprint", "AB" * 32)
    assert proc.returncode == 4
    assert "fingerprint" in proc.stderr and "intercepting" in proc.stderr
    assert not (config_dir() / "config.toml").exists()


def test_without_the_ca_the_member_cannot_connect(server: ServerHandle, isolated_env: Path) -> None:
    proc = setup(server, isolated_env, MEMBER)
    assert proc.returncode == 4 and "certificate" in proc.stderr


def test_the_coordinator_publishes_and_a_read_only_member_syncs(server: ServerHandle, isolated_env: Path) -> None:
    fp = fingerprint(server)
    assert setup(server, isolated_env, COORD, "--ca-fingerprint", fp, config="coord.toml").returncode == 0
    assert setup(server, isolated_env, MEMBER, "--ca-fingerprint", fp, config="member.toml").returncode == 0
    talk = isolated_env / "talk.jpg"
    talk.write_bytes(b"talk-image")
    coord = ["--config", str(isolated_env / "coord.toml")]
    member = ["--config", str(isolated_env / "member.toml")]
    added = m3(*coord, "media", "add", iso(1), str(talk), "--prefix", "01")
    assert added.returncode == 0, added.stderr
    done = m3(*member, "update", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["downloaded"] == 1
    assert (isolated_env / "member-media" / iso(1) / "01 - talk.jpg").read_bytes() == b"talk-image"
    refused = m3(*member, "media", "add", iso(1), str(talk))
    assert refused.returncode == 3
    assert "may only read" in refused.stderr


def test_the_server_can_be_installed_to_start_at_login(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    assert m3("server", "init", str(root)).returncode == 0
    plan = m3("service", "install", "--server", str(root), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert f"-m m3daemon server run {root}" in plan.stdout
    st = m3("service", "status", "--server", str(root), "--json")
    assert json.loads(st.stdout)["installed"] is False


def second_computer(home: Path) -> dict[str, str]:
    """The environment of another computer: its own home, configuration, state and keyring file."""
    env = {"HOME": str(home)}
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    return env


def test_an_invitation_sets_up_a_second_computer_that_then_syncs(server: ServerHandle, isolated_env: Path,
                                                                 tmp_path: Path) -> None:
    assert setup(server, isolated_env, COORD, "--ca-fingerprint", fingerprint(server), "--name", "Springfield North",
                 config="coord.toml").returncode == 0
    coord = ["--config", str(isolated_env / "coord.toml")]
    talk = isolated_env / "talk.jpg"
    talk.write_bytes(b"talk-image")
    assert m3(*coord, "media", "add", iso(1), str(talk), "--prefix", "01").returncode == 0
    made = m3(*coord, "invite", "create", "--username", MEMBER[0], "--out", str(tmp_path / "north.m3invite"),
              "--qr", str(tmp_path / "north.png"), "--json")
    assert made.returncode == 0, made.stderr
    inv = json.loads(made.stdout)
    assert inv["code"].startswith("M3I1-") and inv["ca_sha256"] == fingerprint(server)
    assert inv["password"] is False and MEMBER[1] not in (tmp_path / "north.m3invite").read_text()
    assert (tmp_path / "north.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    other = second_computer(tmp_path / "other")
    media = tmp_path / "other" / "media"
    joined = m3("setup", "--invite", inv["code"], "--media-dir", str(media), "--password-stdin",
                stdin=MEMBER[1] + "\n", env=other)
    assert joined.returncode == 0, joined.stderr
    assert "Folder to Watch" in joined.stdout
    done = m3("update", "--json", env=other)
    assert done.returncode == 0, done.stderr
    assert (media / iso(1) / "01 - talk.jpg").read_bytes() == b"talk-image"
    shown = m3("status", "--json", env=other)
    assert json.loads(shown.stdout)["congregation"] == "Springfield North"


def test_an_invitation_with_a_typo_is_refused_and_nothing_is_saved(server: ServerHandle, isolated_env: Path) -> None:
    assert setup(server, isolated_env, COORD, "--ca-fingerprint", fingerprint(server), config="coord.toml").returncode == 0
    code = json.loads(m3("--config", str(isolated_env / "coord.toml"), "invite", "create", "--out",
                         str(isolated_env / "x.m3invite"), "--json").stdout)["code"]
    i = len(code) // 2
    typo = code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1:]
    proc = m3("--config", str(isolated_env / "member.toml"), "setup", "--invite", typo, "--username", MEMBER[0],
              "--password-stdin", stdin=MEMBER[1] + "\n")
    assert proc.returncode == 2
    assert "typo" in proc.stderr
    assert not (isolated_env / "member.toml").exists()


def test_in_a_terminal_an_invitation_asks_only_for_the_password(server: ServerHandle, isolated_env: Path,
                                                                 tmp_path: Path) -> None:
    from terminal import Terminal

    assert setup(server, isolated_env, COORD, "--ca-fingerprint", fingerprint(server), config="coord.toml").returncode == 0
    invite = tmp_path / "north.m3invite"
    assert m3("--config", str(isolated_env / "coord.toml"), "invite", "create", "--username", MEMBER[0],
              "--out", str(invite)).returncode == 0
    term = Terminal(["--config", str(isolated_env / "member.toml"), "setup", "--invite", str(invite),
                     "--media-dir", str(tmp_path / "media")])
    before = term.ask("Password", MEMBER[1])
    assert "Invitation to coord" in before and "Server address" not in before and "User name" not in before
    term.expect("Pinned")
    term.expect("Saved")
    assert term.finish() == 0, term.seen
    assert "Server address" not in term.seen and "User name" not in term.seen
