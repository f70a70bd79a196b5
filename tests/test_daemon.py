"""The daemon end to end, as a member's computer runs it: `m3daemon run --no-tray` against a real
server, steered through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from member import Member, iso
from servers import DavServer, ServerPool, make_tree

FOLDER = "/dav/Cong"


class RunningDaemon:
    def __init__(self, member: Member, proc: subprocess.Popen[str]) -> None:
        self.member, self.proc = member, proc

    def status(self) -> dict[str, Any]:
        out = self.member.cli("status", "--json")
        assert out.returncode == 0, out.stderr
        data: dict[str, Any] = json.loads(out.stdout)
        return data

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def start_daemon(member: Member, env: dict[str, str] | None = None) -> RunningDaemon:
    full_env = {**os.environ, "M3DAEMON_PASSWORD": member.password, "M3DAEMON_CONFIG": str(member.config_path),
                "M3DAEMON_OFFLINE_BACKOFF": "0.3", **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "run", "--no-tray"], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d = RunningDaemon(member, proc)
    wait_until("the daemon to answer", lambda: proc.poll() is not None or d.status().get("daemon"))
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return d


@pytest.fixture
def member(wsgidav_server: DavServer, isolated_env: Path) -> Member:
    (wsgidav_server.root / "Cong").mkdir()
    return Member.create(isolated_env, wsgidav_server.url, FOLDER, wsgidav_server.username,
                         wsgidav_server.password, wsgidav_server.ca_file)


@pytest.fixture
def daemon(member: Member) -> Iterator[RunningDaemon]:
    d = start_daemon(member)
    try:
        yield d
    finally:
        d.stop()


def test_update_through_the_running_daemon_and_read_its_status(
    wsgidav_server: DavServer, member: Member, daemon: RunningDaemon
) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/a.jpg": b"a"})
    proc = member.cli("update", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["downloaded"] in (0, 1)  # the start-up sync may have fetched it
    assert member.files() == {f"{iso(1)}/a.jpg": b"a"}
    st = daemon.status()
    assert st["daemon"] is True and st["state"] == "up-to-date"
    assert st["last_sync"] and st["next_sync"]
    for key in ("next_meeting", "last_error", "progress"):
        assert key in st


def test_a_second_run_for_the_same_congregation_is_refused(member: Member, daemon: RunningDaemon) -> None:
    proc = member.cli("run", "--no-tray", timeout=30)
    assert proc.returncode == 2
    assert "already running" in proc.stderr


def test_update_through_the_daemon_starts_without_the_sync_engine(
    wsgidav_server: DavServer, member: Member, daemon: RunningDaemon
) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/a.jpg": b"a"})
    proc, imported = member.cli_imports("update", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert member.files() == {f"{iso(1)}/a.jpg": b"a"}
    assert "m3daemon.daemon.control" in imported
    # the daemon syncs: this process needs no HTTPS client, no engine, no watcher
    assert not imported & {"httpx", "m3daemon.engine.sync", "m3daemon.remote.http", "watchdog"}


def test_a_deleted_file_is_restored_by_the_watcher_without_listing_again(
    wsgidav_server: DavServer, member: Member, daemon: RunningDaemon
) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(1)}/b.jpg": b"b"})
    assert member.cli("update").returncode == 0
    target = member.media / iso(1) / "a.jpg"
    wsgidav_server.clear_log()
    target.unlink()
    wait_until("the file to come back", target.exists)
    assert target.read_bytes() == b"a"
    methods = [m for m, _p, _s in wsgidav_server.request_log()]
    assert "PROPFIND" not in methods and methods.count("GET") == 1


def test_offline_and_back_by_itself(dav_server_pool: ServerPool, isolated_env: Path) -> None:
    server = dav_server_pool.fresh("apache")
    make_tree(server.root / "Cong", {f"Media/{iso(1)}/a.jpg": b"a"})
    m = Member.create(isolated_env, server.url, FOLDER, server.username, server.password, server.ca_file)
    d = start_daemon(m)
    try:
        wait_until("the first sync", lambda: d.status()["state"] == "up-to-date")
        server.stop()
        m.cli("update")
        st = wait_until("offline", lambda: (s := d.status())["state"] == "offline" and s)
        assert "refused" in st["last_error"]["message"]
        server.restart()
        wait_until("recovery without anyone asking", lambda: d.status()["state"] == "up-to-date")
    finally:
        assert d.stop() == 0


def test_sigterm_mid_sync_leaves_no_partial_file(wsgidav_server: DavServer, member: Member) -> None:
    big = os.urandom(64 * 1024 * 1024)
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/talk.mp4": big})
    d = start_daemon(member, env={"M3DAEMON_DOWNLOAD_LIMIT_BPS": "8000000"})
    wait_until("the download to start", lambda: d.status()["progress"]["done_bytes"] > 0)
    started = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - started < 10
    assert member.files() == {}
    assert any(n.endswith(".part") for n in member.staged())


def test_pause_is_kept_across_restarts(member: Member) -> None:
    d = start_daemon(member)
    try:
        assert member.cli("pause").returncode == 0
        assert d.status()["state"] == "paused"
    finally:
        d.stop()
    d = start_daemon(member)
    try:
        assert d.status()["state"] == "paused"
        assert member.cli("resume").returncode == 0
        wait_until("resumed", lambda: d.status()["state"] in ("syncing", "up-to-date"))
    finally:
        d.stop()


def test_logs_show_what_the_daemon_did(member: Member, daemon: RunningDaemon) -> None:
    wait_until("the first sync", lambda: daemon.status()["state"] == "up-to-date")
    out = member.cli("logs", "-n", "20")
    assert out.returncode == 0
    assert "m3daemon is running" in out.stdout
    assert member.password not in out.stdout


def test_one_daemon_serves_several_congregations_each_with_its_own_state(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    """A Kingdom Hall shared by two congregations: one is fine, the other's password is wrong."""
    from m3daemon.local.paths import config_dir
    from m3daemon.settings.config import load_config
    from m3daemon.settings.credentials import store_password

    make_tree(wsgidav_server.root, {f"North/Media/{iso(1)}/n.jpg": b"n", f"South/Media/{iso(1)}/s.jpg": b"s"})
    folder = config_dir(create=True)
    members = {}
    for name, password in (("North", wsgidav_server.password), ("South", "wrong")):
        m = Member.create(folder, wsgidav_server.url, f"/dav/{name}", wsgidav_server.username, password,
                          wsgidav_server.ca_file, name=name.lower())
        m.config_path.write_text(f'[congregation]\nname = "{name}"\n' + m.config_path.read_text())
        cfg = load_config(m.config_path)
        assert cfg.connection is not None
        members[name] = m
    # Both configs use the same account name, so give South its own (wrong) account.
    south = members["South"]
    south.config_path.write_text(south.config_path.read_text().replace(
        f'username = "{wsgidav_server.username}"', 'username = "carol"'))
    store_password(load_config(members["North"].config_path).connection, wsgidav_server.password)  # type: ignore[arg-type]
    store_password(load_config(south.config_path).connection, "wrong")  # type: ignore[arg-type]
    env = {k: v for k, v in os.environ.items() if k != "M3DAEMON_PASSWORD"}
    proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "run", "--all", "--no-tray"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    north = members["North"]
    try:
        def states() -> dict[str, str] | None:
            out = subprocess.run([sys.executable, "-m", "m3daemon", "--config", str(north.config_path), "status",
                                  "--json"], env=env, capture_output=True, text=True, check=False)
            data = json.loads(out.stdout) if out.returncode == 0 else {}
            if not data.get("daemon"):
                return None
            found = {c["name"]: c["state"] for c in data["congregations"]}
            return found if "starting" not in found.values() and "syncing" not in found.values() else None

        assert wait_until("both congregations to settle", states) == {"North": "up-to-date", "South": "error"}
        assert north.files() == {f"{iso(1)}/n.jpg": b"n"}
        assert south.files() == {}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
