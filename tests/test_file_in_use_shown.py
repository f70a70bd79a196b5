"""A file M³ is showing (Windows: a sharing violation) is named in the dashboard and the tray.

The daemon runs in this process against a real WsgiDAV server; what Windows does to a file that
another program holds open (PermissionError with winerror 32 on replace and unlink) is what this
test injects, the rest is real: the engine keeps the verified download waiting (issue 11.9), the
daemon's status lists the file, the dashboard's status page and status.json and the tray's menu
and tooltip name it, and once the file is let go the next update places it and the line goes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from conftest import wait_until
from dashhelpers import dashboard_of
from faulthelpers import SharingViolation
from member import Member, iso
from servers import DavServer, make_tree

from m3daemon.cli.info_cmds import _print_daemon_status
from m3daemon.daemon.app import Daemon
from m3daemon.engine.status import SyncState
from m3daemon.tray.menu import build_menu, tooltip

HeldOpen = SharingViolation  # M³ holds the file open, as on Windows, until ``release()``


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@pytest.fixture
def running(wsgidav_server: DavServer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[Daemon, Member]]:
    root = wsgidav_server.root / "Cong"
    root.mkdir(parents=True, exist_ok=True)
    make_tree(root, {f"Media/{iso(1)}/talk.jpg": b"version 1", f"Media/{iso(1)}/song.jpg": b"song"})
    m = Member.create(isolated_env, wsgidav_server.url, "/dav/Cong", wsgidav_server.username,
                      wsgidav_server.password, wsgidav_server.ca_file)
    monkeypatch.setenv("M3DAEMON_PASSWORD", m.password)
    daemon = Daemon([m.config], no_tray=True, watch=False)
    daemon.start()
    try:
        wait_until("the first sync", lambda: daemon.statuses()[0].state is SyncState.UP_TO_DATE
                   and daemon.statuses()[0].last_sync is not None)
        yield daemon, m
    finally:
        daemon.shutdown()


def test_a_file_m3_is_showing_is_named_in_the_dashboard_and_the_tray_until_it_is_replaced(
    running: tuple[Daemon, Member], wsgidav_server: DavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, m = running
    talk = m.media / iso(1) / "talk.jpg"
    rel = f"{iso(1)}/talk.jpg"
    (wsgidav_server.root / "Cong" / "Media" / iso(1) / "talk.jpg").write_bytes(b"version 2 for the meeting")
    held = HeldOpen(monkeypatch, talk)
    daemon.update_now()
    wait_until("the daemon reports the waiting file", lambda: daemon.statuses()[0].waiting == [rel])
    status = daemon.statuses()[0]
    assert status.state is SyncState.UP_TO_DATE  # nothing for a person to solve
    assert talk.read_bytes() == b"version 1"

    sentence = f"{rel} is in use by another program; it will be updated after the meeting."
    with dashboard_of(daemon) as (web, _base, _page):  # logged in with a one-time key
        page = web.get("/c/0/status").text
        assert sentence in page
        live = web.get("/c/0/status.json").json()
        assert live["waiting"] == [rel] and live["waiting_text"] == sentence

        shown = io.StringIO()
        with redirect_stdout(shown):  # `m3daemon status` with the daemon's own status JSON
            _print_daemon_status({"pid": os.getpid(), "watcher": "off",
                                  "congregations": [s.to_json() for s in daemon.statuses()]}, m.config, False)
        lines = [line.strip() for line in shown.getvalue().splitlines()]
        assert any(line.startswith("In use") and line.endswith(sentence) for line in lines), lines

        menu = [i.label for i in build_menu(daemon.statuses(), None)]
        assert f"In use, updated after the meeting: {rel}" in menu
        assert tooltip(daemon.statuses()).endswith(f"\nIn use, updated after the meeting: {rel}")

        held.release()  # the meeting is over, M³ lets go of the file
        daemon.update_now()
        wait_until("the waiting file is placed", lambda: _content(talk) == b"version 2 for the meeting")
        wait_until("the status no longer lists it", lambda: daemon.statuses()[0].waiting == [])
        live = web.get("/c/0/status.json").json()
        assert live["waiting"] == [] and live["waiting_text"] == ""
        assert sentence not in web.get("/c/0/status").text
    assert not any("In use" in i.label for i in build_menu(daemon.statuses(), None))
