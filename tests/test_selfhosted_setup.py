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
